"""Row weighting applied identically to the system matrix and the measurement.

Weighting row r of ``A x = b`` by ``w_r`` (``diag(w) A x = diag(w) b``) changes the least-squares
metric without changing the exact solution:

* ``none``: w = 1;
* ``rownorm``: w = 1 / ||a_r|| (every row equally important, as MPIReco's row normalisation);
* ``whiten``: w = 1 / σ_r with σ_r the noise of row r from the calibration SNR
  (σ_r = RMS_r / SNR_r, :func:`mpirecon.preprocess.noise.from_calibration`): a noise-whitened problem.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from mpirecon.errors import UsageError

from mdf_io import Measurement, SystemMatrix

from mpirecon.preprocess.noise import from_calibration

MODES = ("none", "rownorm", "whiten")


def row_weights(sm: SystemMatrix, mode: str) -> np.ndarray:
    """Weights (R,) float64 of the rows of ``sm`` for ``mode`` (one of :data:`MODES`)."""
    if mode not in MODES:
        raise UsageError(f"--row-weighting: expected one of {', '.join(MODES)}, found '{mode}'")
    if mode == "none":
        return np.ones(sm.num_rows)
    if mode == "rownorm":
        norm = np.sqrt(np.sum(np.abs(sm.matrix) ** 2, axis=1))
        return np.where(norm > 0, 1.0 / np.where(norm > 0, norm, 1.0), 0.0)
    noise = from_calibration(sm)
    if noise is None:
        raise UsageError(f"{sm.source or 'system matrix'}: field '/calibration/snr': --row-weighting whiten "
                         "expected finite positive SNRs, found none or infinite ones")
    return 1.0 / noise.sigma


def weight_system_matrix(sm: SystemMatrix, weights: np.ndarray, mode: str) -> SystemMatrix:
    """``diag(weights) A`` with the mode recorded in ``.selection['row_weighting']`` (fresh cache)."""
    w = np.asarray(weights, np.float64)
    return replace(sm, matrix=sm.matrix * w[:, None], selection=dict(sm.selection, row_weighting=mode), cache={})


def weight_measurement(meas: Measurement, sm: SystemMatrix, weighted: SystemMatrix, weights: np.ndarray) -> Measurement:
    """``meas`` (columns as ``weighted``'s rows, a subset of ``sm``'s) with each column (foreground
    and background) multiplied by the weight of its row in ``sm``."""
    w = np.asarray(weights, np.float64)[sm.rows.positions_of(weighted.rows)]
    bg = None if meas.background is None else meas.background * w
    return replace(meas, data=meas.data * w, background=bg)
