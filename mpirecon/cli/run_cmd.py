"""``mpirecon run``: reconstruct a measurement with one method and write an MDF ``/reconstruction``.

The options build a :class:`~mpirecon.plan.ReconstructionPlan` (or override one read with
``--plan``), which :func:`mpirecon.plan.run_plan` runs; ``--save-plan`` writes it as TOML."""
from __future__ import annotations

import sys

from mpirecon.errors import UsageError
from mpirecon.preprocess.selection import DEFAULT_SNR_THRESHOLD
from mpirecon.cli.run_steps import add_input_args, plan_changes


def add_selection_args(p) -> None:
    """The frequency-selection options (SNR threshold, frequency band, receive channels)."""
    p.add_argument("--snr-threshold", type=float, default=None,
                   help=f"keep system-matrix rows with SNR above this (None: {DEFAULT_SNR_THRESHOLD}, or the "
                   "selection the weights were trained with)")
    p.add_argument("--min-freq", type=float, default=None, help="lowest frequency kept (Hz)")
    p.add_argument("--max-freq", type=float, default=None, help="highest frequency kept (Hz)")
    p.add_argument("--channels", type=int, nargs="+", default=None, help="receive channels kept (0-based)")
    p.add_argument("--num-used-freqs", type=int, default=None, metavar="N",
                   help="of the rows passing the criteria above, keep the N of highest SNR (MPIReco's numUsedFreqs)")
    p.add_argument("--slice", default=None, metavar="AXIS=INDEX",
                   help="reconstruct one voxel slice of a 3D calibration, e.g. z=9 (0-based): how a 2D method "
                        "such as dernet is applied to 3D data")


def add_parser(sub) -> None:
    """Register the ``run`` sub-command."""
    p = sub.add_parser("run", help="reconstruct a measurement with a system matrix")
    p.add_argument("measurement", nargs="?", default=None, help="MDF measurement file (optional with --plan)")
    p.add_argument("--sm", default=None, help="MDF calibration (system-matrix) file (optional for methods whose "
                   "weights carry the geometry, e.g. dernet)")
    p.add_argument("--method", default=None, help="reconstructor name (see `mpirecon methods`; optional with --plan)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="method parameter, repeatable")
    p.add_argument("--weights", default=None, help="weights file for learned methods")
    add_input_args(p)
    p.add_argument("--background", default=None, help="separate empty-scanner measurement to subtract")
    p.add_argument("--no-background-correction", action="store_true", help="do not subtract background frames")
    p.add_argument("--device", default=None, help="cpu or cuda (methods with a torch path)")
    p.add_argument("-o", "--output", default=None, help="output MDF file with /reconstruction")
    p.add_argument("--png", default=None, help="also write a PNG of the first frame")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--memory-limit", default=None, metavar="SIZE",
                   help="memory budget (e.g. 4G, 500M): picks the working precision (the method's own when it fits, else "
                   "float32; float32 first for methods on the compressed operator) and refuses up front when the "
                   "method's estimate exceeds it (None: "
                   "70%% of the memory still available to this process)")
    p.add_argument("--plan", default=None, metavar="TOML",
                   help="a saved reconstruction plan; the other options given override its fields")
    p.add_argument("--save-plan", default=None, metavar="TOML",
                   help="write the plan of this run as TOML (without -o: write it and stop)")
    add_selection_args(p)


def plan_from_args(args):
    """The :class:`~mpirecon.plan.ReconstructionPlan` of ``args``: ``--plan`` (if given) with the
    options given laid over it."""
    from mpirecon.plan import ReconstructionPlan
    from mpirecon.plan.model import checked_plan

    changes = plan_changes(args)
    if args.plan is not None:
        return ReconstructionPlan.load(args.plan).with_changes(**changes)
    if args.measurement is None:
        raise UsageError("run: a measurement file is needed (or --plan)")
    if args.method is None:
        raise UsageError("run: --method is needed (or --plan)")
    return checked_plan(changes, "run options")


def run(args) -> int:
    """Reconstruct ``args.measurement`` with ``args.method`` and write ``args.output`` (+ PNG)."""
    from mpirecon.plan import run_plan

    plan = plan_from_args(args)
    if args.save_plan is not None:
        from mpirecon.io.outputs import check_outputs
        check_outputs({"--save-plan": args.save_plan}, (plan.inputs.measurement, plan.inputs.calibration, args.plan),
                      overwrite=args.overwrite)
        plan.absolute().save(args.save_plan)
        print(f"wrote plan {args.save_plan}", file=sys.stderr)
        if plan.output.path is None:
            return 0
    if plan.output.path is None:
        raise UsageError("-o: an output file is needed (in the options or the plan's output.path)")
    result = run_plan(plan, progress=True, log=lambda line: print(line, file=sys.stderr))
    print(f"wrote {', '.join(str(p) for p in (plan.output.path, plan.output.png) if p)} "
          f"({result.frames} frame(s)); " + result.timing_line())
    return 0
