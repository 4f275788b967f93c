"""Truncated-SVD / Tikhonov pseudo-inverse, computed once per system matrix."""
from __future__ import annotations

import numpy as np
from typing import Annotated, Literal, Union

from pydantic import Field

from mdf_io import SystemMatrix
from mpirecon.autoreg import is_auto, tikhonov_lambdas
from mpirecon.operator import operator_for
from mpirecon.priors import project_nonneg
from mpirecon.reconstructor import Reconstructor, ReconstructorConfig


class PseudoInverseConfig(ReconstructorConfig):
    lam: Union[Annotated[float, Field(ge=0)], Literal["auto"]] = Field(
        1e-2, description="Tikhonov lambda relative to ||A||_F^2/P, or 'auto' (discrepancy principle with the "
        "noise estimate, per frame; GCV without one)")
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
        if not is_auto(self.config.lam):
            self.pinv = self.op.tikhonov_inverse(self.config.lam, self.config.rcond).astype(self.config.dtype)  # (P, 2R)

    def _solve(self, spectra: np.ndarray) -> np.ndarray:
        b = self.op.data(spectra)
        if is_auto(self.config.lam):
            return self._solve_auto(b)
        x = (self.pinv @ b.astype(self.config.dtype)).T
        return project_nonneg(x) if self.config.nonneg else x

    def _solve_auto(self, b: np.ndarray) -> np.ndarray:
        """Per-frame λ (:func:`mpirecon.autoreg.tikhonov_lambdas`): x_f = V diag(s/(s²+λ_f)) Uᵀ b_f."""
        u, s, vt = self.op.svd()
        lam = tikhonov_lambdas(self.op, b, self.noise)
        self.last_auto = {"lam": lam}
        filt = np.where((s > self.config.rcond * s[0])[:, None], s[:, None] / (s[:, None] ** 2 + lam[None, :]), 0.0)
        x = (vt.T @ (filt * (u.T @ b))).T.astype(self.config.dtype)
        return project_nonneg(x) if self.config.nonneg else x
