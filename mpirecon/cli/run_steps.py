"""The input options of ``mpirecon run`` (frames, preprocessing) and their translation into the
plan sections they set (:mod:`mpirecon.plan.model`). The pipeline itself is
:func:`mpirecon.plan.pipeline.run_plan`."""
from __future__ import annotations


def add_input_args(p) -> None:
    """The input options: frames (``--frames``, ``--average``, ``--average-blocks``,
    ``--background-frames``, ``--block-size``) and preprocessing (scanner check, row weighting,
    transfer function)."""
    p.add_argument("--frames", default=None, metavar="SPEC",
                   help="foreground frames, 0-based, Python style: 5, 0:100 (stop exclusive), 0:100:2, "
                   "-1 (last), several separated by commas (0:10,20,-1); None: all")
    p.add_argument("--average", action="store_true", help="average the selected frames into one")
    p.add_argument("--average-blocks", type=int, default=None, metavar="N",
                   help="average consecutive blocks of N selected frames (MPIReco's nAverages)")
    p.add_argument("--background-frames", default=None, metavar="SPEC",
                   help="background (empty-scanner) frames to use, same syntax as --frames; None: all")
    p.add_argument("--block-size", type=int, default=None, metavar="N",
                   help="frames read, reconstructed and written at a time (memory of one block); None: 1000, or fewer "
                   "when the method's estimate for them exceeds the memory budget")
    p.add_argument("--ignore-scanner-mismatch", action="store_true",
                   help="reconstruct even if drive field, receiver or gradient differ from the calibration's (warns)")
    p.add_argument("--row-weighting", default=None, choices=["none", "rownorm", "whiten"],
                   help="weight every row of matrix and measurement alike: by 1/row norm, or by 1/noise sigma "
                   "of the row (calibration SNR); None: none")
    p.add_argument("--transfer-function", default=None, metavar="FILE",
                   help="transfer function (an MDF file holding one, or HDF5 with /transferFunction, C x K complex) "
                   "used when calibration and measurement differ in isTransferFunctionCorrected (None: the file's own)")


def plan_changes(args) -> dict:
    """The plan fields the options of ``args`` set: ``{section: {field: value}}``, only options
    given (so they override a ``--plan``); file paths as given (messages name them so)."""
    inputs = {"measurement": args.measurement, "calibration": args.sm, "background": args.background,
              "transfer_function": args.transfer_function, "weights": args.weights}
    selection = {"snr_threshold": args.snr_threshold, "min_frequency": args.min_freq, "max_frequency": args.max_freq,
                 "channels": args.channels, "num_used_freqs": args.num_used_freqs, "slice": args.slice}
    frames = {"frames": args.frames, "average": args.average or None, "average_blocks": args.average_blocks,
              "background_frames": args.background_frames, "block_size": args.block_size,
              "subtract_background": False if args.no_background_correction else None}
    pre = {"row_weighting": args.row_weighting, "scanner_mismatch": "warn" if args.ignore_scanner_mismatch else None}
    method = {"name": args.method, "memory_limit": args.memory_limit}
    output = {"path": args.output, "png": args.png, "overwrite": args.overwrite or None}
    changes = {name: {k: v for k, v in part.items() if v is not None} for name, part in (
        ("inputs", inputs), ("selection", selection), ("frames", frames), ("preprocessing", pre),
        ("method", method), ("output", output))}
    from mpirecon.cli.common import parse_params
    params = parse_params(args.param)
    if args.device:
        params["device"] = args.device
    changes["method"]["parameters"] = params
    return changes
