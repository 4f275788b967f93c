"""Scaled-form ADMM for ``min_x ½||A x - b||² + Σ_i g_i(K_i x)`` over a list of terms.

The terms are :mod:`mpirecon.optim.priors` objects. Every identity-transform term (L1, a
plug-and-play denoiser) and the non-negativity constraint share one splitting ``z_0 = x``, which
is always present (its ρI keeps the x-update positive definite); each other transform (the
image gradient D of TV) gets its own splitting ``z_i = K_i x``. The x-update solves
``(AᵀA + ρ(I + Σ K_iᵀK_i)) x = Aᵀb + ρ(z_0 - u_0) + ρ Σ K_iᵀ(z_i - u_i)`` with a solver that the
operator caches per (ρ, transforms): :class:`mpirecon.physics.xupdate.DenseXUpdate` holds the explicit inverse (one matrix
product per iteration for the whole batch of frames) for small P;
:class:`mpirecon.physics.xupdate.WoodburyXUpdate` solves through a 2R x 2R system for large P. Used by the ADMM baselines (L1, TV,
L1+TV) and the plug-and-play ``ppmpi`` method; numpy or torch arrays alike.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from mpirecon.errors import ReconstructorError
from mpirecon.optim.priors import IDENTITY, NonNegative, constraint_in, project_nonneg


def _zeros(ref, rows: int):
    if isinstance(ref, np.ndarray):
        return np.zeros((rows, ref.shape[1]), dtype=ref.dtype)
    return ref.new_zeros((rows, ref.shape[1]))


def split_terms(terms: Sequence) -> tuple[bool, object, list]:
    """(non-negativity?, the identity-transform prior or None, the other priors) of a term list."""
    priors = [t for t in terms if not isinstance(t, NonNegative)]
    ident = [t for t in priors if t.transform == IDENTITY]
    if len(ident) > 1:
        raise ReconstructorError("ADMM takes at most one identity-transform prior (L1 or a denoiser) besides x >= 0")
    return constraint_in(terms), (ident[0] if ident else None), [t for t in priors if t.transform != IDENTITY]


def admm(op, b, terms: Sequence, rho: float, iterations: int, x_init=None, strategy: str = "auto", u_init=None):
    """Run ADMM on scaled stacked data ``b`` (2R, F) with the list of ``terms``.

    Returns z_0 (P, F), the iterate of the identity splitting (it satisfies x >= 0 when the
    constraint is in the list). The x-update solver comes from ``op.x_update`` (cached;
    ``strategy`` "auto", "dense" or "large", see :mod:`mpirecon.physics.operator`). ``x_init`` (P, F)
    warm-starts every splitting at that image (default: zero); ``u_init`` (P, F) the scaled dual
    of the identity splitting (default: zero; at a solution it is the gradient of the smooth
    identity-split terms over ρ, so a warm start at a known minimiser stays there).
    """
    nonneg, ident, others = split_terms(terms)
    xu = op.x_update(rho, tuple(t.transform for t in others), strategy)
    rho = xu.rho
    atb = op.adjoint(b)
    z1 = atb * 0 if x_init is None else x_init + atb * 0
    u1 = atb * 0 if u_init is None else u_init + atb * 0
    splits = [(t, *xu.transforms[t.transform]) for t in others]
    zs = [_zeros(atb, k.shape[0]) if x_init is None else k @ x_init for _, k, _ in splits]
    us = [_zeros(atb, k.shape[0]) for _, k, _ in splits]
    for _ in range(iterations):
        rhs = atb + rho * (z1 - u1)
        for (_, _, kt), z, u in zip(splits, zs, us):
            rhs += rho * (kt @ (z - u))
        x = xu.solve(rhs)
        v = x + u1
        if ident is not None:
            z1 = ident.prox(v, rho, nonneg)
        else:
            z1 = project_nonneg(v) if nonneg else v
        u1 += x - z1
        for i, (term, k, _) in enumerate(splits):
            kx = k @ x
            zs[i] = term.prox(kx + us[i], rho)
            us[i] += kx - zs[i]
    return z1
