"""Conjugate gradients on the Tikhonov normal equations (AᵀA + λI) x = Aᵀb, batched over frames.

Dense strategy (P small): the P x P matrix AᵀA + λI is formed once and each iteration is one
product with it. Large strategy: matrix-free, ``q = Aᵀ(A p) + λp`` (two products with the
2R x P operator per iteration, no P x P matrix; for a few frames both in one pass over the
operator's rows, :meth:`mpirecon.physics.operator.SystemOperator.normal_apply`). Same iterates up to rounding.
Compressed strategy (large calibrations): the large form on ``B = QᵀA`` (:mod:`mpirecon.physics.compression`).
``iterations="auto"``: each frame's CG stops at the first iterate whose data misfit reaches the
noise energy (discrepancy principle, :mod:`mpirecon.optim.autoreg`); stopped frames stay frozen.
"""
from __future__ import annotations

from typing import Annotated, Literal, Union

import numpy as np
from pydantic import Field

from mdf_io import SystemMatrix
from mpirecon.optim.autoreg import TAU, is_auto, residual_targets
from mpirecon.optim.classical import CompressibleConfig, solver_memory, solver_operator
from mpirecon.physics.linalg import cast_like, clamp_min, colsum, copy, eye_like, like, tiny, zeros_like
from mpirecon.memory import MemoryEstimate, real_size
from mpirecon.optim.priors import project_nonneg
from mpirecon.reconstructor import Capabilities, Reconstructor


class CGNRConfig(CompressibleConfig):
    lam: float = Field(1e-2, ge=0, description="Tikhonov lambda relative to ||A||_F^2/min(2R, P)")
    iterations: Union[Annotated[int, Field(ge=1, le=100000)], Literal["auto"]] = Field(
        20, description="CG iterations, or 'auto': stop each frame by the discrepancy principle, "
        "||A x - b||² <= noise energy (at most max_iterations)")
    max_iterations: int = Field(200, ge=1, le=100000, description="cap of iterations=auto")
    nonneg: bool = Field(True, description="project the result onto x >= 0 (CG iterates stay unconstrained)")


class CGNR(Reconstructor):
    """CG on the normal equations; each frame is its own CG run, all advanced together."""

    name = "cgnr"
    description = "conjugate gradients on Tikhonov normal equations (early stopping regularises)"
    Config = CGNRConfig
    capabilities = Capabilities(supports_gpu=True)

    @classmethod
    def memory_estimate(cls, config, rows: int, voxels: int, frames: int) -> MemoryEstimate:
        """Dense: AᵀA + λI (P x P, twice while formed); large: the CG vectors of every frame."""
        prec = config.dtype
        strategy, parts = solver_memory(config, rows, voxels, frames)
        if strategy == "dense":
            parts["normal"] = 2 * voxels ** 2 * real_size(prec)
        parts["iterates"] = 8 * voxels * frames * real_size(prec) + 2 * rows * frames * 16
        return MemoryEstimate(parts, prec, strategy)

    def _setup(self, system_matrix: SystemMatrix) -> None:
        self.strategy, self.op = solver_operator(system_matrix, self.config)
        op = self.op
        if self.strategy == "dense":
            normal = op.normal_matrix()
            self.normal = normal + self.config.lam * op.unit * eye_like(normal, op.num_voxels)

    def _apply(self, p):
        """(AᵀA + λI) p for voxel columns (P, F)."""
        if self.strategy == "dense":
            return self.normal @ p
        return self.op.normal_apply(p) + (self.config.lam * self.op.unit) * p

    def _solve(self, spectra: np.ndarray) -> np.ndarray:
        cfg = self.config
        b = self.op.data(spectra)
        rhs = self.op.adjoint(b)  # (P, F)
        x = zeros_like(rhs)
        r = copy(rhs)
        p = copy(r)
        rr = colsum(r * r)
        eps = tiny(rhs)
        auto = is_auto(cfg.iterations)
        if auto:  # discrepancy principle per frame: a frame stops once ||A x - b||² <= τ·(noise energy)
            target = like(rhs, TAU * residual_targets(self.op, b, self.noise), cfg.dtype)
            res = copy(b)
            stopped = np.full(b.shape[1], cfg.max_iterations)
        for it in range(cfg.max_iterations if auto else cfg.iterations):
            if auto:
                active = colsum(res * res) > target
                stopped[self.op.host(~active) & (stopped == cfg.max_iterations)] = it
                if not bool(active.any()):
                    break
            q = self._apply(p)
            alpha = rr / clamp_min(colsum(p * q), eps)
            if auto:
                alpha = alpha * cast_like(active, alpha)
                res -= alpha * self.op.forward(p)
            x += alpha * p
            r -= alpha * q
            rr_new = colsum(r * r)
            p = r + (rr_new / clamp_min(rr, eps)) * p
            rr = rr_new
        if auto:
            self.solve_info["auto"] = {"iterations": stopped.tolist()}
        if self.strategy == "compressed":
            self.solve_info["compressed"] = self.op.describe()
        x = self.op.host(x.T)
        return project_nonneg(x) if self.config.nonneg else x
