"""Truncated-SVD / Tikhonov pseudo-inverse, computed once per system matrix.

Dense strategy (P <= :data:`mpirecon.operator.SVD_MAX_VOXELS`): the P x 2R reconstruction
matrix ``V diag(s/(s²+λ)) Uᵀ`` from the full float64 SVD of the stacked operator. Large strategy: the same map written through the
2R x 2R Gram, ``x = Aᵀ W b`` with ``W = (AAᵀ + λI)⁻¹`` (a Cholesky inverse; with ``rcond > 0`` the
Gram's eigendecomposition ``U diag(keep/(s²+λ)) Uᵀ`` drops the small singular values), so no
P x P or P x 2R matrix is formed: a frame costs one 2R x 2R and one P x 2R product.
"""
from __future__ import annotations

import numpy as np
from pydantic import Field

from mdf_io import SystemMatrix
from mpirecon.classical import ClassicalConfig, classical_operator
from mpirecon.linalg import add_diagonal, spd_inverse, symmetric_eig
from mpirecon.operator import operator_for
from mpirecon.priors import project_nonneg
from mpirecon.reconstructor import Capabilities, Reconstructor


class PseudoInverseConfig(ClassicalConfig):
    lam: float = Field(1e-2, ge=0, description="Tikhonov lambda relative to ||A||_F^2/P")
    rcond: float = Field(0.0, ge=0, lt=1, description="drop singular values below rcond*s_max")
    nonneg: bool = Field(True, description="project the result onto x >= 0 (a direct method can only "
                                           "project its result)")


class PseudoInverse(Reconstructor):
    """x = V diag(s/(s²+λ)) Uᵀ b on the stacked real, scaled matrix; the reconstruction map is
    formed at bind time (from the operator's cached SVD or Gram, see the module docstring)."""

    name = "pinv"
    description = "Tikhonov / truncated-SVD pseudo-inverse (SVD once per system matrix)"
    Config = PseudoInverseConfig
    capabilities = Capabilities(supports_gpu=True)

    def _setup(self, system_matrix: SystemMatrix) -> None:
        cfg = self.config
        self.op = classical_operator(system_matrix, cfg)
        self.strategy = self.op.strategy(cfg.strategy, svd=True)
        if self.strategy == "dense":  # the SVD is taken in float64 whatever the dtype
            pinv = operator_for(system_matrix, "float64").tikhonov_inverse(cfg.lam, cfg.rcond)  # (P, 2R)
            self.pinv = self.op.backend(pinv.astype(cfg.dtype))
        else:
            self.pinv = self.op.backend(self._gram_filter().astype(cfg.dtype))  # (2R, 2R)

    def _gram_filter(self) -> np.ndarray:
        """W (2R, 2R) float64 with ``Aᵀ W = (AᵀA + λI)⁻¹Aᵀ`` (singular values below rcond*s_max dropped)."""
        cfg = self.config
        if cfg.rcond == 0:
            return self.op.host(spd_inverse(add_diagonal(self.op.row_gram(), cfg.lam)))
        s2, u = self._gram_eig()
        keep = np.sqrt(np.maximum(s2, 0)) > cfg.rcond * np.sqrt(max(s2.max(), 0))
        return (u * np.where(keep, 1.0 / (s2 + cfg.lam), 0.0)) @ u.T

    def _gram_eig(self) -> tuple[np.ndarray, np.ndarray]:
        def build():
            s2, u = symmetric_eig(self.op.row_gram())
            return self.op.host(s2), self.op.host(u)
        return self.op.memo("row_gram_eig", build)

    @property
    def singular_values(self) -> np.ndarray:
        """Singular values (descending) of the scaled stacked operator."""
        if self.strategy == "dense":
            return operator_for(self.system_matrix, "float64").svd()[1]
        return np.sqrt(np.maximum(self._gram_eig()[0], 0))[::-1]

    def _solve(self, spectra: np.ndarray) -> np.ndarray:
        b = self.op.data(spectra)
        x = self.pinv @ b if self.strategy == "dense" else self.op.adjoint(self.pinv @ b)
        x = self.op.host(x.T)
        return project_nonneg(x) if self.config.nonneg else x
