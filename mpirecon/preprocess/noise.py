"""The noise level of a measurement, carried through the reconstruct path.

Stopping rules (DIP's discrepancy principle), automatic regularisation and training need the
noise level of the spectra being reconstructed. :func:`estimate_noise` finds it, in order of
preference: given by the caller; from the measurement's background (empty-scanner) frames;
from the calibration's per-row SNR.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from mdf_io import Measurement, SystemMatrix

from mpirecon.physics.linalg import row_energies

#: NoiseEstimate.source values
GIVEN, BACKGROUND_FRAMES, CALIBRATION_SNR = "given", "measurement background frames", "calibration snr"


@dataclass(frozen=True)
class NoiseEstimate:
    """Per-row noise standard deviation of complex spectra.

    Attributes:
        sigma: (R,) float64, ``sqrt(E|n_r|²)`` in the measurement's units, rows as the geometry's;
            or (F, R) / (F, 1) when each frame has its own level (e.g. a simulation that knows it).
        source: ``"given"``, ``"measurement background frames"`` or ``"calibration snr"``.
    """

    sigma: np.ndarray
    source: str

    def expected_residual(self):
        """Expected ``||n||²`` of one frame: ``Σ_r σ_r²`` (the discrepancy-principle target); a float,
        or (F,) for per-frame σ."""
        energy = np.sum(self.sigma ** 2, axis=-1)
        return float(energy) if np.ndim(energy) == 0 else energy

    def rows(self, num_frames: int, num_rows: int) -> np.ndarray:
        """σ broadcast to (F, R) for ``num_frames`` frames of ``num_rows`` rows."""
        s = self.sigma if self.sigma.ndim == 2 else self.sigma[None, :]
        return np.broadcast_to(s, (num_frames, num_rows))

    def summary(self) -> dict:
        """JSON-ready description (recorded with results)."""
        return {"source": self.source, "sigma_rms": float(np.sqrt(np.mean(self.sigma ** 2)))}


def from_background(background: np.ndarray, subtracted: bool = True, averaged: int = 1) -> Optional[NoiseEstimate]:
    """Noise from empty-scanner frames (E, R) (None if fewer than 2) of data whose every frame is the
    mean of ``averaged`` acquisition frames: a single frame's σ over ``sqrt(averaged)``. Subtracting
    the mean of the E background frames adds its own noise, so the level of a corrected frame is
    ``σ sqrt(1/averaged + 1/E)``."""
    bg = np.asarray(background)
    if bg.ndim != 2 or bg.shape[0] < 2:
        return None
    sigma = np.sqrt(np.mean(np.abs(bg - bg.mean(axis=0, keepdims=True)) ** 2, axis=0) * bg.shape[0]
                    / (bg.shape[0] - 1))
    n = max(int(averaged), 1)
    sigma = sigma * np.sqrt(1.0 / n + (1.0 / bg.shape[0] if subtracted else 0.0))
    return NoiseEstimate(sigma=sigma, source=BACKGROUND_FRAMES)


def from_calibration(system_matrix: SystemMatrix) -> Optional[NoiseEstimate]:
    """Noise from ``/calibration/snr`` (row RMS over voxels / SNR); None without finite SNRs.
    Computed once per matrix (kept in its ``cache``: a pass over the matrix per frame costs more
    than a small solve)."""
    key = "mpirecon.preprocess.noise.from_calibration"
    if key not in system_matrix.cache:
        system_matrix.cache[key] = _from_calibration(system_matrix)
    return system_matrix.cache[key]


def _from_calibration(system_matrix: SystemMatrix) -> Optional[NoiseEstimate]:
    snr = np.asarray(system_matrix.snr, np.float64)
    if not np.all(np.isfinite(snr)) or np.any(snr <= 0):
        return None
    m = system_matrix.matrix
    rms = np.sqrt(row_energies(m) / m.shape[1])  # row blocks for large matrices
    return NoiseEstimate(sigma=rms / snr, source=CALIBRATION_SNR)


def estimate_noise(measurement=None, system_matrix: Optional[SystemMatrix] = None,
                   given=None, num_rows: Optional[int] = None) -> Optional[NoiseEstimate]:
    """The best available :class:`NoiseEstimate` (or None).

    Args:
        measurement: a :class:`mdf_io.Measurement` already matched to the geometry's rows.
        system_matrix: the bound (selected) system matrix, for the SNR fallback.
        given: a :class:`NoiseEstimate`, a scalar σ, an (R,) array of σ, or (F, 1) / (F, R)
            with one level per frame.
        num_rows: R, to broadcast a scalar ``given``.
    """
    if isinstance(given, NoiseEstimate):
        return given
    if given is not None:
        sigma = np.asarray(given, np.float64)
        if sigma.ndim == 0:
            sigma = np.full(num_rows or 1, float(sigma))
        elif sigma.ndim == 2 and sigma.shape[1] == 1 and num_rows:
            sigma = np.repeat(sigma, num_rows, axis=1)  # one level per frame, every row
        return NoiseEstimate(sigma=sigma, source=GIVEN)
    if isinstance(measurement, Measurement) and measurement.background is not None:
        est = from_background(measurement.background, measurement.background_subtracted,
                              getattr(measurement, "frames_averaged", 1))
        if est is not None:
            return est
    if system_matrix is not None:
        return from_calibration(system_matrix)
    return None
