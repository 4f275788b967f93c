"""Automatic regularisation: ``lam=auto``, ``mu=auto``, ``iterations=auto``.

Every rule works on the scaled stacked operator (:mod:`mpirecon.physics.operator`) and needs the noise
level the reconstruct path carries (``self.noise``: given, the measurement's background frames
or the calibration SNR). Without one, the noise is estimated by generalised cross-validation
(GCV) of the Tikhonov problem, so the same rules apply.

* Tikhonov λ (pinv, kaczmarz): the discrepancy principle, ``||A x_λ - b||² = τ Σ_r σ_r²``, solved
  per frame on a log grid of λ through the cached SVD, but never below GCV's λ: the misfit also
  holds model error (a noisy calibration) the noise level does not count (GCV alone without a
  noise estimate).
* CGNR iterations: stop each frame's CG at the first iterate with ``||A x - b||² <= τ m`` where m
  is the larger of ``Σ σ²`` and the misfit GCV implies.
* ADMM ρ (``rho="auto"``): K ADMM steps with penalty ρ move like K proximal-point (iterated
  Tikhonov) steps, which regularise like one Tikhonov solve with λ ∝ ρ/K; so ρ = c K λ_auto (per
  frame, from the Tikhonov rule above; c = :data:`RHO_FACTOR`, calibrated once on the
  validation split as κ), at least :data:`RHO_MIN`, rounded to a quarter decade
  (the x-update factorisation is cached per ρ). What matters for ADMM-L1, whose L1 prior alone
  does not regularise extended shapes at low SNR.
* ADMM μ: ``μ = κ σ_eff / s`` with σ_eff the misfit level (as for CGNR) seen in ``Aᵀ n`` per voxel and ``s`` the
  frame scale ``max|Aᵀ b|`` (a universal-threshold rule; κ per prior in :data:`MU_FACTORS`).
"""
from __future__ import annotations


import numpy as np


AUTO = "auto"
#: help text of a Tikhonov λ that accepts "auto"
LAMBDA_HELP = ("Tikhonov lambda relative to ||A||_F^2/min(2R, P) (the mean eigenvalue of AᵀA on its range), or "
               "'auto' (discrepancy principle with the noise "
               "estimate, never below GCV's; GCV without an estimate)")
#: discrepancy-principle factor τ
TAU = 1.0
#: λ grid (relative to the scaled operator, whose mean diagonal of AᵀA is 1)
LAMBDA_GRID = np.logspace(-7, 2, 181)
#: κ of the ADMM rule per prior family, calibrated once on a separate validation split of the realistic
#: bench protocol (seed 77+SNR, 30 samples per SNR 20-35 dB; one value for all SNRs)
MU_FACTORS = {"l1": 1.0, "tv": 0.05, "l1tv": 0.07}
#: smallest automatic ADMM penalty (relative) and the factor c of ρ = c K λ (validation split as κ)
RHO_MIN = 1.0
RHO_FACTOR = 0.5


def is_auto(value) -> bool:
    """True for the string ``"auto"``."""
    return isinstance(value, str) and value == AUTO


def _svd_terms(u, s, b):
    """β = Uᵀb (r, F) and the part of ||b||² outside range(U) (F,)."""
    beta = u.T @ b
    perp = np.maximum(np.sum(b * b, axis=0) - np.sum(beta * beta, axis=0), 0.0)
    return beta, perp


def _residuals(s, beta, perp, grid):
    """||A x_λ - b||² (G, F) for every λ of ``grid``."""
    damp = (grid[:, None] / (s[None, :] ** 2 + grid[:, None])) ** 2  # (G, r)
    return damp @ (beta * beta) + perp[None, :]


def gcv_lambdas(u, s, b, grid=LAMBDA_GRID) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame GCV λ (F,) and the noise ``||n||²`` it implies per frame (F,)
    (``residual / (m - trace(influence))`` times m), for stacked data ``b`` (2R, F)."""
    beta, perp = _svd_terms(u, s, b)
    res = _residuals(s, beta, perp, grid)
    m = b.shape[0]
    dof = m - np.sum(s[None, :] ** 2 / (s[None, :] ** 2 + grid[:, None]), axis=1)  # (G,)
    g = res / dof[:, None] ** 2
    best = np.argmin(g, axis=0)
    cols = np.arange(b.shape[1])
    return grid[best], res[best, cols] * m / dof[best]


def discrepancy_lambdas(u, s, b, targets: np.ndarray, grid=LAMBDA_GRID) -> np.ndarray:
    """Per-frame λ (F,): the largest λ of ``grid`` with ``||A x_λ - b||² <= τ target`` (the residual
    grows with λ); the smallest λ of the grid where even it leaves a larger residual."""
    beta, perp = _svd_terms(u, s, b)
    ok = _residuals(s, beta, perp, grid) <= TAU * np.asarray(targets)[None, :]
    last = grid.size - 1 - np.argmax(ok[::-1], axis=0)
    return np.where(ok.any(axis=0), grid[last], grid[0])


def tikhonov_lambdas(op, b, noise) -> np.ndarray:
    """λ per frame (F,) for stacked scaled data ``b`` (2R, F): discrepancy principle with the noise
    estimate, GCV without one (both through the operator's cached :meth:`spectrum`)."""
    u, s = op.spectrum()
    bh = op.host(b).astype(np.float64)
    targets = op.noise_energy(noise, bh.shape[1])
    lam_gcv = gcv_lambdas(u, s, bh)[0]
    if targets is None:
        return lam_gcv
    # the misfit GCV sees includes model error (a noisy calibration) that the noise level misses:
    # never regularise less than GCV
    return np.maximum(discrepancy_lambdas(u, s, bh, targets), lam_gcv)


def residual_targets(op, b, noise) -> np.ndarray:
    """Expected ``||n||²`` per frame (F,) of stacked scaled data ``b``: from the noise estimate,
    else from GCV."""
    bh = op.host(b).astype(np.float64)
    targets = op.noise_energy(noise, bh.shape[1])
    u, s = op.spectrum()
    misfit = gcv_lambdas(u, s, bh)[1]
    return misfit if targets is None else np.maximum(targets, misfit)


def admm_mu(op, b, noise, family: str, targets=None) -> np.ndarray:
    """μ per frame (F,) for stacked scaled data ``b`` (2R, F): ``κ σ_eff / max|Aᵀb|``; ``targets``:
    :func:`residual_targets` of ``b`` when the caller has them already (else computed here)."""
    bh = op.host(b).astype(np.float64)
    r2 = bh.shape[0]
    if targets is None:
        targets = residual_targets(op, b, noise)  # (F,) expected misfit ||n||² (scaled units)
    col_energy = float(op.column_energy().mean())
    sigma_eff = np.sqrt(targets / r2 * col_energy)  # std of (Aᵀn)_p
    scale = op.host(op.frame_scales(b)).astype(np.float64)
    return MU_FACTORS[family] * sigma_eff / scale


def admm_rho(op, b, noise, iterations: int) -> np.ndarray:
    """ρ per frame (F,) for stacked scaled data ``b`` (2R, F) and ``iterations`` ADMM steps:
    ``max(RHO_MIN, RHO_FACTOR · iterations · λ_f)`` rounded to a quarter decade (module docstring),
    so frames share the few x-update factorisations of the values that occur."""
    rho = np.maximum(RHO_MIN, RHO_FACTOR * iterations * tikhonov_lambdas(op, b, noise))
    return 10 ** (np.round(4 * np.log10(rho)) / 4)
