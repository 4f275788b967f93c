"""Command-line interface ``mpirecon`` (see ``mpirecon --help``)."""
