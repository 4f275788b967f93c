"""Transfer-function correction of spectra, as MPIFiles.jl does it.

The receive chain multiplies the induced spectrum by its transfer function TF(f, channel). A
file whose ``isTransferFunctionCorrected`` flag is set holds spectra already divided by it.
When a calibration and a measurement differ in that flag, the uncorrected one is divided by the
transfer function (its own ``/acquisition/receiver/transferFunction``, or one given), so both
are in the same units.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Optional

import numpy as np

from mdf_io import Measurement, MDFMismatchError, RowIndex, SystemMatrix
from mdf_io.transfer import TF


def transfer_rows(tf: np.ndarray, rows: RowIndex, source=None) -> np.ndarray:
    """The transfer function (C, K_full) complex at each row's (channel, frequency): (R,) complex."""
    tf = np.atleast_2d(np.asarray(tf, np.complex128))
    if rows.channel.max(initial=0) >= tf.shape[0] or rows.frequency_index.max(initial=0) >= tf.shape[1]:
        raise MDFMismatchError(source, TF, f"at least {rows.channel.max() + 1} channels x "
                               f"{rows.frequency_index.max() + 1} frequencies", f"shape {tf.shape}")
    return tf[rows.channel, rows.frequency_index]


def divide(spectra: np.ndarray, tf_rows: np.ndarray) -> np.ndarray:
    """``spectra`` (..., R) divided by ``tf_rows`` (R,); rows where the transfer function is 0
    (no transmission, e.g. DC) become 0."""
    safe = np.where(tf_rows != 0, tf_rows, 1.0)
    return np.where(tf_rows != 0, spectra / safe, 0.0)


def correct_measurement(meas: Measurement, tf: Optional[np.ndarray] = None) -> Measurement:
    """``meas`` with foreground and background spectra divided by ``tf`` (default: the file's own
    transfer function) and marked corrected. Raises MDFMismatchError without a transfer function."""
    tf = meas.transfer_function if tf is None else tf
    if tf is None:
        raise MDFMismatchError(meas.source, TF, "a transfer function to correct this uncorrected measurement "
                               "(or --transfer-function FILE)", "none")
    t = transfer_rows(tf, meas.rows, meas.source)
    bg = None if meas.background is None else divide(meas.background, t)
    return replace(meas, data=divide(meas.data, t), background=bg, transfer_function_corrected=True)


def correct_system_matrix(sm: SystemMatrix, tf: Optional[np.ndarray] = None) -> SystemMatrix:
    """``sm`` with every row divided by ``tf`` (default: the file's own) and marked corrected."""
    tf = sm.transfer_function if tf is None else tf
    if tf is None:
        raise MDFMismatchError(sm.source, TF, "a transfer function to correct this uncorrected calibration "
                               "(or --transfer-function FILE)", "none")
    t = transfer_rows(tf, sm.rows, sm.source)
    return replace(sm, matrix=divide(sm.matrix, t[:, None]), transfer_function_corrected=True, cache={})
