"""Truncated-SVD / Tikhonov pseudo-inverse, computed once per system matrix."""
from __future__ import annotations

import numpy as np
from pydantic import Field

from mdf_io import SystemMatrix
from mpirecon.operator import RealOperator, tikhonov_inverse
from mpirecon.reconstructor import Reconstructor, ReconstructorConfig


class PseudoInverseConfig(ReconstructorConfig):
    lam: float = Field(1e-2, ge=0, description="Tikhonov lambda relative to ||A||_F^2/P")
    rcond: float = Field(0.0, ge=0, lt=1, description="drop singular values below rcond*s_max")
    nonneg: bool = Field(True, description="clip negative voxel values to zero")


class PseudoInverse(Reconstructor):
    """x = V diag(s/(s²+λ)) Uᵀ b on the stacked real, scaled matrix; the P x 2R
    reconstruction matrix is formed at bind time so one frame costs one matrix product."""

    name = "pinv"
    description = "Tikhonov / truncated-SVD pseudo-inverse (SVD once per system matrix)"
    Config = PseudoInverseConfig

    def _setup(self, system_matrix: SystemMatrix) -> None:
        self.op = RealOperator(system_matrix, "float64")
        u, s, vt = np.linalg.svd(self.op.A, full_matrices=False)
        keep = s > self.config.rcond * s[0]
        self.singular_values = s
        self.pinv = tikhonov_inverse(u, s, vt, self.config.lam, keep).astype(self.config.dtype)  # (P, 2R)

    def _solve(self, spectra: np.ndarray) -> np.ndarray:
        x = (self.pinv @ self.op.data(spectra).astype(self.config.dtype)).T
        return np.maximum(x, 0) if self.config.nonneg else x
