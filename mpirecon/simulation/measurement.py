"""Simulated scanner measurements (physics model + scanner background + receive noise)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mdf_io import MDFHeader, RowIndex, SystemMatrix, write_mdf

from mpirecon.errors import ReconstructorError
from mpirecon.simulation.noise import complex_noise, noise_sigma
from mpirecon.simulation.system_matrix import SimulatedCalibration, scanner_header

#: rows whose calibration SNR exceeds this count as "signal rows" for the SNR definition
SIGNAL_ROW_SNR = 1.5


@dataclass
class SimulatedMeasurement:
    """Spectra of a simulated acquisition, all rows of the calibration (C x K).

    foreground: (O, R) complex — particle signal + background + noise per frame.
    background: (E, R) complex — empty-scanner frames (background + noise).
    clean: (O, R) — the noise-free particle signal (for checking the SNR).
    sigma: noise σ per bin (complex, E|n|² = σ²).
    """

    foreground: np.ndarray
    background: np.ndarray
    clean: np.ndarray
    sigma: float
    rows: RowIndex
    signal_rows: np.ndarray

    def achieved_snr_db(self) -> float:
        """SNR (dB) over the signal rows of background-corrected frames vs the clean signal
        (definition in :mod:`mpirecon.simulation.noise`)."""
        corrected = self.foreground - self.background.mean(axis=0, keepdims=True)
        sel = self.signal_rows
        err = corrected[:, sel] - self.clean[:, sel]
        return float(10 * np.log10(np.mean(np.abs(self.clean[:, sel]) ** 2) / np.mean(np.abs(err) ** 2)))


def simulate_spectra(sim: SimulatedCalibration | SystemMatrix, phantoms: np.ndarray, snr_db: float,
                     *, frames_per_phantom: int = 1, background_frames: int = 10,
                     seed: int | np.random.Generator = 0, background: np.ndarray | None = None) -> SimulatedMeasurement:
    """Simulate measurement spectra of ``phantoms`` (n, *image_shape) or one image_shape at ``snr_db``.

    The particle signal comes from the noise-free physics model when ``sim`` is a
    :class:`SimulatedCalibration` (realistic: a different matrix than the noisy calibration)
    or from ``sim`` itself when it is a plain :class:`SystemMatrix` (e.g. a measured one).
    σ is set once from the mean signal power over the signal rows (calibration SNR > 1.5) of
    all phantoms, so frames of one acquisition share one noise level. Raises
    :class:`~mpirecon.errors.ReconstructorError` for a non-finite SNR, no frames or a phantom
    that does not fit the grid.
    """
    if not np.all(np.isfinite(snr_db)):
        raise ReconstructorError(f"parameter 'snr_db': expected a finite SNR in dB, found {snr_db}")
    if frames_per_phantom < 1 or background_frames < 0:
        raise ReconstructorError(f"expected frames_per_phantom >= 1 and background_frames >= 0, found "
                                 f"{frames_per_phantom} and {background_frames}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if isinstance(sim, SimulatedCalibration):
        model, calib, bg = sim.physics, sim.calibration, sim.background
    else:
        model = calib = sim
        bg = np.zeros(sim.num_rows, complex) if background is None else background
    images = np.asarray(phantoms, dtype=np.float64)
    if images.shape == tuple(model.image_shape):  # one phantom, 2D or 3D
        images = images[None]
    if images.ndim != len(model.image_shape) + 1 or images.shape[0] < 1 or images.shape[1:] != model.image_shape:
        raise ReconstructorError(f"phantom shape {images.shape} does not match (n >= 1, *{model.image_shape})")
    clean = images.reshape(images.shape[0], -1) @ model.matrix.T  # (n, R)
    clean = np.repeat(clean, frames_per_phantom, axis=0)
    signal_rows = np.flatnonzero(calib.snr > SIGNAL_ROW_SNR)
    if signal_rows.size == 0:
        signal_rows = np.arange(model.num_rows)
    sigma = float(noise_sigma(clean[:, signal_rows].ravel(), snr_db).ravel()[0])
    fg = clean + bg[None] + complex_noise(clean.shape, sigma, rng)
    bgf = bg[None] + complex_noise((background_frames, model.num_rows), sigma, rng)
    return SimulatedMeasurement(foreground=fg, background=bgf, clean=clean, sigma=sigma,
                                rows=model.rows, signal_rows=signal_rows)


def to_time_domain(spectra: np.ndarray, rows: RowIndex, num_sampling_points: int) -> np.ndarray:
    """Full-spectrum rows (N, R) -> real time signals (N, J, C, V) by inverse rfft."""
    j = int(rows.period.max()) + 1
    c = int(rows.channel.max()) + 1
    k = num_sampling_points // 2 + 1
    full = np.zeros((spectra.shape[0], j, c, k), np.complex128)
    full[:, rows.period, rows.channel, rows.frequency_index] = spectra
    return np.fft.irfft(full, n=num_sampling_points, axis=-1)


def write_time_domain_measurement(path, sim: SimulatedCalibration, meas: SimulatedMeasurement, *,
                                  name: str = "simulated measurement", overwrite: bool = False,
                                  dtype: str = "float32") -> None:
    """Write ``meas`` as a scanner would: time-domain (N, J, C, V) samples, foreground frames
    followed by background frames flagged in ``isBackgroundFrame``."""
    scanner = sim.scanner
    frames = np.concatenate([meas.foreground, meas.background])
    signals = to_time_domain(frames, meas.rows, scanner.num_sampling_points).astype(dtype)
    header: MDFHeader = scanner_header(scanner, frames=frames.shape[0], name=name, calibration=False)
    is_bg = np.zeros(frames.shape[0], bool)
    is_bg[meas.foreground.shape[0]:] = True
    write_mdf(path, header, signals, fourier=False, is_background_frame=is_bg, overwrite=overwrite)


def realistic_signals(sim: SimulatedCalibration, phantoms: np.ndarray, snr_db, rng: np.random.Generator, *,
                      background_frames: int = 10) -> np.ndarray:
    """Background-corrected spectra (n, R_all) of ``phantoms`` (n, Ny, Nx) as a scanner user gets
    them: noise-free physics model + scanner background + noise at ``snr_db`` (scalar or (n,),
    over the signal rows), minus the mean of ``background_frames`` noisy empty-scanner frames
    (each sample is its own acquisition). Reconstruct them with ``sim.calibration``."""
    images = np.asarray(phantoms, dtype=np.float64)
    n = images.shape[0]
    clean = images.reshape(n, -1) @ sim.physics.matrix.T
    signal_rows = np.flatnonzero(sim.calibration.snr > SIGNAL_ROW_SNR)
    snr = np.broadcast_to(np.asarray(snr_db, dtype=np.float64), (n,))
    sigma = noise_sigma(clean[:, signal_rows], snr)  # (n, 1)
    fg = clean + sim.background[None] + complex_noise(clean.shape, sigma, rng)
    bg_mean = sim.background[None] + complex_noise(clean.shape, sigma, rng) / np.sqrt(background_frames)
    return fg - bg_mean
