"""The preprocessing steps of a :class:`~mpirecon.plan.model.ReconstructionPlan`, each a function
of the plan: transfer-function correction, row weighting, the scanner-consistency check and the
provenance recorded with the result. :func:`mpirecon.plan.pipeline.run_plan` composes them."""
from __future__ import annotations

import hashlib
import platform
import sys
from pathlib import Path

import numpy as np


class RowWeighting:
    """Row weighting (``preprocessing.row_weighting``): weights the calibration before binding and
    the measurement after loading, identically (see :mod:`mpirecon.preprocess.weighting`)."""

    def __init__(self, mode: str):
        self.mode = mode
        self.sm = self.weights = None

    def weighted(self, sm):
        """``sm`` with rows weighted (unchanged for 'none')."""
        if self.mode == "none":
            return sm
        from mpirecon.preprocess.weighting import row_weights, weight_system_matrix
        self.sm, self.weights = sm, row_weights(sm, self.mode)
        return weight_system_matrix(sm, self.weights, self.mode)

    def applied(self, meas, bound):
        """``meas`` (matched to ``bound``, the method's system matrix) with the same row weights."""
        if self.weights is None or bound is None:
            return meas
        from mpirecon.preprocess.weighting import weight_measurement
        return weight_measurement(meas, self.sm, bound, self.weights)


def given_transfer_function(plan):
    """The transfer function of ``plan.inputs.transfer_function`` (None: the files' own)."""
    if plan.inputs.transfer_function is None:
        return None
    from mdf_io.transfer import read_transfer_function_file
    return read_transfer_function_file(plan.inputs.transfer_function)


def measurement_is_corrected(plan) -> bool:
    """Whether the measurement file is already divided by the transfer function (header only)."""
    from mdf_io import MDFFile
    with MDFFile(plan.inputs.measurement) as mdf:
        return bool(mdf.layout.transfer_function_corrected)


def transfer_corrected_calibration(plan, sm, meas_corrected: bool, log):
    """``sm`` divided by the transfer function when it is uncorrected and the measurement is
    corrected (MPIFiles' rule: whichever of the two is uncorrected gets corrected)."""
    from mpirecon.preprocess.transfer import correct_system_matrix
    if plan.preprocessing.transfer_correction == "off" or sm.transfer_function_corrected or not meas_corrected:
        return sm
    log(f"dividing calibration {plan.inputs.calibration} by the transfer function (the measurement is corrected)")
    return correct_system_matrix(sm, given_transfer_function(plan))


def transfer_corrected_measurement(plan, meas, system_matrix, log, given=None):
    """``meas`` divided by the transfer function when it is uncorrected and ``system_matrix`` is
    corrected (None: no calibration, unchanged). ``given``: a callable returning the transfer
    function of ``inputs.transfer_function`` (read once per run by the caller; default: read now)."""
    from mpirecon.preprocess.transfer import correct_measurement
    if (plan.preprocessing.transfer_correction == "off" or system_matrix is None
            or meas.transfer_function_corrected or not system_matrix.transfer_function_corrected):
        return meas
    log(f"dividing measurement {plan.inputs.measurement} by the transfer function (the calibration is corrected)")
    return correct_measurement(meas, (given or (lambda: given_transfer_function(plan)))())


def check_scanner_settings(plan, meas, system_matrix, log) -> None:
    """Refuse a measurement taken with other scanner settings than ``system_matrix`` (None: no
    check), or log one warning line per difference when ``scanner_mismatch`` is 'warn'."""
    if system_matrix is None:
        return
    from mpirecon.preprocess.consistency import check_scanner, scanner_mismatches
    if plan.preprocessing.scanner_mismatch == "error":
        check_scanner(meas.header, system_matrix.header, plan.inputs.measurement, plan.inputs.calibration)
        return
    for path, cal, found in scanner_mismatches(meas.header, system_matrix.header):
        log(f"mpirecon: warning: {plan.inputs.measurement}: field '{path}': {found}, calibration "
            f"{plan.inputs.calibration} has {cal}; reconstructing anyway (scanner_mismatch = warn)")


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


def frames_record(plan, frame_indices, header) -> dict:
    """The frame selection recorded in the reconstruction's parameters (as given, the foreground
    frame of each reconstructed frame, -1 for an average, and the frame duration in s)."""
    f = plan.frames
    return {"frames": f.frames, "average": bool(f.average), "average_blocks": f.average_blocks,
            "background_frames": f.background_frames,
            "frame_indices": [int(i) for i in np.asarray(frame_indices).ravel()],
            "frame_duration_s": frame_duration(header)}


def versions() -> dict:
    """The versions a result depends on: mpirecon, Python, numpy, h5py, and torch when loaded."""
    import h5py
    from mpirecon._version import __version__
    out = {"mpirecon": __version__, "python": platform.python_version(), "numpy": np.__version__,
           "h5py": h5py.__version__}
    if "torch" in sys.modules:
        out["torch"] = sys.modules["torch"].__version__
    return out


def provenance(plan, recon, frame_indices, header) -> dict:
    """What a result file records about its making: input paths and identities, frames, the plan
    and the versions (merged into the reconstruction's parameters)."""
    inputs = plan.inputs
    record = {"measurement": str(inputs.measurement), "system_matrix": str(inputs.calibration)}
    if inputs.weights:
        record["weights"] = str(inputs.weights)
    record["inputs"] = {k: file_identity(v) for k, v in (
        ("measurement", inputs.measurement), ("system_matrix", inputs.calibration),
        ("background", inputs.background), ("weights", recon.weights_file),
        ("transfer_function", inputs.transfer_function)) if v is not None}
    record["frames"] = frames_record(plan, frame_indices, header)
    record["plan"] = plan.absolute().to_dict()  # re-runs from any folder (`mpirecon rerun`)
    record["versions"] = versions()
    return record
