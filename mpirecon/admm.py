"""Scaled-form ADMM for ``min_x ½||A x - b||² + Σ_i g_i(K_i x)`` with a once-per-matrix x-update.

Each splitting ``z_i = K_i x`` (K_i the identity or the image gradient D) has a proximal map.
The x-update solves ``(AᵀA + ρ Σ K_iᵀK_i) x = Aᵀb + ρ Σ K_iᵀ(z_i - u_i)``; the inverse of that
P x P matrix is computed once per system matrix (and ρ) and each iteration is one matrix
product for the whole batch of frames. Used by the ADMM baselines (L1, TV, L1+TV) and by the
plug-and-play ``ppmpi`` method, whose prox is a learned denoiser.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from .operator import RealOperator, gradient_operator

Prox = Callable[[np.ndarray], np.ndarray]


def soft_threshold_nonneg(v: np.ndarray, t: float, nonneg: bool) -> np.ndarray:
    """Prox of ``t||z||_1`` (+ indicator z >= 0 if ``nonneg``), elementwise."""
    if nonneg:
        return np.maximum(v - t, 0.0)
    return np.sign(v) * np.maximum(np.abs(v) - t, 0.0)


def group_shrink(v: np.ndarray, t: float, ndim: int) -> np.ndarray:
    """Prox of ``t Σ_p ||(Dx)_p||_2`` (isotropic TV) for gradients stacked (ndim*P, F)."""
    g = v.reshape(ndim, -1, v.shape[-1])
    norm = np.sqrt(np.sum(g * g, axis=0, keepdims=True))
    factor = np.maximum(1.0 - t / np.maximum(norm, 1e-300), 0.0)
    return (g * factor).reshape(v.shape)


@dataclass
class ADMMFactorization:
    """Per-system-matrix state: the scaled operator, the gradient and ``(AᵀA+ρ(I+[DᵀD]))⁻¹``."""

    op: RealOperator
    rho: float
    gradient: Optional[sp.csr_matrix]
    inverse: np.ndarray

    @classmethod
    def build(cls, op: RealOperator, rho: float, image_shape: Optional[tuple] = None):
        """Factorise for penalty ``rho`` with an identity splitting and, if ``image_shape`` is
        given, a gradient (TV) splitting."""
        p = op.num_voxels
        m = op.normal_matrix().astype(np.float64) + rho * np.eye(p)
        grad = None
        if image_shape is not None:
            grad = gradient_operator(image_shape)
            m += rho * (grad.T @ grad).toarray()
        c, low = sla.cho_factor(m, lower=True, check_finite=False)
        inverse = sla.cho_solve((c, low), np.eye(p), check_finite=False).astype(op.dtype)
        if grad is not None:
            grad = grad.astype(op.dtype)
        return cls(op=op, rho=float(rho), gradient=grad, inverse=inverse)

    def run(self, b: np.ndarray, prox_x: Prox, prox_grad: Optional[Prox], iterations: int) -> np.ndarray:
        """ADMM iterations on scaled stacked data ``b`` (2R, F); returns z_x (P, F), the
        iterate that satisfies the constraints of ``prox_x``."""
        rho = self.rho
        atb = self.op.A.T @ b  # numpy or torch arrays alike
        z1 = atb * 0
        u1 = atb * 0
        use_grad = prox_grad is not None and self.gradient is not None
        if use_grad:
            d = self.gradient
            z2 = np.zeros((d.shape[0], b.shape[1]), dtype=atb.dtype)
            u2 = np.zeros_like(z2)
        for _ in range(iterations):
            rhs = atb + rho * (z1 - u1)
            if use_grad:
                rhs += rho * (d.T @ (z2 - u2))
            x = self.inverse @ rhs
            z1 = prox_x(x + u1)
            u1 += x - z1
            if use_grad:
                dx = d @ x
                z2 = prox_grad(dx + u2)
                u2 += dx - z2
        return z1
