"""``mpirecon cache``: show the user cache folder (demo weights) and its size, or clear it."""
from __future__ import annotations


def add_parser(sub) -> None:
    """Register the ``cache`` sub-command."""
    p = sub.add_parser("cache", help="show the cache folder of demo weights and its size (--clear: empty it)")
    p.add_argument("--cache-dir", default=None, help="cache folder (None: $MPIRECON_CACHE or the user cache folder)")
    p.add_argument("--clear", action="store_true", help="remove mpirecon's cached files")


def run(args) -> int:
    """Print the cache folder and size, or clear it."""
    from mpirecon.cache import report
    print(report(args.cache_dir, args.clear))
    return 0
