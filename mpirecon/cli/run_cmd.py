"""``mpirecon run``: reconstruct a measurement with one method and write an MDF ``/reconstruction``."""
from __future__ import annotations

import sys

import numpy as np

from ..errors import UsageError
from ..memory import process_peak_bytes
from ..outputs import check_outputs, check_space, writing
from ..selection import DEFAULT_SNR_THRESHOLD
from .common import parse_params
from .run_steps import (RowWeighting, Stopwatch, add_input_args, check_scanner_settings, file_identity, frames_record,
                        reconstruct_timed, timing_line, transfer_corrected_calibration,
                        transfer_corrected_measurement)


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
    p.add_argument("measurement", help="MDF measurement file")
    p.add_argument("--sm", default=None, help="MDF calibration (system-matrix) file (optional for methods whose "
                   "weights carry the geometry, e.g. dernet)")
    p.add_argument("--method", required=True, help="reconstructor name (see `mpirecon methods`)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="method parameter, repeatable")
    p.add_argument("--weights", default=None, help="weights file for learned methods")
    add_input_args(p)
    p.add_argument("--background", default=None, help="separate empty-scanner measurement to subtract")
    p.add_argument("--no-background-correction", action="store_true", help="do not subtract background frames")
    p.add_argument("--device", default=None, help="cpu or cuda (methods with a torch path)")
    p.add_argument("-o", "--output", required=True, help="output MDF file with /reconstruction")
    p.add_argument("--png", default=None, help="also write a PNG of the first frame")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--memory-limit", default=None, metavar="SIZE",
                   help="memory budget (e.g. 4G, 500M): picks the working precision (float64 when it fits, else "
                   "float32; float32 first for methods on the compressed operator) and refuses up front when the "
                   "method's estimate exceeds it (None: "
                   "70%% of the memory still available to this process)")
    add_selection_args(p)


def run(args) -> int:
    """Reconstruct ``args.measurement`` with ``args.method`` and write ``args.output`` (+ PNG)."""
    from mpirecon.loading import load_measurement_for, load_system_matrix
    from mpirecon.registry import get_reconstructor_class

    outputs = check_outputs({"-o": args.output, "--png": args.png},
                            (args.measurement, args.sm, args.background, args.weights, args.transfer_function),
                            overwrite=args.overwrite)
    clock = Stopwatch()
    weighting = RowWeighting(args.row_weighting)
    cls = get_reconstructor_class(args.method)
    params = parse_params(args.param)
    if args.device:
        params["device"] = args.device
    recon = cls(None, weights=args.weights, **params)
    if args.sm is None:
        if cls.capabilities.needs_system_matrix or recon.geometry is None:
            raise UsageError(f"--sm: method '{args.method}' needs the system matrix (calibration file)")
        print(f"using the geometry stored in {args.weights} ({recon.geometry.num_rows} rows, "
              f"grid {recon.geometry.grid})", file=sys.stderr)
        target = recon.geometry
        fov = np.asarray(recon.geometry.fov)
    else:
        threshold = args.snr_threshold
        if threshold is None:
            trained = recon.geometry.selection if recon.geometry is not None else {}
            threshold = trained.get("snr_threshold", DEFAULT_SNR_THRESHOLD)
        recon, plan = planned_precision(args, cls, recon, params, threshold)
        check_space(outputs["-o"], plan["frames"] * plan["voxels"] * 8 + 2 ** 20)  # the images, before the work
        print(f"reading system matrix {args.sm} (SNR > {threshold})", file=sys.stderr)
        # a method working in float32 gets the calibration in complex64: half the memory
        matrix_dtype = np.complex64 if getattr(recon.config, "dtype", None) == "float32" else np.complex128
        sm = load_system_matrix(args.sm, snr_threshold=threshold, min_frequency=args.min_freq,
                                max_frequency=args.max_freq, receive_channels=args.channels,
                                num_used_freqs=args.num_used_freqs, slice=args.slice, progress=True,
                                dtype=matrix_dtype)
        print(f"  {sm.num_rows} of {sm.selection.get('num_rows_total')} rows kept, grid {sm.grid}", file=sys.stderr)
        sm = transfer_corrected_calibration(args, sm)
        recon.bind(weighting.weighted(sm))
        target = recon.system_matrix
        fov = sm.fov
    meas = load_measurement_for(args.measurement, target, frames=args.frames, average=args.average,
                                average_blocks=args.average_blocks, background_frames=args.background_frames,
                                subtract_background=not args.no_background_correction, background=args.background)
    check_scanner_settings(args, meas, recon.system_matrix)
    meas = weighting.applied(transfer_corrected_measurement(args, meas, recon.system_matrix), recon.system_matrix)
    print(f"reconstructing {meas.num_frames} frame(s) with {args.method}", file=sys.stderr)
    setup_s = clock.elapsed()
    images, result, first_s, per_frame_s = reconstruct_timed(recon, meas)
    result.images = images
    rec = result.to_reconstruction(header=meas.header)
    rec.parameters["measurement"] = str(args.measurement)
    rec.parameters["system_matrix"] = str(args.sm)
    if args.weights:
        rec.parameters["weights"] = str(args.weights)
    rec.parameters["inputs"] = {k: file_identity(v) for k, v in (
        ("measurement", args.measurement), ("system_matrix", args.sm), ("background", args.background),
        ("weights", recon.weights_file), ("transfer_function", args.transfer_function)) if v is not None}
    rec.parameters["frames"] = frames_record(args, meas)
    if args.sm is not None:
        rec.parameters["memory"] = dict(plan, peak_bytes=process_peak_bytes())
    write_outputs(outputs, rec, title=args.method, fov=fov, overwrite=args.overwrite)
    print(f"wrote {', '.join(map(str, outputs.values()))} ({result.images.shape[0]} frame(s)); "
          + timing_line(setup_s, first_s, per_frame_s, result.images.shape[0]))
    return 0


def planned_precision(args, cls, recon, params: dict, threshold: float):
    """(the reconstructor in the working precision that fits the memory budget, the plan as a dict):
    the method's estimate for the selected rows, voxels and frames, known before the matrix is read
    (:mod:`mpirecon.memory`); a one-line :class:`~mpirecon.memory.MemoryBudgetError` when nothing fits."""
    from mpirecon.loading import reconstructed_frame_count, selected_problem_size
    from mpirecon.memory import budget_from, format_bytes, plan_precision

    try:
        budget, source = budget_from(args.memory_limit)
    except ValueError as exc:
        raise UsageError(f"--memory-limit: {exc}") from None
    rows, voxels = selected_problem_size(args.sm, threshold, args.min_freq, args.max_freq, args.channels,
                                         args.num_used_freqs, args.slice)
    frames = reconstructed_frame_count(args.measurement, frames=args.frames, average=args.average,
                                       average_blocks=args.average_blocks)
    est = plan_precision(cls, params, rows, voxels, frames, budget, source)
    if "dtype" in cls.Config.model_fields and recon.config.dtype != est.precision:
        recon = recon.with_params(dtype=est.precision)
    chosen = "given" if "dtype" in params else "chosen for the budget"
    print(f"memory: {cls.name} needs about {est.describe()}; budget {format_bytes(budget)} ({source}); "
          f"precision {est.precision} ({chosen})", file=sys.stderr)
    return recon, {"estimate_bytes": est.total, "budget_bytes": budget, "budget": source,
                   "precision": est.precision, "precision_source": chosen, "strategy": est.strategy,
                   "rows": rows, "voxels": voxels, "frames": frames}


def write_outputs(outputs: dict, rec, *, title: str, fov, overwrite: bool) -> None:
    """Write the reconstruction (``outputs["-o"]``) and, if asked, the PNG of its first frame
    (``outputs["--png"]``) as one outcome: both appear, complete, or neither does."""
    from mdf_io import write_reconstruction
    from mpirecon.figures import image_png

    needs = np.asarray(rec.images).size * 8 + 2 ** 20 + (2 ** 20 if "--png" in outputs else 0)
    with writing(list(outputs.values()), overwrite=overwrite, needs=needs) as tmps:
        tmp = dict(zip(outputs, tmps))
        write_reconstruction(tmp["-o"], rec, overwrite=True)  # the temporary file exists (empty)
        if "--png" in tmp:
            first = np.asarray(rec.images)[0]
            if first.ndim == 3:  # three slices through the maximum + MIP, in mm (as `export`)
                from mpirecon.export import draw_frame
                from mpirecon.figures import save_figure
                lo, hi = float(first.min()), float(first.max())
                save_figure(draw_frame(rec, 0, lo, hi if hi > lo else lo + 1.0, title), tmp["--png"], overwrite=True)
            else:
                image_png(tmp["--png"], first, title=title, fov=fov, overwrite=True)
