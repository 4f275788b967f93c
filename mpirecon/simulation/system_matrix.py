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

from mpirecon.simulation.noise import complex_noise
from mpirecon.simulation.physics import voxel_spectra
from mpirecon.simulation.scanner import ParticleParams, ScannerParams


class CalibrationNoise(BaseModel):
    """Noise and background of a simulated robot calibration.

    ``noise_level`` is the receive-chain noise σ (per spectral bin, one repetition) relative
    to the largest noise-free system-matrix entry; ``background_level`` the static scanner
    background (harmonic pick-up, decaying with frequency) on the same scale; drive-frequency
    feed-through is ``feedthrough_level`` times larger and its rows are marked unusable.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    noise_level: float = Field(8e-4, gt=0, description="> 0: the SNR of every row is estimated from it")
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
    g = [float(v) for v in scanner.gradient]
    if len(g) == 2:  # a 2D scanner: the z gradient follows from a trace-free field
        g.append(-(g[0] + g[1]))
    header.acquisition.gradient = [[np.diag(g).tolist()]]  # J=1 x Y=1 x 3 x 3
    header.acquisition.drivefield = DriveField(
        base_frequency=scanner.base_frequency, cycle=scanner.num_sampling_points / scanner.base_frequency,
        divider=[[d] for d in scanner.dividers], num_channels=scanner.ndim,
        phase=[[[0.0]] * scanner.ndim], strength=[[[a] for a in scanner.drive_amplitude]],
        waveform=[["sine"]] * scanner.ndim)
    header.acquisition.receiver = Receiver(bandwidth=scanner.bandwidth,
                                           num_channels=scanner.receive_channels,
                                           num_sampling_points=scanner.num_sampling_points)
    if calibration:
        pad = (0.0,) * (3 - scanner.ndim)
        fov = scanner.calibration_fov
        step = fov / np.asarray(scanner.grid)
        header.calibration = Calibration(
            method="simulation", size=scanner.grid3,
            field_of_view=tuple(float(f) for f in fov) + pad,
            field_of_view_center=tuple(float(c) for c in scanner.centre) + pad,
            delta_sample_size=tuple(float(s) for s in step) + pad)
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

    Rows are (channel, frequency) over the kept frequencies (C x K; the full spectrum unless the
    scanner's ``frequencies``/``max_frequency``/``num_frequencies`` choose a subset: the
    calibration file then carries a ``frequencySelection``). The SNR of each row is estimated as
    a calibration does: RMS over voxels of the background-corrected signal divided by the noise
    σ estimated from the spread of the background frames; DC and drive-frequency rows get SNR 0.
    Large (3D) grids are processed in blocks of voxels and rows (same numbers as one block),
    holding three (R, P) arrays in ``scanner.spectrum_dtype``: physics, raw frames, calibration.
    """
    scanner = scanner or ScannerParams()
    particles = particles or ParticleParams()
    noise = noise or CalibrationNoise()
    rng = np.random.default_rng(noise.seed)
    spectra = voxel_spectra(scanner, particles)  # (C, K, P)
    c, k, p = spectra.shape
    clean = spectra.reshape(c * k, p)  # rows: channel-major, k fastest
    kept = scanner.kept_frequency_indices()
    rows = RowIndex(np.zeros(c * k, np.int64), np.repeat(np.arange(c), k), np.tile(kept, c))
    freqs = frequency_axis(scanner.num_sampling_points, scanner.bandwidth)[rows.frequency_index]
    scale = float(np.max(np.abs(clean)))
    sigma = noise.noise_level * scale / np.sqrt(noise.repetitions)
    bg = scanner_background(scanner, rows, scale, noise, rng)
    raw = np.empty((p, c * k), clean.dtype)  # (P, R)
    for p0, p1 in _blocks(p, c * k):  # the noise stream is drawn in C order: blocks give the same numbers
        raw[p0:p1] = clean[:, p0:p1].T + bg[None, :] + complex_noise((p1 - p0, c * k), sigma, rng)
    bg_frames = bg[None, :] + complex_noise((noise.background_frames, c * k), sigma, rng)
    bg_mean = bg_frames.mean(axis=0, keepdims=True)
    corrected = np.empty((c * k, p), clean.dtype)  # (R, P), the calibration matrix
    power = np.empty(c * k)
    for r0, r1 in _blocks(c * k, p):
        corrected[r0:r1] = (raw[:, r0:r1] - bg_mean[:, r0:r1]).T
        power[r0:r1] = np.mean(np.abs(corrected[r0:r1]) ** 2, axis=1)
    sigma_hat = np.std(bg_frames, axis=0, ddof=1)
    snr = np.sqrt(power) / np.maximum(sigma_hat, 1e-300)
    snr[unusable_rows(scanner, rows)] = 0.0
    header = scanner_header(scanner, frames=p + noise.background_frames, name="simulated calibration",
                            calibration=True)
    common = dict(rows=rows, frequencies=freqs, grid=scanner.grid3,
                  fov=np.array(header.calibration.field_of_view),
                  center=np.array(header.calibration.field_of_view_center),
                  bandwidth=scanner.bandwidth, num_sampling_points=scanner.num_sampling_points,
                  header=header)
    physics = SystemMatrix(matrix=clean, snr=np.full(c * k, np.inf), **common)
    calibration = SystemMatrix(matrix=corrected, snr=snr, **common)
    return SimulatedCalibration(physics=physics, calibration=calibration, raw_frames=raw,
                                background_frames=bg_frames, background=bg, scanner=scanner,
                                particles=particles, noise=noise)


def _blocks(n: int, width: int, max_entries: int = 2 ** 24):
    """(start, stop) blocks of ``range(n)`` holding at most ``max_entries`` of an (n, width) array."""
    step = max(1, max_entries // max(width, 1))
    return [(i, min(i + step, n)) for i in range(0, n, step)]


def simulation_from_file(mdf) -> Optional[SimulatedCalibration]:
    """Re-create the simulation stored in a calibration file's ``/_simulation`` field (or None)."""
    params = mdf.user_field("_simulation")
    if not isinstance(params, dict):
        return None
    return simulate_calibration(ScannerParams(**params["scanner"]), ParticleParams(**params["particles"]),
                                CalibrationNoise(**params["noise"]))
