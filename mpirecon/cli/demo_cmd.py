"""``mpirecon demo``: the newcomer's first run (see :mod:`mpirecon.demo`)."""
from __future__ import annotations


def add_parser(sub) -> None:
    """Register the ``demo`` sub-command."""
    p = sub.add_parser("demo", help="simulate, train a quick DERnet, reconstruct with every method, compare")
    p.add_argument("-o", "--output", default="mpirecon-demo", help="output folder")
    p.add_argument("--cache-dir", default=None, help="where trained demo weights are cached (None: $MPIRECON_CACHE or the user cache folder)")
    p.add_argument("--retrain", action="store_true", help="ignore cached demo weights")
    p.add_argument("--overwrite", action="store_true", help="write into a folder that is not empty, replacing "
                   "demo files of the same names")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--cache-info", action="store_true", help="only show the cache folder and its size (= mpirecon cache)")
    p.add_argument("--clear-cache", action="store_true", help="only clear the cached demo weights (= mpirecon cache --clear)")


def run(args) -> int:
    """Run the demo into ``args.output``."""
    from mpirecon.demo import run_demo

    if args.cache_info or args.clear_cache:
        from mpirecon.cache import report
        print(report(args.cache_dir, args.clear_cache))
        return 0
    out = run_demo(args.output, cache_dir=args.cache_dir, retrain=args.retrain, progress=not args.quiet,
                   overwrite=args.overwrite)
    print(f"demo results in {out}/ (comparison.png, metrics.md)")
    return 0
