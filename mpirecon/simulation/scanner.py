"""Scanner and particle parameters of the field-free-point (FFP) simulator (SI units)."""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

MU0 = 4e-7 * math.pi  #: vacuum permeability (T m / A)
KB = 1.380649e-23  #: Boltzmann constant (J / K)


class ParticleParams(BaseModel):
    """Single-core particle model: equilibrium Langevin magnetisation + optional Debye relaxation."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    core_diameter: float = Field(30e-9, gt=0, description="magnetic core diameter (m)")
    saturation_magnetisation: float = Field(474e3, gt=0, description="Ms of the core (A/m)")
    temperature: float = Field(310.0, gt=0, description="K")
    relaxation_time: float = Field(2e-6, ge=0, description="Debye tau (s); 0 = equilibrium model")

    @property
    def moment(self) -> float:
        """Magnetic moment of one particle (A m²)."""
        return self.saturation_magnetisation * math.pi * self.core_diameter ** 3 / 6.0

    @property
    def beta(self) -> float:
        """Langevin argument per tesla: ξ = β·|B| with β = m / (k_B T) (1/T)."""
        return self.moment / (KB * self.temperature)


class ScannerParams(BaseModel):
    """2D FFP scanner with Lissajous excitation (defaults like a Bruker preclinical scanner).

    Drive frequencies are ``base_frequency / dividers``; sampling is at ``base_frequency``
    over one Lissajous period of ``lcm(dividers)`` samples.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    base_frequency: float = Field(2.5e6, gt=0, description="Hz")
    dividers: tuple[int, int] = (102, 96)
    drive_amplitude: tuple[float, float] = Field((12e-3, 12e-3), description="T (per axis x, y)")
    gradient: tuple[float, float] = Field((1.0, 1.0), description="selection-field gradient (T/m), x and y")
    grid: tuple[int, int] = Field((19, 19), description="voxels (Nx, Ny)")
    fov: Optional[tuple[float, float]] = Field(None, description="calibration FOV (m); default 0.9 x drive FOV")
    center: tuple[float, float] = (0.0, 0.0)
    subsamples: int = Field(4, ge=1, le=16, description="sub-samples per voxel axis (delta sample size = voxel)")
    receive_channels: int = Field(2, ge=1, le=2)

    @model_validator(mode="after")
    def _check(self):
        if min(self.grid) < 2:
            raise ValueError("grid must be at least 2 x 2")
        if any(g <= 0 for g in self.gradient):
            raise ValueError("gradient must be positive (T/m)")
        if any(a <= 0 for a in self.drive_amplitude):
            raise ValueError("drive_amplitude must be positive (T)")
        if self.fov is not None and any(f <= 0 for f in self.fov):
            raise ValueError("fov must be positive (m)")
        return self

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
        """(2,) drive frequencies (Hz)."""
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
        """(P, 2) voxel centres (m), x fastest."""
        nx, ny = self.grid
        fx, fy = self.calibration_fov
        xs = (np.arange(nx) + 0.5) / nx * fx - fx / 2 + self.center[0]
        ys = (np.arange(ny) + 0.5) / ny * fy - fy / 2 + self.center[1]
        yy, xx = np.meshgrid(ys, xs, indexing="ij")
        return np.stack([xx.ravel(), yy.ravel()], axis=1)

    def times(self) -> np.ndarray:
        """(V,) sampling times (s) over one period."""
        return np.arange(self.num_sampling_points) / self.base_frequency
