"""Truncated-SVD / Tikhonov pseudo-inverse, computed once per system matrix.

Dense strategy (P <= :data:`mpirecon.physics.operator.SVD_MAX_VOXELS`): the P x 2R reconstruction
matrix ``V diag(s/(s²+λ)) Uᵀ`` from the full float64 SVD of the stacked operator. Large strategy: the same map written through the
2R x 2R Gram, ``x = Aᵀ W b`` with ``W = (AAᵀ + λI)⁻¹`` (a Cholesky inverse; with ``rcond > 0`` the
Gram's eigendecomposition ``U diag(keep/(s²+λ)) Uᵀ`` drops the small singular values), so no
P x P or P x 2R matrix is formed: a frame costs one 2R x 2R and one P x 2R product.
``lam="auto"`` (:mod:`mpirecon.optim.autoreg`): λ per frame, ``x_f = Aᵀ U diag(1/(s²+λ_f)) Uᵀ b_f``
through the operator's cached spectrum (either strategy).
"""
from __future__ import annotations

from typing import Annotated, Literal, Union

import numpy as np
from pydantic import Field

from mdf_io import SystemMatrix
from mpirecon.optim.classical import CompressibleConfig, solver_memory, solver_operator
from mpirecon.optim.autoreg import LAMBDA_HELP, is_auto, tikhonov_lambdas
from mpirecon.physics.linalg import add_diagonal, like, spd_inverse
from mpirecon.memory import MemoryEstimate, gram_block_bytes, gram_bytes, real_size
from mpirecon.physics.operator import operator_for
from mpirecon.optim.priors import project_nonneg
from mpirecon.reconstructor import Capabilities, Reconstructor


class PseudoInverseConfig(CompressibleConfig):
    lam: Union[Annotated[float, Field(ge=0)], Literal["auto"]] = Field(
        "auto", description=LAMBDA_HELP + ", per frame; default auto since round 3 (above 0.01 on every protocol "
        "and SNR measured, docs/large-calibrations.md)")
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

    @classmethod
    def memory_estimate(cls, config, rows: int, voxels: int, frames: int) -> MemoryEstimate:
        """Dense: the float64 SVD (stacked copy, U, Vᵀ, LAPACK work) and the P x 2R map; large: the
        2R x 2R Gram and its inverse (+ the eigen-decomposition for ``lam="auto"``)."""
        prec = config.dtype
        strategy, parts = solver_memory(config, rows, voxels, frames, svd=True)
        if strategy == "dense":
            r = min(2 * rows, voxels)
            parts["svd"] = 8 * (2 * (2 * rows * voxels) + 2 * rows * r + r * voxels)
            parts["map"] = 2 * rows * voxels * real_size(prec)
        elif strategy == "large":
            parts["gram"] = 2 * gram_bytes(rows) + gram_block_bytes(voxels)
            parts["map"] = gram_bytes(rows) // 8 * real_size(prec)
        if is_auto(config.lam):
            parts["spectrum"] = 3 * gram_bytes(rows)
        return MemoryEstimate(parts, prec, strategy)

    def _setup(self, system_matrix: SystemMatrix) -> None:
        cfg = self.config
        self.strategy, self.op = solver_operator(system_matrix, cfg, svd=True)
        # spectra and SVDs in float64 whatever the dtype (the compressed operator's k x k Gram is float64)
        self.op64 = self.op if self.strategy == "compressed" else operator_for(system_matrix, "float64")
        if is_auto(cfg.lam):
            self.u = self.op.memo(("spectrum_u", cfg.dtype), lambda: self.op.backend(
                self.op64.spectrum()[0].astype(cfg.dtype)))  # (2R, r)
        elif self.strategy == "dense":
            self.pinv = self.op.backend(self.op64.tikhonov_inverse(cfg.lam * self.op.unit, cfg.rcond)
                                        .astype(cfg.dtype))  # (P, 2R)
        else:
            self.pinv = self.op.backend(self._gram_filter().astype(cfg.dtype))  # (2R, 2R)

    def _gram_filter(self) -> np.ndarray:
        """W (2R, 2R) float64 with ``Aᵀ W = (AᵀA + λI)⁻¹Aᵀ`` (singular values below rcond*s_max dropped)."""
        cfg = self.config
        if cfg.rcond == 0:
            return self.op.host(spd_inverse(add_diagonal(self.op.row_gram(), cfg.lam * self.op.unit)))
        u, s = self.op.spectrum()
        return (u * self._filter(s, np.array([cfg.lam * self.op.unit]))[:, 0]) @ u.T

    def _filter(self, s: np.ndarray, lam: np.ndarray) -> np.ndarray:
        """(r, F) factors ``1/(s²+λ_f)`` with singular values below rcond*s_max dropped."""
        keep = (s > self.config.rcond * s[0])[:, None]
        return np.where(keep, 1.0 / (s[:, None] ** 2 + lam[None, :]), 0.0)

    @property
    def singular_values(self) -> np.ndarray:
        """Singular values (descending) of the scaled stacked operator."""
        return self.op64.spectrum()[1]

    def _solve(self, spectra: np.ndarray) -> np.ndarray:
        b = self.op.data(spectra)
        if is_auto(self.config.lam):
            lam = tikhonov_lambdas(self.op64, b, self.noise)  # (F,)
            self.solve_info["auto"] = {"lam": (lam / self.op.unit).tolist()}  # in the parameter's unit
            filt = like(self.u, self._filter(self.op64.spectrum()[1], lam), self.config.dtype)
            x = self.op.adjoint(self.u @ (filt * (self.u.T @ b)))
        elif self.strategy == "dense":
            x = self.pinv @ b
        else:
            x = self.op.adjoint(self.pinv @ b)
        if self.strategy == "compressed":
            self.solve_info["compressed"] = self.op.describe()
        x = self.op.host(x.T)
        return project_nonneg(x) if self.config.nonneg else x
