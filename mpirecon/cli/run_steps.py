"""The input side of ``mpirecon run``: frame options, the timed solve and the provenance record.

Kept apart from :mod:`mpirecon.cli.run_cmd` so the command itself stays a short script.
"""
from __future__ import annotations

import hashlib
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np


def add_input_args(p) -> None:
    """The input options: frames (``--frames``, ``--average``, ``--average-blocks``,
    ``--background-frames``) and the scanner-consistency override."""
    p.add_argument("--frames", default=None, metavar="SPEC",
                   help="foreground frames, 0-based, Python style: 5, 0:100 (stop exclusive), 0:100:2, "
                   "-1 (last), several separated by commas (0:10,20,-1); None: all")
    p.add_argument("--average", action="store_true", help="average the selected frames into one")
    p.add_argument("--average-blocks", type=int, default=None, metavar="N",
                   help="average consecutive blocks of N selected frames (MPIReco's nAverages)")
    p.add_argument("--background-frames", default=None, metavar="SPEC",
                   help="background (empty-scanner) frames to use, same syntax as --frames; None: all")
    p.add_argument("--ignore-scanner-mismatch", action="store_true",
                   help="reconstruct even if drive field, receiver or gradient differ from the calibration's (warns)")
    p.add_argument("--row-weighting", default="none", choices=["none", "rownorm", "whiten"],
                   help="weight every row of matrix and measurement alike: by 1/row norm, or by 1/noise sigma "
                   "of the row (calibration SNR)")
    p.add_argument("--transfer-function", default=None, metavar="FILE",
                   help="transfer function (an MDF file holding one, or HDF5 with /transferFunction, C x K complex) "
                   "used when calibration and measurement differ in isTransferFunctionCorrected (None: the file's own)")


class RowWeighting:
    """``--row-weighting``: weights the calibration before binding and the measurement after loading,
    identically (see :mod:`mpirecon.weighting`)."""

    def __init__(self, mode: str):
        self.mode = mode
        self.sm = self.weights = None

    def weighted(self, sm):
        """``sm`` with rows weighted (unchanged for 'none')."""
        if self.mode == "none":
            return sm
        from mpirecon.weighting import row_weights, weight_system_matrix
        self.sm, self.weights = sm, row_weights(sm, self.mode)
        return weight_system_matrix(sm, self.weights, self.mode)

    def applied(self, meas, bound):
        """``meas`` (matched to ``bound``, the method's system matrix) with the same row weights."""
        if self.weights is None or bound is None:
            return meas
        from mpirecon.weighting import weight_measurement
        return weight_measurement(meas, self.sm, bound, self.weights)


def _given_transfer_function(args):
    if args.transfer_function is None:
        return None
    from mdf_io.transfer import read_transfer_function_file
    return read_transfer_function_file(args.transfer_function)


def transfer_corrected_calibration(args, sm):
    """``sm`` divided by the transfer function when it is uncorrected and the measurement is
    corrected (MPIFiles' rule: whichever of the two is uncorrected gets corrected)."""
    from mdf_io import MDFFile
    from mpirecon.transfer import correct_system_matrix

    with MDFFile(args.measurement) as mdf:
        meas_corrected = mdf.layout.transfer_function_corrected
    if sm.transfer_function_corrected or not meas_corrected:
        return sm
    print(f"dividing calibration {args.sm} by the transfer function (the measurement is corrected)", file=sys.stderr)
    return correct_system_matrix(sm, _given_transfer_function(args))


def transfer_corrected_measurement(args, meas, system_matrix):
    """``meas`` divided by the transfer function when it is uncorrected and ``system_matrix`` is
    corrected (None: no calibration, unchanged)."""
    from mpirecon.transfer import correct_measurement

    if system_matrix is None or meas.transfer_function_corrected or not system_matrix.transfer_function_corrected:
        return meas
    print(f"dividing measurement {args.measurement} by the transfer function (the calibration is corrected)",
          file=sys.stderr)
    return correct_measurement(meas, _given_transfer_function(args))


def check_scanner_settings(args, meas, system_matrix) -> None:
    """Refuse a measurement taken with other scanner settings than ``system_matrix`` (None: no
    check), or print one warning line per difference with ``--ignore-scanner-mismatch``."""
    if system_matrix is None:
        return
    from mpirecon.consistency import check_scanner, scanner_mismatches

    if not args.ignore_scanner_mismatch:
        check_scanner(meas.header, system_matrix.header, args.measurement, args.sm)
        return
    for path, cal, found in scanner_mismatches(meas.header, system_matrix.header):
        print(f"mpirecon: warning: {args.measurement}: field '{path}': {found}, calibration {args.sm} has {cal}; "
              "reconstructing anyway (--ignore-scanner-mismatch)", file=sys.stderr)


def take_frames(meas, index):
    """``meas`` (an :class:`mdf_io.Measurement`) restricted to foreground rows ``index`` (a slice)."""
    return replace(meas, data=meas.data[index], frame_indices=np.asarray(meas.frame_indices)[index])


def reconstruct_timed(recon, meas) -> tuple:
    """Reconstruct ``meas`` frame 0 first (warm-up: lazy allocations, thread pools), then the rest.

    Returns:
        (images (F, *image_shape*), the first frame's :class:`ReconstructionResult`,
        seconds of the first frame, seconds per frame of frames 1..F-1 or None when F == 1).
    """
    first = recon.reconstruct(take_frames(meas, slice(0, 1)))
    if meas.num_frames == 1:
        return first.images, first, first.seconds, None
    rest = recon.reconstruct(take_frames(meas, slice(1, None)))
    return (np.concatenate([first.images, rest.images]), first, first.seconds,
            rest.seconds / (meas.num_frames - 1))


def timing_line(setup_s: float, first_s: float, per_frame_s, frames: int) -> str:
    """Human-readable timing: set-up (reading + binding) and solve time per frame (warm-up apart)."""
    text = f"set-up {setup_s:.2f} s (reading, selection, method set-up); first frame {1e3 * first_s:.2f} ms (warm-up)"
    if per_frame_s is not None:
        text += f"; solve {1e3 * per_frame_s:.3f} ms/frame over the other {frames - 1} frame(s)"
    return text


class Stopwatch:
    """``perf_counter`` seconds since construction (``.elapsed()``)."""

    def __init__(self):
        self.t0 = time.perf_counter()

    def elapsed(self) -> float:
        """Seconds since the stopwatch was made."""
        return time.perf_counter() - self.t0


def file_identity(path) -> dict:
    """``{"path", "uuid"}`` of an MDF file (its root ``/uuid``), or ``{"path", "sha256"}`` of any
    other file (e.g. weights); None for ``path`` None."""
    if path is None:
        return None
    from mdf_io import MDFError, MDFFile
    try:
        with MDFFile(path) as mdf:
            return {"path": str(path), "uuid": mdf.header.general.uuid}
    except MDFError:
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        return {"path": str(path), "sha256": digest}


def frame_duration(header) -> float | None:
    """Seconds of one frame: drive-field cycle (else V / (2 bandwidth)) x periods per frame x
    averages; None when the receiver is unknown."""
    acq = header.acquisition
    cycle = acq.drivefield.cycle
    if not cycle or cycle <= 0:
        bw = acq.receiver.bandwidth
        cycle = acq.receiver.num_sampling_points / (2 * bw) if bw > 0 else 0.0
    return cycle * acq.num_periods_per_frame * max(acq.num_averages, 1) or None


def frames_record(args, meas) -> dict:
    """The frame selection recorded in the reconstruction's parameters (options as given, the
    foreground frame of each reconstructed frame, -1 for an average, and the frame duration)."""
    return {"frames": args.frames, "average": bool(args.average), "average_blocks": args.average_blocks,
            "background_frames": args.background_frames,
            "frame_indices": [int(i) for i in np.asarray(meas.frame_indices).ravel()],
            "frame_duration_s": frame_duration(meas.header)}
