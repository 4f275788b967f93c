"""Truncated-SVD / Tikhonov pseudo-inverse, computed once per system matrix."""
from __future__ import annotations

import numpy as np
from pydantic import Field

from mdf_io import SystemMatrix
from mpirecon.operator import operator_for
from mpirecon.priors import project_nonneg
from mpirecon.reconstructor import Reconstructor, ReconstructorConfig


class PseudoInverseConfig(ReconstructorConfig):
    lam: float = Field(1e-2, ge=0, description="Tikhonov lambda relative to ||A||_F^2/P")
    rcond: float = Field(0.0, ge=0, lt=1, description="drop singular values below rcond*s_max")
    nonneg: bool = Field(True, description="project the result onto x >= 0 (a direct method can only "
                                           "project its result)")


class PseudoInverse(Reconstructor):
    """x = V diag(s/(s²+λ)) Uᵀ b on the stacked real, scaled matrix; the P x 2R
    reconstruction matrix is formed at bind time (from the operator's cached SVD) so one frame
    costs one matrix product."""

    name = "pinv"
    description = "Tikhonov / truncated-SVD pseudo-inverse (SVD once per system matrix)"
    Config = PseudoInverseConfig

    def _setup(self, system_matrix: SystemMatrix) -> None:
        self.op = operator_for(system_matrix, "float64")  # the SVD is taken in float64 whatever the dtype
        self.singular_values = self.op.svd()[1]
        self.pinv = self.op.tikhonov_inverse(self.config.lam, self.config.rcond).astype(self.config.dtype)  # (P, 2R)

    def _solve(self, spectra: np.ndarray) -> np.ndarray:
        x = (self.pinv @ self.op.data(spectra).astype(self.config.dtype)).T
        return project_nonneg(x) if self.config.nonneg else x
