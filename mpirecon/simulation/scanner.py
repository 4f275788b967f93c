"""Scanner and particle parameters of the field-free-point (FFP) simulator (SI units)."""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from mpirecon.simulation.particles import KB, MU0, ParticleParams, grid_points  # noqa: F401 (re-exported)

class ScannerParams(BaseModel):
    """2D or 3D FFP scanner with Lissajous excitation (defaults: a 2D Bruker-like preclinical
    scanner; :func:`scanner_3d` gives an OpenMPI-like 3D one).

    Every per-axis field has one entry per axis (x, y[, z]). Drive frequencies are
    ``base_frequency / dividers``; sampling is at ``base_frequency`` over one Lissajous period
    of ``lcm(dividers)`` samples. The rows kept (all frequencies by default) are chosen by
    ``frequencies``, ``max_frequency`` and ``num_frequencies`` (:meth:`kept_frequency_indices`);
    a full 3D spectrum of a 37^3 grid would be 30-60 GB.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    base_frequency: float = Field(2.5e6, gt=0, description="Hz")
    dividers: tuple[int, ...] = (102, 96)
    drive_amplitude: tuple[float, ...] = Field((12e-3, 12e-3), description="T (per axis x, y[, z])")
    gradient: tuple[float, ...] = Field((1.0, 1.0), description="selection-field gradient (T/m) per axis")
    grid: tuple[int, ...] = Field((19, 19), description="voxels (Nx, Ny[, Nz])")
    fov: Optional[tuple[float, ...]] = Field(None, description="calibration FOV (m); default 0.9 x drive FOV")
    center: Optional[tuple[float, ...]] = Field(None, description="FOV centre (m); default the origin")
    subsamples: int = Field(4, ge=1, le=16, description="sub-samples per voxel axis (delta sample size = voxel)")
    receive_channels: int = Field(2, ge=1, le=3, description="one per axis at most")
    frequencies: Optional[tuple[int, ...]] = Field(None, description="spectral indices k to keep (default all)")
    max_frequency: Optional[float] = Field(None, gt=0, description="keep frequencies <= this (Hz)")
    num_frequencies: Optional[int] = Field(None, ge=1, description="keep the strongest N frequencies "
                                                                   "(estimated on a coarse grid)")
    spectrum_dtype: str = Field("complex128", pattern="^(complex64|complex128)$",
                                description="storage precision of the simulated spectra")

    @model_validator(mode="after")
    def _check(self):
        d = len(self.grid)
        if d not in (2, 3):
            raise ValueError(f"grid must have 2 or 3 axes, found {self.grid}")
        if min(self.grid) < 2:
            raise ValueError("grid must be at least 2 voxels per axis")
        for name in ("dividers", "drive_amplitude", "gradient", "fov", "center"):
            value = getattr(self, name)
            if value is not None and len(value) != d:
                raise ValueError(f"{name} must have {d} entries (one per grid axis), found {value}")
        if any(g <= 0 for g in self.gradient):
            raise ValueError("gradient must be positive (T/m)")
        if self.receive_channels > d:
            raise ValueError(f"receive_channels ({self.receive_channels}) exceeds the {d} axes")
        if any(a <= 0 for a in self.drive_amplitude):
            raise ValueError("drive_amplitude must be positive (T)")
        if self.fov is not None and any(f <= 0 for f in self.fov):
            raise ValueError("fov must be positive (m)")
        return self

    @property
    def ndim(self) -> int:
        """Number of spatial axes (2 or 3)."""
        return len(self.grid)

    @property
    def grid3(self) -> tuple[int, int, int]:
        """(Nx, Ny, Nz) with Nz = 1 for 2D grids."""
        return tuple(self.grid) + (1,) * (3 - self.ndim)

    @property
    def centre(self) -> np.ndarray:
        """(ndim,) FOV centre (m)."""
        return np.zeros(self.ndim) if self.center is None else np.asarray(self.center, float)

    @property
    def num_sampling_points(self) -> int:
        """V: samples per Lissajous period."""
        return math.lcm(*self.dividers)

    @property
    def bandwidth(self) -> float:
        """Receive bandwidth (Hz) = half the sampling rate."""
        return self.base_frequency / 2.0

    @property
    def drive_frequencies(self) -> np.ndarray:
        """(ndim,) drive frequencies (Hz)."""
        return self.base_frequency / np.asarray(self.dividers, float)

    @property
    def drive_fov(self) -> np.ndarray:
        """Region covered by the FFP: 2 A / G per axis (m)."""
        return 2.0 * np.asarray(self.drive_amplitude) / np.asarray(self.gradient)

    @property
    def calibration_fov(self) -> np.ndarray:
        """FOV of the voxel grid (m)."""
        return np.asarray(self.fov) if self.fov is not None else 0.9 * self.drive_fov

    @property
    def drive_frequency_indices(self) -> np.ndarray:
        """Spectral index k of each drive frequency (exact: V / divider)."""
        return np.asarray([self.num_sampling_points // d for d in self.dividers])

    def voxel_centers(self) -> np.ndarray:
        """(P, ndim) voxel centres (m), x fastest."""
        fov, centre = self.calibration_fov, self.centre
        axes = [(np.arange(n) + 0.5) / n * fov[a] - fov[a] / 2 + centre[a] for a, n in enumerate(self.grid)]
        return grid_points(axes)

    def times(self) -> np.ndarray:
        """(V,) sampling times (s) over one period."""
        return np.arange(self.num_sampling_points) / self.base_frequency

    def kept_frequency_indices(self) -> np.ndarray:
        """Spectral indices k (increasing) of the rows kept: ``frequencies`` if given, else all
        k <= ``max_frequency``; then, with ``num_frequencies``, the strongest N of those by the
        noise-free spectrum of a coarse grid (at most 7 voxels per axis, no sub-samples)."""
        k_all = np.arange(self.num_sampling_points // 2 + 1)
        if self.frequencies is not None:
            return np.unique(np.asarray(self.frequencies, np.int64))
        keep = k_all
        if self.max_frequency is not None:
            keep = k_all[k_all / (k_all.size - 1) * self.bandwidth <= self.max_frequency]
        if self.num_frequencies is not None and self.num_frequencies < keep.size:
            from mpirecon.simulation.physics import voxel_spectra
            coarse = self.model_copy(update=dict(grid=tuple(min(n, 7) for n in self.grid), subsamples=1,
                                                 frequencies=tuple(int(k) for k in keep),
                                                 num_frequencies=None, max_frequency=None))
            energy = np.sum(np.abs(voxel_spectra(coarse, ParticleParams())) ** 2, axis=(0, 2))
            keep = np.sort(keep[np.argsort(energy, kind="stable")[::-1][: self.num_frequencies]])
        return keep


def scanner_3d(grid=(37, 37, 37), **changes) -> ScannerParams:
    """An OpenMPI-like 3D scanner: 3-channel Lissajous excitation with dividers 102/96/99 of
    2.5 MHz, 12 mT drive amplitude per axis, gradient (1, 1, 2) T/m, 3 receive channels, one
    sub-sample per voxel and complex64 spectra. ``changes`` override any field (e.g.
    ``max_frequency`` or ``num_frequencies`` to bound the rows kept)."""
    params = dict(grid=tuple(grid), dividers=(102, 96, 99), drive_amplitude=(12e-3, 12e-3, 12e-3),
                  gradient=(1.0, 1.0, 2.0), receive_channels=3, subsamples=1, spectrum_dtype="complex64")
    params.update(changes)
    return ScannerParams(**params)
