"""ADMM-Net (Yang et al. 2018, Generic-ADMM-Net) for MPI: K unrolled stages of scaled ADMM.

Problem, on the scaled stacked operator A (2R x P, :mod:`mpirecon.operator`) and per-frame scaled
data b (a frame is divided by ``max|Aᵀb|``, so the network sees the same range for any intensity)::

    min_x ½||A x - b||² + g(x),   g learned

Stage k (k = 1..K), from z_0 = u_0 = 0::

    x_k = (AᵀA + ρ_k I)⁻¹ (Aᵀb + ρ_k (z_{k-1} - u_{k-1}))       exact data consistency
    z_k = prox_k(x_k + u_{k-1})                                  learned: relu(v + CNN_k(v))
    u_k = u_{k-1} + η_k (x_k - z_k)

The output is z_K times the frame scale (non-negative). The x-update uses the cached
eigen-decomposition of AᵀA on its range (:meth:`mpirecon.operator.SystemOperator.normal_eig`):
``(AᵀA + ρI)⁻¹ y = y/ρ - V diag(s²/(ρ(s²+ρ))) Vᵀ y``, differentiable in ρ and exact for any P.
The learned parameters are log ρ_k, η_k and each stage's CNN (or one CNN shared by all stages).
Each CNN's last layer starts at zero, so an untrained ADMM-Net is K iterations of
non-negative least-squares ADMM; with ``prox`` replaced by a term's proximal map it is exactly
:func:`mpirecon.admm.admm` with that term (tested).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable, Optional

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class ADMMNetHyperParams:
    """Architecture: ``stages`` K, CNN ``channels`` and ``layers`` (3x3 convolutions), whether
    one CNN is ``shared`` by all stages, and the initial penalty ``rho0`` (relative, as the ADMM
    solvers' ρ)."""

    image_shape: tuple[int, int]
    stages: int = 10
    channels: int = 32
    layers: int = 3
    shared: bool = False
    rho0: float = 0.1

    def as_dict(self) -> dict:
        """JSON-ready (recorded with the weights)."""
        return dict(asdict(self), image_shape=list(self.image_shape))


@dataclass
class Factors:
    """The per-matrix tensors a forward pass needs (built once per operator, moved to the device
    once): ``A`` (2R, P) the scaled stacked operator, ``V`` (P, r) and ``s2`` (r,) with
    ``AᵀA = V diag(s2) Vᵀ``, and ``scale`` the operator's scale (spectra are divided by it)."""

    A: torch.Tensor
    V: torch.Tensor
    s2: torch.Tensor
    scale: float

    @classmethod
    def from_operator(cls, op, dtype=torch.float32, device="cpu") -> "Factors":
        """Factors of a float64 :class:`~mpirecon.operator.SystemOperator` (host arrays)."""
        v, s2 = op.normal_eig()
        t = (lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device))
        return cls(A=t(op.host(op.A)), V=t(v), s2=t(s2), scale=float(op.scale))

    def data(self, spectra: torch.Tensor) -> torch.Tensor:
        """Complex spectra (B, R) -> stacked real scaled data (B, 2R)."""
        b = torch.cat([spectra.real, spectra.imag], dim=1) / self.scale
        return b.to(self.A.dtype)

    def solve(self, y: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
        """``(AᵀA + ρI)⁻¹ y`` for rows y (B, P) and a scalar tensor ρ > 0."""
        w = self.s2 / (rho * (self.s2 + rho))
        return y / rho - ((y @ self.V) * w) @ self.V.T


def _cnn(channels: int, layers: int) -> nn.Sequential:
    """3x3 convolutions 1 -> C -> ... -> 1 with ReLUs; the last layer starts at zero."""
    mods, c_in = [], 1
    for _ in range(layers - 1):
        mods += [nn.Conv2d(c_in, channels, 3, padding=1), nn.ReLU(inplace=True)]
        c_in = channels
    last = nn.Conv2d(c_in, 1, 3, padding=1)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(*mods, last)


class ADMMNet(nn.Module):
    """K unrolled ADMM stages with learned penalties, step sizes and proximal CNNs (module docstring)."""

    def __init__(self, hp: ADMMNetHyperParams):
        super().__init__()
        self.hp = hp
        self.log_rho = nn.Parameter(torch.full((hp.stages,), math.log(hp.rho0)))
        self.eta = nn.Parameter(torch.ones(hp.stages))
        n_cnn = 1 if hp.shared else hp.stages
        self.cnns = nn.ModuleList(_cnn(hp.channels, hp.layers) for _ in range(n_cnn))

    def rhos(self) -> torch.Tensor:
        """ρ_k (K,), positive."""
        return self.log_rho.exp()

    def learned_prox(self, v: torch.Tensor, k: int) -> torch.Tensor:
        """Stage ``k``'s proximal map of images v (B, P): ``relu(v + CNN_k(v))``."""
        ny, nx = self.hp.image_shape
        cnn = self.cnns[0 if self.hp.shared else k]
        return torch.relu(v + cnn(v.reshape(-1, 1, ny, nx)).reshape(v.shape))

    def forward(self, b: torch.Tensor, factors: Factors,
                prox: Optional[Callable[[torch.Tensor, int, torch.Tensor], torch.Tensor]] = None) -> torch.Tensor:
        """z_K (B, P) for scaled stacked data b (B, 2R). ``prox(v, k, rho)`` replaces the learned
        proximal map (e.g. by a term's prox, to compare with the ADMM engine)."""
        atb = b @ factors.A
        z = torch.zeros_like(atb)
        u = torch.zeros_like(atb)
        rhos = self.rhos().to(atb.dtype)
        eta = self.eta.to(atb.dtype)
        for k in range(self.hp.stages):
            x = factors.solve(atb + rhos[k] * (z - u), rhos[k])
            v = x + u
            z = self.learned_prox(v, k) if prox is None else prox(v, k, rhos[k])
            u = u + eta[k] * (x - z)
        return z


def frame_scales(b: torch.Tensor, factors: Factors) -> torch.Tensor:
    """Per-frame scale ``max|Aᵀb|`` (B, 1) of scaled stacked data b (B, 2R); 1 for zero frames."""
    s = (b @ factors.A).abs().amax(dim=1, keepdim=True)
    return torch.where(s > 0, s, torch.ones_like(s))


def predict(model: ADMMNet, spectra: torch.Tensor, factors: Factors) -> torch.Tensor:
    """Images (B, Ny, Nx) of complex spectra (B, R): scale each frame, run the stages, scale back."""
    b = factors.data(spectra)
    s = frame_scales(b, factors)
    z = model(b / s, factors) * s
    return z.reshape((-1,) + tuple(model.hp.image_shape))
