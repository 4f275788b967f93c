"""Data-consistent refinement of an image from another method (e.g. a network's output).

Starting from x0, solve a few ADMM iterations of::

    min_x ½||A x - b||² + μ/2 ||x - x0||² (+ τ TV(x)),   x >= 0

on the scaled operator (μ, τ relative to ||A||_F²/P, like the ADMM baselines), warm-started at
x0 and using the x-update factorisation the operator caches. μ -> ∞ returns x0 (projected onto
x >= 0); μ -> 0 tends to the non-negative least-squares fit of the data.
"""
from __future__ import annotations

import numpy as np

from .admm import admm
from .priors import NonNegative, Proximity, TotalVariation, project_nonneg


def refine(op, spectra: np.ndarray, x0: np.ndarray, *, mu: float, iterations: int, tv: float = 0.0,
           rho: float = 1.0, nonneg: bool = True) -> np.ndarray:
    """Refine images ``x0`` (F, P) towards the data ``spectra`` (F, R complex); returns (F, P).

    Args:
        op: the :class:`~mpirecon.operator.SystemOperator` (numpy backend) of the bound matrix.
        mu: weight of the pull towards x0; tv: weight of an optional TV term; rho: ADMM penalty.
        iterations: ADMM iterations (0 returns x0, projected if ``nonneg``).
    """
    x0 = np.asarray(x0, dtype=op.dtype)
    if iterations == 0 or not np.isfinite(mu):
        return project_nonneg(x0) if nonneg else x0
    b = op.data(spectra)
    s = op.frame_scales(b).astype(b.dtype)
    anchor = x0.T / s
    terms = [Proximity(anchor, float(mu))] + ([NonNegative()] if nonneg else [])
    if tv > 0:
        terms.append(TotalVariation(float(tv), ndim=len(op.image_shape)))
    z = admm(op, b / s, terms, rho, iterations, x_init=project_nonneg(anchor) if nonneg else anchor)
    return (z * s).T


def objective(op, spectra: np.ndarray, x: np.ndarray, x0: np.ndarray, mu: float) -> np.ndarray:
    """``½||A x - b||² + μ/2 ||x - x0||²`` per frame (F,), in the scaled units of :func:`refine`
    (data and images divided by the per-frame scale)."""
    b = op.data(spectra)
    s = op.frame_scales(b)
    r = op.forward(np.asarray(x, op.dtype).T / s) - b / s
    d = (np.asarray(x) - np.asarray(x0)).T / s
    return 0.5 * np.sum(r * r, axis=0) + 0.5 * mu * np.sum(d * d, axis=0)
