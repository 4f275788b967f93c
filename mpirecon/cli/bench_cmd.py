"""``mpirecon bench``: the paper's Tables 2-4 protocol (see :mod:`mpirecon.bench`)."""
from __future__ import annotations


def add_parser(sub) -> None:
    """Register the ``bench`` sub-command."""
    p = sub.add_parser("bench", help="benchmark methods x SNR levels (paper Tables 2-4) on the paper and realistic protocols")
    p.add_argument("--sm", default=None, help="calibration file (None: the built-in simulated 19x19 one)")
    p.add_argument("--methods", nargs="+", default=None, help="methods to compare (None: all usable); NAME@LABEL adds a second configuration "
                        "of a method, e.g. ppmpi@own with --weights ppmpi@own=den.pt")
    p.add_argument("--weights", action="append", default=[], metavar="METHOD=FILE",
                   help="weights for a learned method, e.g. dernet=dernet.pt (repeatable)")
    p.add_argument("--snr", type=float, nargs="+", default=[20.0, 25.0, 30.0, 35.0], help="SNR levels (dB)")
    p.add_argument("--test-samples", type=int, default=500, help="test phantoms per SNR level")
    p.add_argument("--val-samples", type=int, default=100, help="validation samples for parameter tuning")
    p.add_argument("--protocols", nargs="+", default=["paper", "realistic"], choices=["paper", "holdout", "realistic"],
                   help="paper, holdout (same matrix, unseen phantom families), realistic")
    p.add_argument("--no-tuning", action="store_true", help="use each method's defaults")
    p.add_argument("--seed", type=int, default=1234, help="seed of the test and validation data")
    p.add_argument("--device", default=None, help="cpu or cuda for methods with a torch path (None: cpu)")
    p.add_argument("-o", "--output", default="bench-results", help="output folder (new or empty, unless --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="write into a folder that is not empty, replacing "
                   "result files of the same names")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def run(args) -> int:
    """Run the benchmark and write results to ``args.output``."""
    from mpirecon.bench import BenchConfig, run_bench
    from mpirecon.errors import UsageError
    from mpirecon.reconstructor import validated

    weights = {}
    for item in args.weights:
        if "=" not in item:
            raise UsageError(f"--weights '{item}': expected METHOD=FILE")
        k, v = item.split("=", 1)
        weights[k] = v
    cfg = validated(BenchConfig, dict(methods=args.methods, weights=weights, snr_levels=args.snr,
                                      test_samples=args.test_samples, val_samples=args.val_samples,
                                      protocols=args.protocols, tune=not args.no_tuning, seed=args.seed,
                                      device=args.device), "bench: invalid options")
    out = run_bench(cfg, system_matrix_path=args.sm, output=args.output, progress=not args.quiet,
                    overwrite=args.overwrite)
    print(f"wrote {out / 'results.md'}, {out / 'results.json'} and figures in {out}")
    return 0
