"""Physics shift: measurements made with other particles and a drifted scanner than the calibration.

A robot calibration measures one particle sample on one day. A scanner user then measures other
particles (in vivo: bound, aggregated, a narrower size distribution: longer Néel/Brown relaxation,
smaller effective cores), with a drive field that has drifted in amplitude, through a receive
chain whose transfer function the calibration did not see. :class:`PhysicsShift` describes such
a shift; :func:`shifted_physics` is the noise-free system matrix of the *measured* physics, and
:func:`write_shifted_measurement` writes measurements of it as a scanner would (time-domain MDF,
scanner background, background frames), to be read back with :mod:`mdf_io` and reconstructed
with the (noisy) calibration of the original physics.

Concentrations stay comparable: the shifted matrix is scaled to the calibration physics' energy
over the calibration's signal rows (a user calibrates concentration with a reference sample), so
what changes is the shape of the system functions, not the unit.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mpirecon.simulation.measurement import SIGNAL_ROW_SNR, SimulatedMeasurement, write_time_domain_measurement
from mpirecon.simulation.noise import complex_noise, noise_sigma
from mpirecon.simulation.physics import voxel_spectra
from mpirecon.simulation.system_matrix import SimulatedCalibration


class PhysicsShift(BaseModel):
    """How the measured physics differs from the calibration's (defaults: a moderate in-vivo-like
    shift on the default simulated scanner, whose calibration sample has 30 nm cores, 2 µs)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    relaxation_time: Optional[float] = Field(3e-6, ge=0, description="Debye τ of the measured particles (s); "
                                                                    "None: the calibration sample's")
    core_diameter: Optional[float] = Field(28e-9, gt=0, description="core diameter of the measured particles "
                                                                   "(m); None: the calibration sample's")
    drive_amplitude_error: float = Field(0.05, gt=-0.5, lt=0.5, description="relative drive-amplitude drift "
                                                                          "(every axis)")
    receive_cutoff: Optional[float] = Field(3.0e6, gt=0, description="first-order receive low-pass the calibration "
                                                                    "did not see (Hz); None: none")
    receive_delay: float = Field(20e-9, description="receive timing offset (s): a phase ramp exp(-i 2π f Δt)")

    def describe(self) -> str:
        """One line for reports."""
        parts = []
        if self.relaxation_time is not None:
            parts.append(f"relaxation {self.relaxation_time * 1e6:g} µs")
        if self.core_diameter is not None:
            parts.append(f"cores {self.core_diameter * 1e9:g} nm")
        parts.append(f"drive amplitude {self.drive_amplitude_error:+.0%}")
        if self.receive_cutoff is not None:
            parts.append(f"receive low-pass {self.receive_cutoff / 1e6:g} MHz")
        if self.receive_delay:
            parts.append(f"delay {self.receive_delay * 1e9:g} ns")
        return ", ".join(parts)


def receive_gain(frequencies: np.ndarray, shift: PhysicsShift) -> np.ndarray:
    """Per-row complex gain (R,) of the unseen receive chain at ``frequencies`` (R,) Hz."""
    f = np.asarray(frequencies, np.float64)
    gain = np.exp(-2j * np.pi * f * shift.receive_delay)
    if shift.receive_cutoff is not None:
        gain = gain / (1.0 + 1j * f / shift.receive_cutoff)
    return gain


def shifted_physics(sim: SimulatedCalibration, shift: PhysicsShift) -> np.ndarray:
    """Noise-free system matrix (R, P) complex of the measured physics, every row of
    ``sim.calibration`` in its order, scaled to the energy of ``sim.physics`` over the
    calibration's signal rows (calibration SNR > 1.5)."""
    updates = {k: getattr(shift, k) for k in ("relaxation_time", "core_diameter") if getattr(shift, k) is not None}
    particles = sim.particles.model_copy(update=updates)
    amplitude = tuple(a * (1.0 + shift.drive_amplitude_error) for a in sim.scanner.drive_amplitude)
    scanner = sim.scanner.model_copy(update={"drive_amplitude": amplitude})
    spectra = voxel_spectra(scanner, particles)  # (C, K, P), rows channel-major as the calibration's
    matrix = spectra.reshape(-1, spectra.shape[-1]) * receive_gain(sim.calibration.frequencies, shift)[:, None]
    signal = sim.calibration.snr > SIGNAL_ROW_SNR
    ref = np.linalg.norm(sim.physics.matrix[signal])
    return matrix * (ref / max(float(np.linalg.norm(matrix[signal])), 1e-300))


def shifted_measurement(sim: SimulatedCalibration, matrix: np.ndarray, phantoms: np.ndarray, snr_db,
                        rng: np.random.Generator, *, background_frames: int = 10) -> SimulatedMeasurement:
    """One acquisition of ``phantoms`` (n, *image_shape), one frame each, through ``matrix`` (R, P)
    (:func:`shifted_physics`) plus the scanner background of ``sim`` and noise at ``snr_db`` (scalar
    or (n,)) per frame over the calibration's signal rows; ``background_frames`` empty-scanner
    frames at the median noise level of the frames (one empty measurement per session)."""
    images = np.asarray(phantoms, np.float64)
    n = images.shape[0]
    clean = images.reshape(n, -1) @ matrix.T
    signal_rows = np.flatnonzero(sim.calibration.snr > SIGNAL_ROW_SNR)
    snr = np.broadcast_to(np.asarray(snr_db, np.float64), (n,))
    sigma = noise_sigma(clean[:, signal_rows], snr)  # (n, 1)
    fg = clean + sim.background[None] + complex_noise(clean.shape, sigma, rng)
    bg = sim.background[None] + complex_noise((background_frames, clean.shape[1]), float(np.median(sigma)), rng)
    return SimulatedMeasurement(foreground=fg, background=bg, clean=clean, sigma=float(np.median(sigma)),
                                rows=sim.calibration.rows, signal_rows=signal_rows)


def write_shifted_measurement(path, sim: SimulatedCalibration, matrix: np.ndarray, phantoms: np.ndarray, snr_db,
                              seed: int | np.random.Generator, *, background_frames: int = 10,
                              overwrite: bool = False) -> SimulatedMeasurement:
    """Write :func:`shifted_measurement` of ``phantoms`` to ``path`` as a scanner's MDF file
    (time-domain float32 frames, background frames flagged) and return it (seeded by ``seed``)."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    meas = shifted_measurement(sim, matrix, phantoms, snr_db, rng, background_frames=background_frames)
    write_time_domain_measurement(path, sim, meas, name="simulated measurement (physics shift)", overwrite=overwrite)
    return meas
