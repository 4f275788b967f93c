"""ADMM with L1, isotropic TV and L1+TV priors: one solver, three priors.

Problem (scaled operator and per-frame scaled data, see :mod:`mpirecon.operator`)::

    min_x ½||A x - b||² + μ (α_L1 ||x||_1 + α_TV TV(x)),   x >= 0 (optional),  α_L1 + α_TV = 1

solved with :class:`mpirecon.admm.ADMMFactorization` (factorisation once per system matrix).
"""
from __future__ import annotations

import numpy as np
from pydantic import Field

from mdf_io import SystemMatrix
from mpirecon.admm import ADMMFactorization, group_shrink, soft_threshold_nonneg
from mpirecon.operator import RealOperator, frame_scales
from mpirecon.reconstructor import Reconstructor, ReconstructorConfig


class ADMMConfig(ReconstructorConfig):
    mu: float = Field(1e-2, ge=0, description="regularisation weight (relative)")
    rho: float = Field(0.1, gt=0, description="ADMM penalty (relative to ||A||_F^2/P)")
    iterations: int = Field(200, ge=1, le=100000)
    nonneg: bool = Field(True, description="non-negativity constraint")


class ADMML1Config(ADMMConfig):
    mu: float = Field(1e-3, ge=0, description="regularisation weight (relative)")
    rho: float = Field(1.0, gt=0, description="ADMM penalty (relative to ||A||_F^2/P)")


class ADMMTVConfig(ADMMConfig):
    mu: float = Field(3e-4, ge=0, description="regularisation weight (relative)")


class ADMML1TVConfig(ADMMTVConfig):
    alpha_tv: float = Field(0.8, ge=0, le=1, description="α_TV; α_L1 = 1 - α_TV")


class _ADMMBase(Reconstructor):
    """Shared ADMM machinery; subclasses fix the weights of the L1 and TV priors."""

    Config = ADMMConfig
    #: (weight of L1, weight of TV); ADMML1TV derives them from alpha_tv
    prior_weights: tuple[float, float] = (1.0, 0.0)

    def _weights(self) -> tuple[float, float]:
        return self.prior_weights

    def _setup(self, system_matrix: SystemMatrix) -> None:
        self.op = RealOperator(system_matrix, self.config.dtype)
        _, w_tv = self._weights()
        shape = system_matrix.image_shape if w_tv > 0 else None
        self.factorization = ADMMFactorization.build(self.op, self.config.rho, shape)
        self._ndim = len(system_matrix.image_shape)

    def _solve(self, spectra: np.ndarray) -> np.ndarray:
        cfg = self.config
        w_l1, w_tv = self._weights()
        b = self.op.data(spectra)
        s = frame_scales(self.op, b).astype(b.dtype)
        t1 = cfg.mu * w_l1 / cfg.rho
        t2 = cfg.mu * w_tv / cfg.rho
        ndim = self._ndim

        def prox_x(v):
            return soft_threshold_nonneg(v, t1, cfg.nonneg)

        prox_grad = (lambda v: group_shrink(v, t2, ndim)) if w_tv > 0 else None
        z = self.factorization.run(b / s, prox_x, prox_grad, cfg.iterations)
        return (z * s).T


class ADMML1(_ADMMBase):
    name = "admm_l1"
    description = "ADMM with L1 (sparsity) prior and non-negativity"
    Config = ADMML1Config
    prior_weights = (1.0, 0.0)


class ADMMTV(_ADMMBase):
    name = "admm_tv"
    description = "ADMM with isotropic total-variation prior and non-negativity"
    Config = ADMMTVConfig
    prior_weights = (0.0, 1.0)


class ADMML1TV(_ADMMBase):
    name = "admm_l1tv"
    description = "ADMM with L1 + TV prior (alpha_tv + alpha_l1 = 1) and non-negativity"
    Config = ADMML1TVConfig

    def _weights(self):
        return 1.0 - self.config.alpha_tv, self.config.alpha_tv
