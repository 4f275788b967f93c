"""ADMM-Net (Yang et al. 2018, Generic-ADMM-Net) for MPI: K unrolled stages of scaled ADMM.

Problem, on the scaled stacked operator A (2R x P, :mod:`mpirecon.physics.operator`) and per-frame scaled
data b (a frame is divided by ``max|Aᵀb|``, so the network sees the same range for any intensity)::

    min_x ½||A x - b||² + g(x),   g learned

Stage k (k = 1..K), from z_0 = u_0 = 0::

    x_k = (AᵀA + ρ_k I)⁻¹ (Aᵀb + ρ_k (z_{k-1} - u_{k-1}))       exact data consistency
    z_k = prox_k(x_k + u_{k-1})                                  learned: relu(v + CNN_k(v))
    u_k = u_{k-1} + η_k (x_k - z_k)

The output is z_K times the frame scale (non-negative). The x-update, the scaling and the CNNs
are the core's (:mod:`mpirecon.learning.unrolled`, shared with DEQ-MPI).
The learned parameters are log ρ_k, η_k and each stage's CNN (or one CNN shared by all stages).
Each CNN's last layer starts at zero, so an untrained ADMM-Net is K iterations of
non-negative least-squares ADMM; with ``prox`` replaced by a term's proximal map it is exactly
:func:`mpirecon.optim.admm.admm` with that term (tested).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable, Optional

import torch
from torch import nn

from mpirecon.learning.unrolled import Factors, apply_image_prior, conv_prior, frame_scales, penalty


@dataclass(frozen=True)
class ADMMNetHyperParams:
    """Architecture: ``stages`` K, CNN ``channels`` and ``layers`` (3x3 convolutions; 3x3x3 on a 3D
    ``image_shape`` (Nz, Ny, Nx)), whether one CNN is ``shared`` by all stages, and the initial
    penalty ``rho0`` (in the operator's unit with ``rho_in_unit``, as the ADMM solvers' ρ; absolute
    in older weights)."""

    image_shape: tuple[int, ...]
    stages: int = 10
    channels: int = 32
    layers: int = 3
    shared: bool = False
    rho0: float = 0.1
    #: scale-equivariant CNN priors (:func:`mpirecon.learning.unrolled.apply_image_prior`); False in
    #: weights that predate it
    normalise: bool = False
    #: ρ in the operator's unit (:func:`mpirecon.learning.unrolled.penalty`); False in weights that predate it
    rho_in_unit: bool = False

    def as_dict(self) -> dict:
        """JSON-ready (recorded with the weights)."""
        return dict(asdict(self), image_shape=list(self.image_shape))


class ADMMNet(nn.Module):
    """K unrolled ADMM stages with learned penalties, step sizes and proximal CNNs (module docstring)."""

    def __init__(self, hp: ADMMNetHyperParams):
        super().__init__()
        self.hp = hp
        self.log_rho = nn.Parameter(torch.full((hp.stages,), math.log(hp.rho0)))
        self.eta = nn.Parameter(torch.ones(hp.stages))
        n_cnn = 1 if hp.shared else hp.stages
        self.cnns = nn.ModuleList(conv_prior(hp.channels, hp.layers, dims=len(hp.image_shape)) for _ in range(n_cnn))

    def rhos(self) -> torch.Tensor:
        """ρ_k (K,), positive."""
        return self.log_rho.exp()

    def learned_prox(self, v: torch.Tensor, k: int) -> torch.Tensor:
        """Stage ``k``'s proximal map of images v (B, P): ``relu(v + CNN_k(v))``, or with
        ``normalise`` ``relu(v + m CNN_k(v / m))``, m = max |v| per frame."""
        cnn = self.cnns[0 if self.hp.shared else k]
        return torch.relu(v + apply_image_prior(cnn, v, self.hp.image_shape, self.hp.normalise))

    def forward(self, b: torch.Tensor, factors: Factors,
                prox: Optional[Callable[[torch.Tensor, int, torch.Tensor], torch.Tensor]] = None) -> torch.Tensor:
        """z_K (B, P) for scaled stacked data b (B, 2R). ``prox(v, k, rho)`` replaces the learned
        proximal map (e.g. by a term's prox, to compare with the ADMM engine)."""
        atb = b @ factors.A
        z = torch.zeros_like(atb)
        u = torch.zeros_like(atb)
        rhos = penalty(self.log_rho, factors, self.hp.rho_in_unit, atb.dtype)
        eta = self.eta.to(atb.dtype)
        for k in range(self.hp.stages):
            x = factors.solve(atb + rhos[k] * (z - u), rhos[k])
            v = x + u
            z = self.learned_prox(v, k) if prox is None else prox(v, k, rhos[k])
            u = u + eta[k] * (x - z)
        return z


def predict(model: ADMMNet, spectra: torch.Tensor, factors: Factors) -> torch.Tensor:
    """Images (B, Ny, Nx) or volumes (B, Nz, Ny, Nx) of complex spectra (B, R): scale each frame,
    run the stages, scale back."""
    b = factors.data(spectra)
    s = frame_scales(b, factors)
    z = model(b / s, factors) * s
    return z.reshape((-1,) + tuple(model.hp.image_shape))
