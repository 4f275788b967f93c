"""Priors and constraints as a list of terms ``g(K x)``: a transform K and a proximal map.

Every solver reads the same objects, so a term means the same thing everywhere:

* :class:`NonNegative` — the constraint x >= 0 (one shared term). ADMM enforces it in every
  iteration (it joins the identity splitting's proximal map); Kaczmarz projects after every
  sweep (as RegularizedLeastSquares.jl does); the direct methods (pinv, CGNR) project their
  result, which is all a one-shot linear solve can do.
* :class:`L1` — ``w ||x||_1`` on the identity transform.
* :class:`TotalVariation` — isotropic ``w Σ_p ||(D x)_p||_2`` on the gradient transform.
* :class:`Denoiser` — a plug-and-play prior: any image-to-image map used as the proximal step.
* :class:`Proximity` — ``w/2 ||x - x_0||²``, a quadratic pull towards a reference image.

Proximal maps take ``(v, rho, nonneg)``: the prox of ``g/ρ`` at v, and whether the
non-negativity constraint shares this splitting (only for identity-transform terms).
Arrays are numpy or torch alike.
"""
from __future__ import annotations

import functools

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import scipy.sparse as sp

IDENTITY = "identity"
GRADIENT = "gradient"


def soft_threshold_nonneg(v, t: float, nonneg: bool):
    """Prox of ``t||z||_1`` (+ indicator z >= 0 if ``nonneg``), elementwise."""
    if isinstance(v, np.ndarray):
        if nonneg:
            return np.maximum(v - t, 0.0)
        return np.sign(v) * np.maximum(np.abs(v) - t, 0.0)
    if nonneg:
        return (v - t).clamp_min(0.0)
    return v.sign() * (v.abs() - t).clamp_min(0.0)


def group_shrink(v, t: float, ndim: int):
    """Prox of ``t Σ_p ||(Dx)_p||_2`` (isotropic TV) for gradients stacked (ndim*P, F)."""
    g = v.reshape(ndim, -1, v.shape[-1])
    if isinstance(v, np.ndarray):
        norm = np.sqrt(np.sum(g * g, axis=0, keepdims=True))
        # norm <= t gives 0 (norm floored at t, so a tiny norm never overflows the division)
        factor = np.maximum(1.0 - t / np.maximum(norm, np.maximum(t, np.finfo(norm.dtype).tiny)), 0.0)
    else:
        norm = (g * g).sum(dim=0, keepdim=True).sqrt()
        factor = (1.0 - t / norm.clamp_min(1e-30)).clamp_min(0.0)
    return (g * factor).reshape(v.shape)


def project_nonneg(x):
    """Projection onto x >= 0 (numpy or torch)."""
    return np.maximum(x, 0) if isinstance(x, np.ndarray) else x.clamp_min(0)


@dataclass(frozen=True)
class NonNegative:
    """The constraint x >= 0 (see the module docstring for how each solver applies it)."""

    transform: str = IDENTITY

    def project(self, x):
        return project_nonneg(x)


@dataclass(frozen=True)
class L1:
    """``weight * ||x||_1`` (weight relative to the scaled operator and data)."""

    weight: float
    transform: str = IDENTITY

    def prox(self, v, rho: float, nonneg: bool):
        return soft_threshold_nonneg(v, self.weight / rho, nonneg)


@dataclass(frozen=True)
class TotalVariation:
    """Isotropic total variation ``weight * Σ_p ||(D x)_p||_2`` over an image of ``ndim`` axes."""

    weight: float
    ndim: int = 2
    transform: str = GRADIENT

    def prox(self, v, rho: float, nonneg: bool = False):
        return group_shrink(v, self.weight / rho, self.ndim)


@dataclass(frozen=True, eq=False)
class Proximity:
    """``weight/2 * ||x - anchor||²`` (anchor (P, F), one column per frame): pulls towards a
    reference image, e.g. a network's output in data-consistent refinement."""

    anchor: object
    weight: float
    transform: str = IDENTITY

    def prox(self, v, rho: float, nonneg: bool):
        out = (rho * v + self.weight * self.anchor) / (rho + self.weight)
        return project_nonneg(out) if nonneg else out


@dataclass(frozen=True)
class Denoiser:
    """Plug-and-play prior: ``fn`` maps voxel columns (P, F) to denoised columns (P, F)."""

    fn: Callable
    transform: str = IDENTITY

    def prox(self, v, rho: float, nonneg: bool):
        out = self.fn(v)
        return project_nonneg(out) if nonneg else out


def constraint_in(terms: Sequence) -> bool:
    """Whether the list of terms holds the non-negativity constraint."""
    return any(isinstance(t, NonNegative) for t in terms)


def gradient_operator(image_shape) -> sp.csr_matrix:
    """Forward-difference gradient D of an image with ``image_shape`` (x fastest, Neumann
    boundary): sparse (ndim*P, P), rows grouped by axis (last axis = x first); cached per shape
    (callers must not modify it)."""
    return _gradient_operator(tuple(int(n) for n in image_shape))


@functools.lru_cache(maxsize=8)
def _gradient_operator(image_shape: tuple[int, ...]) -> sp.csr_matrix:
    blocks = []
    dims = list(image_shape)
    for axis in reversed(range(len(dims))):
        n = dims[axis]
        d1 = sp.diags([-np.ones(n), np.ones(n - 1)], [0, 1], shape=(n, n), format="lil")
        d1[n - 1, n - 1] = 0.0
        mats = [sp.identity(k, format="csr") for k in dims]
        mats[axis] = d1.tocsr()
        op = mats[0]
        for m in mats[1:]:
            op = sp.kron(op, m, format="csr")
        blocks.append(op)
    return sp.vstack(blocks, format="csr")


def total_variation(images: np.ndarray) -> np.ndarray:
    """Isotropic total variation of each image in a batch (F, *image_shape*) -> (F,)."""
    imgs = np.asarray(images, dtype=np.float64)
    shape = imgs.shape[1:]
    d = gradient_operator(shape)
    g = (d @ imgs.reshape(imgs.shape[0], -1).T).reshape(len(shape), -1, imgs.shape[0])
    return np.sqrt((g ** 2).sum(axis=0)).sum(axis=0)
