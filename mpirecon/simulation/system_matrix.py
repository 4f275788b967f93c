"""Simulated calibration: physics model + realistic measurement noise, background and SNR."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mdf_io import (Calibration, DriveField, Experiment, MDFHeader, Receiver, RowIndex,
                    SystemMatrix, write_system_matrix)
from mdf_io.containers import frequency_axis

from .noise import complex_noise
from .physics import voxel_spectra
from .scanner import ParticleParams, ScannerParams


class CalibrationNoise(BaseModel):
    """Noise and background of a simulated robot calibration.

    ``noise_level`` is the receive-chain noise σ (per spectral bin, one repetition) relative
    to the largest noise-free system-matrix entry; ``background_level`` the static scanner
    background (harmonic pick-up, decaying with frequency) on the same scale; drive-frequency
    feed-through is ``feedthrough_level`` times larger and its rows are marked unusable.
    """

    model_config = ConfigDict(extra="forbid")

    noise_level: float = Field(8e-4, ge=0)
    repetitions: int = Field(1, ge=1, description="averages per calibration position")
    background_frames: int = Field(10, ge=2)
    background_level: float = Field(0.02, ge=0)
    feedthrough_level: float = Field(50.0, ge=0)
    seed: int = 0


@dataclass
class SimulatedCalibration:
    """Result of :func:`simulate_calibration`.

    physics: noise-free model (all rows, SNR = inf), what a measurement's particles produce.
    calibration: what a robot calibration gives: noisy, background-corrected, with SNR.
    raw_frames / background_frames: uncorrected voxel spectra (P, R) and empty-scanner
        spectra (E, R) as written to the calibration file.
    background: the static scanner background spectrum (R,) (per row).
    """

    physics: SystemMatrix
    calibration: SystemMatrix
    raw_frames: np.ndarray
    background_frames: np.ndarray
    background: np.ndarray
    scanner: ScannerParams
    particles: ParticleParams
    noise: CalibrationNoise

    def parameters_json(self) -> str:
        return json.dumps({"scanner": self.scanner.model_dump(), "particles": self.particles.model_dump(),
                           "noise": self.noise.model_dump()})

    def write(self, path, *, overwrite: bool = False) -> None:
        """Write the calibration as an MDF v2 file (uncorrected frames + background frames,
        ``isBackgroundCorrected`` = 0, ``/calibration/snr``, parameters in ``/_simulation``)."""
        raw = SystemMatrix(matrix=self.raw_frames.T, rows=self.calibration.rows,
                           frequencies=self.calibration.frequencies, snr=self.calibration.snr,
                           grid=self.calibration.grid, fov=self.calibration.fov,
                           center=self.calibration.center, bandwidth=self.calibration.bandwidth,
                           num_sampling_points=self.calibration.num_sampling_points,
                           header=self.calibration.header, background_corrected=False)
        write_system_matrix(path, raw, background=self.background_frames, overwrite=overwrite,
                            method="simulation", background_corrected=False,
                            user_fields={"_simulation": self.parameters_json()})


def scanner_header(scanner: ScannerParams, *, frames: int, name: str, calibration: bool) -> MDFHeader:
    """MDF header describing the simulated scanner (drive field, receiver, calibration grid)."""
    header = MDFHeader()
    header.experiment = Experiment(name=name, is_simulation=True,
                                   description="simulated with mpirecon (Langevin FFP model)")
    header.scanner.name = "mpirecon FFP simulator"
    header.scanner.manufacturer = "mpirecon"
    header.acquisition.num_frames = frames
    gx, gy = (float(g) for g in scanner.gradient)
    header.acquisition.gradient = [[np.diag([gx, gy, -(gx + gy)]).tolist()]]  # J=1 x Y=1 x 3 x 3, trace 0
    header.acquisition.drivefield = DriveField(
        base_frequency=scanner.base_frequency, cycle=scanner.num_sampling_points / scanner.base_frequency,
        divider=[[d] for d in scanner.dividers], num_channels=2,
        phase=[[[0.0], [0.0]]], strength=[[[a] for a in scanner.drive_amplitude]],
        waveform=[["sine"], ["sine"]])
    header.acquisition.receiver = Receiver(bandwidth=scanner.bandwidth,
                                           num_channels=scanner.receive_channels,
                                           num_sampling_points=scanner.num_sampling_points)
    if calibration:
        fov = scanner.calibration_fov
        step = fov / np.asarray(scanner.grid)
        header.calibration = Calibration(
            method="simulation", size=(scanner.grid[0], scanner.grid[1], 1),
            field_of_view=(float(fov[0]), float(fov[1]), 0.0),
            field_of_view_center=(scanner.center[0], scanner.center[1], 0.0),
            delta_sample_size=(float(step[0]), float(step[1]), 0.0))
    return header


def unusable_rows(scanner: ScannerParams, rows: RowIndex) -> np.ndarray:
    """Mask of rows no calibration can use: DC and drive-frequency feed-through (±1 bin)."""
    bad = rows.frequency_index == 0
    for k in scanner.drive_frequency_indices:
        bad |= np.abs(rows.frequency_index - k) <= 1
    return bad


def scanner_background(scanner: ScannerParams, rows: RowIndex, scale: float, noise: CalibrationNoise,
                       rng: np.random.Generator) -> np.ndarray:
    """Static empty-scanner spectrum per row (R,): decaying harmonic pick-up + feed-through."""
    freqs = frequency_axis(scanner.num_sampling_points, scanner.bandwidth)[rows.frequency_index]
    f_drive = float(scanner.drive_frequencies.mean())
    envelope = noise.background_level * scale * np.exp(-freqs / (10 * f_drive))
    bg = envelope * np.exp(2j * np.pi * rng.random(len(rows)))
    for c, k in enumerate(scanner.drive_frequency_indices):
        hit = (rows.frequency_index == k) & (rows.channel == min(c, scanner.receive_channels - 1))
        bg[hit] += noise.feedthrough_level * scale
    return bg


def simulate_calibration(scanner: Optional[ScannerParams] = None, particles: Optional[ParticleParams] = None,
                         noise: Optional[CalibrationNoise] = None) -> SimulatedCalibration:
    """Simulate a robot calibration of ``scanner`` with ``particles`` (seeded by ``noise.seed``).

    Rows are (channel, frequency) over the full spectrum (C x K). The SNR of each row is
    estimated as a calibration does: RMS over voxels of the background-corrected signal divided
    by the noise σ estimated from the spread of the background frames; DC and drive-frequency
    rows get SNR 0.
    """
    scanner = scanner or ScannerParams()
    particles = particles or ParticleParams()
    noise = noise or CalibrationNoise()
    rng = np.random.default_rng(noise.seed)
    spectra = voxel_spectra(scanner, particles)  # (C, K, P)
    c, k, p = spectra.shape
    clean = spectra.reshape(c * k, p)  # rows: channel-major, k fastest
    rows = RowIndex.full(1, c, k)
    freqs = frequency_axis(scanner.num_sampling_points, scanner.bandwidth)[rows.frequency_index]
    scale = float(np.max(np.abs(clean)))
    sigma = noise.noise_level * scale / np.sqrt(noise.repetitions)
    bg = scanner_background(scanner, rows, scale, noise, rng)
    raw = clean.T + bg[None, :] + complex_noise((p, c * k), sigma, rng)  # (P, R)
    bg_frames = bg[None, :] + complex_noise((noise.background_frames, c * k), sigma, rng)
    corrected = raw - bg_frames.mean(axis=0, keepdims=True)
    sigma_hat = np.std(bg_frames, axis=0, ddof=1)
    snr = np.sqrt(np.mean(np.abs(corrected) ** 2, axis=0)) / np.maximum(sigma_hat, 1e-300)
    snr[unusable_rows(scanner, rows)] = 0.0
    header = scanner_header(scanner, frames=p + noise.background_frames, name="simulated calibration",
                            calibration=True)
    common = dict(rows=rows, frequencies=freqs, grid=(scanner.grid[0], scanner.grid[1], 1),
                  fov=np.array(header.calibration.field_of_view),
                  center=np.array(header.calibration.field_of_view_center),
                  bandwidth=scanner.bandwidth, num_sampling_points=scanner.num_sampling_points,
                  header=header)
    physics = SystemMatrix(matrix=clean, snr=np.full(c * k, np.inf), **common)
    calibration = SystemMatrix(matrix=np.ascontiguousarray(corrected.T), snr=snr, **common)
    return SimulatedCalibration(physics=physics, calibration=calibration, raw_frames=raw,
                                background_frames=bg_frames, background=bg, scanner=scanner,
                                particles=particles, noise=noise)


def simulation_from_file(mdf) -> Optional[SimulatedCalibration]:
    """Re-create the simulation stored in a calibration file's ``/_simulation`` field (or None)."""
    params = mdf.user_field("_simulation")
    if not isinstance(params, dict):
        return None
    return simulate_calibration(ScannerParams(**params["scanner"]), ParticleParams(**params["particles"]),
                                CalibrationNoise(**params["noise"]))
