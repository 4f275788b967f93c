"""Physical constants, the particle model and voxel grids of the simulator (the scanner model,
:mod:`mpirecon.simulation.scanner`, and the physics, :mod:`mpirecon.simulation.physics`, build on them)."""
from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

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


def grid_points(axes) -> np.ndarray:
    """(N, d) points of the product grid of 1D coordinate arrays ``axes`` (x first), x fastest."""
    mesh = np.meshgrid(*axes[::-1], indexing="ij")
    return np.stack([m.ravel() for m in mesh[::-1]], axis=1)
