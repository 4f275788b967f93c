"""The benchmark: protocols, tuning, tables and report (`mpirecon bench`)."""
