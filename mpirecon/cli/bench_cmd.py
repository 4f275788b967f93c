"""``mpirecon bench``: the paper's Tables 2-4 protocol (see :mod:`mpirecon.bench.runner`)."""
from __future__ import annotations


def add_parser(sub) -> None:
    """Register the ``bench`` sub-command."""
    p = sub.add_parser("bench", help="benchmark methods x SNR levels (paper Tables 2-4) on the paper and realistic protocols")
    p.add_argument("--sm", default=None, help="calibration file (None: the built-in simulated 19x19 one)")
    p.add_argument("--methods", nargs="+", default=None, help="methods to compare (None: all usable); NAME@LABEL adds a second configuration "
                        "of a method, e.g. ppmpi@own with --weights ppmpi@own=den.pt, or admm_tv@auto with "
                        "--params admm_tv@auto=mu=auto")
    p.add_argument("--params", action="append", default=[], metavar="METHOD=KEY=VALUE",
                   help="fixed parameter of a bench entry (not tuned), e.g. pinv@auto=lam=auto (repeatable)")
    p.add_argument("--weights", action="append", default=[], metavar="METHOD=FILE",
                   help="weights for a learned method, e.g. dernet=dernet.pt (repeatable)")
    p.add_argument("--snr", type=float, nargs="+", default=[20.0, 25.0, 30.0, 35.0], help="SNR levels (dB)")
    p.add_argument("--test-samples", type=int, default=100, help="test phantoms per SNR level (the paper: 500)")
    p.add_argument("--val-samples", type=int, default=30, help="validation samples for parameter tuning (the paper: 100)")
    p.add_argument("--protocols", nargs="+", default=["paper", "realistic"], choices=["paper", "holdout", "realistic", "physics-shift"],
                   help="paper, holdout (same matrix, unseen phantom families), realistic, physics-shift "
                        "(measured with other particles and a drifted scanner than the calibration; OpenMPI designs)")
    p.add_argument("--no-tuning", action="store_true", help="use each method's defaults")
    p.add_argument("--estimated-noise", action="store_true",
                   help="do not pass the simulation's known noise level; methods estimate it (calibration SNR)")
    p.add_argument("--seed", type=int, default=1234, help="seed of the test and validation data")
    p.add_argument("--device", default=None, help="cpu or cuda for methods with a torch path (None: cpu)")
    p.add_argument("-o", "--output", default="bench-results",
                   help="output folder (new or empty, unless --resume or --overwrite); results.json is "
                        "rewritten after every method and SNR")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run (same options) in the "
                   "output folder, skipping the steps results.json already holds")
    p.add_argument("--overwrite", action="store_true", help="write into a folder that is not empty, replacing "
                   "result files of the same names")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def run(args) -> int:
    """Run the benchmark and write results to ``args.output`` (a new folder is removed again when the
    device fills up; with ``--resume`` the completed steps stay)."""
    import shutil
    from pathlib import Path

    from mdf_io.errors import MDFDiskFullError
    from mpirecon.bench.runner import BenchConfig, run_bench
    from mpirecon.errors import UsageError
    from mpirecon.reconstructor import validated

    from mpirecon.cli.common import parse_params

    weights = {}
    for item in args.weights:
        if "=" not in item:
            raise UsageError(f"--weights '{item}': expected METHOD=FILE")
        k, v = item.split("=", 1)
        weights[k] = v
    params: dict = {}
    for item in args.params:
        if item.count("=") < 2:
            raise UsageError(f"--params '{item}': expected METHOD=KEY=VALUE")
        entry, rest = item.split("=", 1)
        params.setdefault(entry, {}).update(parse_params([rest], "--params"))
    cfg = validated(BenchConfig, dict(methods=args.methods, weights=weights, params=params, snr_levels=args.snr,
                                      test_samples=args.test_samples, val_samples=args.val_samples,
                                      protocols=args.protocols, tune=not args.no_tuning,
                                      known_noise=not args.estimated_noise, seed=args.seed, device=args.device),
                    "bench: invalid options")
    folder = Path(args.output)
    fresh = not args.resume and (not folder.exists() or (folder.is_dir() and not any(folder.iterdir())))
    try:
        out = run_bench(cfg, system_matrix_path=args.sm, output=args.output, progress=not args.quiet,
                        resume=args.resume, overwrite=args.overwrite)
    except MDFDiskFullError:
        if fresh:  # a new folder is removed again: no partial results left behind
            shutil.rmtree(folder, ignore_errors=True)
        raise
    print(f"wrote {out / 'results.md'}, {out / 'results.json'} and figures in {out}")
    return 0
