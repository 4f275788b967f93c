"""Conjugate gradients on the Tikhonov normal equations (AᵀA + λI) x = Aᵀb, batched over frames."""
from __future__ import annotations

import numpy as np
from pydantic import Field

from mdf_io import SystemMatrix
from mpirecon.priors import project_nonneg
from mpirecon.reconstructor import Reconstructor, ReconstructorConfig


class CGNRConfig(ReconstructorConfig):
    lam: float = Field(1e-2, ge=0, description="Tikhonov lambda relative to ||A||_F^2/P")
    iterations: int = Field(20, ge=1, le=100000)
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
        rhs = self.op.adjoint(self.op.data(spectra))  # (P, F)
        x = np.zeros_like(rhs)
        r = rhs.copy()
        p = r.copy()
        rr = np.sum(r * r, axis=0)
        tiny = np.finfo(rhs.dtype).tiny
        for _ in range(self.config.iterations):
            q = self.normal @ p
            alpha = rr / np.maximum(np.sum(p * q, axis=0), tiny)
            x += alpha * p
            r -= alpha * q
            rr_new = np.sum(r * r, axis=0)
            p = r + (rr_new / np.maximum(rr, tiny)) * p
            rr = rr_new
        x = x.T
        return project_nonneg(x) if self.config.nonneg else x
