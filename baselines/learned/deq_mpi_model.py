"""DEQ-MPI (after Güngör et al., IEEE TMI 2023): a deep equilibrium ADMM with a learned prior and
learned consistency. Our own formulation of the idea, not the authors' code.

On the scaled stacked operator A (2R x P) and per-frame scaled data b (B, 2R), one weight-tied
iteration T_θ maps (z, u) to::

    d  = b + C_φ(b - A z)                               learned consistency: a data-domain correction
    x  = (AᵀA + ρI)⁻¹ (Aᵀ d + ρ (z - u))                 exact x-update (cached factors)
    z' = relu(v + D_θ(v)),  v = x + u                   learned prior (CNN), non-negativity
    u' = u + x - z'

and the image is z* of the fixed point (z*, u*) = T_θ(z*, u*), found by iterating from
``z = u = 0`` until the relative change of z falls below ``tolerance`` (at most
``max_iterations``). C_φ is a small 1D CNN along the rows of the residual (real and imaginary
part as two channels): it learns which parts of the data the imperfect calibration cannot
explain. Both networks start at zero, so an untrained DEQ-MPI is non-negative least-squares ADMM,
which converges. Training (:mod:`.deq_mpi_training`) differentiates through the last
``grad_steps`` iterations from the fixed point only (Jacobian-free backpropagation, Fung et al.
2022, over a few steps): memory and time of a few iterations. With one step the learned prior
collapsed to z* = 0 within a few dozen Adam steps on the 19x19 calibration; five were stable.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from mpirecon.learning.unrolled import Factors, apply_image_prior, conv_prior, frame_scales, penalty


@dataclass(frozen=True)
class DEQHyperParams:
    """Architecture and fixed-point settings: prior CNN ``channels``/``layers``, consistency CNN
    ``consistency_channels``/``consistency_layers`` (0 layers: none), initial ``rho0`` (in the
    operator's unit with ``rho_in_unit``, as the ADMM solvers' ρ; absolute in older weights),
    ``max_iterations`` and ``tolerance`` of the forward fixed point, and the differentiable
    iterations after it in training (``grad_steps``)."""

    image_shape: tuple[int, ...]
    channels: int = 32
    layers: int = 4
    consistency_channels: int = 8
    consistency_layers: int = 3
    rho0: float = 0.1
    max_iterations: int = 40
    tolerance: float = 1e-3
    grad_steps: int = 1
    #: scale-equivariant prior (:func:`mpirecon.learning.unrolled.apply_image_prior`); False in older weights
    normalise: bool = False
    #: ρ in the operator's unit (:func:`mpirecon.learning.unrolled.penalty`); False in older weights
    rho_in_unit: bool = False

    def as_dict(self) -> dict:
        """JSON-ready (recorded with the weights)."""
        return dict(asdict(self), image_shape=list(self.image_shape))


class DEQMPI(nn.Module):
    """The equilibrium network (module docstring); ``forward`` returns z* (B, P)."""

    def __init__(self, hp: DEQHyperParams):
        super().__init__()
        self.hp = hp
        self.log_rho = nn.Parameter(torch.tensor(math.log(hp.rho0)))
        self.prior = conv_prior(hp.channels, hp.layers, dims=len(hp.image_shape))
        self.consistency = (conv_prior(hp.consistency_channels, hp.consistency_layers, dims=1, inputs=2, outputs=2)
                            if hp.consistency_layers else None)
        #: iterations and final relative change of the last forward pass (for solve_info)
        self.last_iterations, self.last_change = 0, 0.0

    def step(self, z: torch.Tensor, u: torch.Tensor, b: torch.Tensor, factors: Factors) -> tuple:
        """One iteration T_θ(z, u) for images z, u (B, P) and scaled stacked data b (B, 2R)."""
        rho = penalty(self.log_rho, factors, self.hp.rho_in_unit, b.dtype)
        d = b
        if self.consistency is not None:
            r = b - z @ factors.A.T
            d = b + self.consistency(r.view(r.shape[0], 2, -1)).reshape(r.shape)
        x = factors.solve(d @ factors.A + rho * (z - u), rho)
        v = x + u
        z_new = torch.relu(v + apply_image_prior(self.prior, v, self.hp.image_shape, self.hp.normalise))
        return z_new, u + x - z_new

    def forward(self, b: torch.Tensor, factors: Factors) -> torch.Tensor:
        """z* (B, P) for scaled stacked data b (B, 2R): the fixed point without gradients, then
        (when gradients are on) ``grad_steps`` differentiable iterations from it."""
        z = torch.zeros(b.shape[0], factors.A.shape[1], dtype=b.dtype, device=b.device)
        u = torch.zeros_like(z)
        change, k = math.inf, 0
        with torch.no_grad():
            for k in range(1, self.hp.max_iterations + 1):
                z_new, u = self.step(z, u, b, factors)
                change = float((z_new - z).norm() / z_new.norm().clamp_min(1e-30))
                z = z_new
                if change < self.hp.tolerance:
                    break
        self.last_iterations, self.last_change = k, change
        if torch.is_grad_enabled():
            z, u = z.detach(), u.detach()
            for _ in range(self.hp.grad_steps):
                z, u = self.step(z, u, b, factors)
        return z


def predict(model: DEQMPI, spectra: torch.Tensor, factors: Factors) -> torch.Tensor:
    """Images (B, Ny, Nx) of complex spectra (B, R): scale each frame, find the fixed point,
    scale back."""
    b = factors.data(spectra)
    s = frame_scales(b, factors)
    z = model(b / s, factors) * s
    return z.reshape((-1,) + tuple(model.hp.image_shape))
