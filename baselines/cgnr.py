"""Conjugate gradients on the Tikhonov normal equations (AᵀA + λI) x = Aᵀb, batched over frames."""
from __future__ import annotations

import numpy as np
from typing import Annotated, Literal, Union

from pydantic import Field

from mdf_io import SystemMatrix
from mpirecon.autoreg import is_auto, residual_targets
from mpirecon.priors import project_nonneg
from mpirecon.reconstructor import Reconstructor, ReconstructorConfig


class CGNRConfig(ReconstructorConfig):
    lam: float = Field(1e-2, ge=0, description="Tikhonov lambda relative to ||A||_F^2/P")
    iterations: Union[Annotated[int, Field(ge=1, le=100000)], Literal["auto"]] = Field(
        20, description="CG iterations, or 'auto': stop each frame by the discrepancy principle (at most max_iterations)")
    max_iterations: int = Field(200, ge=1, le=100000, description="cap of iterations=auto")
    nonneg: bool = Field(True, description="project the result onto x >= 0 (CG iterates stay unconstrained)")


class CGNR(Reconstructor):
    """CG on the normal equations; each frame is its own CG run, all advanced together."""

    name = "cgnr"
    description = "conjugate gradients on Tikhonov normal equations (early stopping regularises)"
    Config = CGNRConfig

    def _setup(self, system_matrix: SystemMatrix) -> None:
        self.op = self.operator
        self.normal = self.op.normal_matrix() + self.config.lam * np.eye(self.op.num_voxels, dtype=self.op.dtype)

    def _solve(self, spectra: np.ndarray) -> np.ndarray:
        b = self.op.data(spectra)
        rhs = self.op.adjoint(b)  # (P, F)
        x = np.zeros_like(rhs)
        r = rhs.copy()
        p = r.copy()
        rr = np.sum(r * r, axis=0)
        tiny = np.finfo(rhs.dtype).tiny
        auto = is_auto(self.config.iterations)
        if auto:  # discrepancy principle per frame: stop once ||A x - b||² <= τ Σσ²
            from mpirecon.autoreg import TAU
            target = TAU * residual_targets(self.op, b, self.noise)
            res = b.copy()
            stopped = np.zeros(rhs.shape[1], int)
        for it in range(self.config.max_iterations if auto else self.config.iterations):
            if auto:
                active = np.sum(res * res, axis=0) > target
                stopped[~active & (stopped == 0)] = it
                if not active.any():
                    break
            q = self.normal @ p
            alpha = rr / np.maximum(np.sum(p * q, axis=0), tiny)
            if auto:
                alpha = np.where(active, alpha, 0.0)
                res -= alpha * (self.op.forward(p))
            x += alpha * p
            r -= alpha * q
            rr_new = np.sum(r * r, axis=0)
            p = r + (rr_new / np.maximum(rr, tiny)) * p
            rr = rr_new
        if auto:
            self.last_auto = {"iterations": np.where(stopped > 0, stopped, self.config.max_iterations)}
        x = x.T
        return project_nonneg(x) if self.config.nonneg else x
