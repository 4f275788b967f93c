"""``mpirecon rerun``: repeat a reconstruction from the plan recorded in its result file."""
from __future__ import annotations

import sys


def add_parser(sub) -> None:
    """Register the ``rerun`` sub-command."""
    p = sub.add_parser("rerun", help="re-run the plan recorded in a result file (same inputs, method, parameters)")
    p.add_argument("result", help="MDF reconstruction written by `mpirecon run` (it records its plan)")
    p.add_argument("-o", "--output", required=True, help="new output MDF file")
    p.add_argument("--png", default=None, help="also write a PNG of the first frame")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="change a method parameter, repeatable")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--save-plan", default=None, metavar="TOML", help="also write the plan as TOML")


def run(args) -> int:
    """Read ``args.result``'s plan, point it at ``args.output`` and run it."""
    from mpirecon.io.outputs import check_outputs
    from mpirecon.plan import ReconstructionPlan, run_plan
    from mpirecon.cli.common import parse_params

    plan = ReconstructionPlan.from_result(args.result).with_changes(
        method={"parameters": parse_params(args.param)},
        output={"path": args.output, "png": args.png, "overwrite": bool(args.overwrite)})
    check_outputs({"-o": args.output, "--png": args.png, "--save-plan": args.save_plan}, (args.result,),
                  overwrite=args.overwrite)
    if args.save_plan:
        plan.absolute().save(args.save_plan)
    result = run_plan(plan, progress=True, log=lambda line: print(line, file=sys.stderr))
    print(f"wrote {args.output} ({result.frames} frame(s)) from the plan of {args.result}; " + result.timing_line())
    return 0
