"""What model-based networks (ADMM-Net, DEQ-MPI) share: the per-matrix factors of the exact
x-update, per-frame scaling, and the small convolutional prior.

On the scaled stacked operator A (2R x P, :mod:`mpirecon.physics.operator`) with per-frame scaled data b
(a frame divided by ``max|Aᵀb|``, so a network sees the same range for any intensity), the
x-update of ADMM ``(AᵀA + ρI)⁻¹ y`` uses the cached eigen-decomposition of AᵀA on its range
(:meth:`mpirecon.physics.operator.SystemOperator.normal_eig`):
``(AᵀA + ρI)⁻¹ y = y/ρ - V diag(s²/(ρ(s²+ρ))) Vᵀ y``, differentiable in ρ and exact for any P.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


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
        """Factors of a float64 :class:`~mpirecon.physics.operator.SystemOperator` (host arrays)."""
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


def factors_for(system_matrix, dtype: str, device) -> Factors:
    """The :class:`Factors` of a (selected) system matrix in torch ``dtype`` ("float32" or
    "float64") on ``device``, built once and cached with the matrix's float64 operator (every
    model-based network bound to the same matrix shares them)."""
    from mpirecon.physics.operator import operator_for

    op = operator_for(system_matrix, "float64")
    return op.memo(("unrolled_factors", dtype, str(device)),
                   lambda: Factors.from_operator(op, getattr(torch, dtype), device))


def frame_scales(b: torch.Tensor, factors: Factors) -> torch.Tensor:
    """Per-frame scale ``max|Aᵀb|`` (B, 1) of scaled stacked data b (B, 2R); 1 for zero frames."""
    s = (b @ factors.A).abs().amax(dim=1, keepdim=True)
    return torch.where(s > 0, s, torch.ones_like(s))


def conv_prior(channels: int, layers: int, dims: int = 2, inputs: int = 1, outputs: int = 1) -> nn.Sequential:
    """``layers`` 3-wide convolutions (``dims`` = 1 or 2) inputs -> C -> ... -> outputs with ReLUs
    between them; the last layer starts at zero (the block starts as "no correction")."""
    conv = nn.Conv2d if dims == 2 else nn.Conv1d
    mods, c_in = [], inputs
    for _ in range(layers - 1):
        mods += [conv(c_in, channels, 3, padding=1), nn.ReLU(inplace=True)]
        c_in = channels
    last = conv(c_in, outputs, 3, padding=1)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(*mods, last)


def train_unrolled(system_matrix, out_path, cfg, *, kind: str, hyperparameters, model, predict,
                   resume=None, progress: bool = True):
    """The training of an unrolled network on simulated pairs (ADMM-Net, DEQ-MPI): a 2D grid, the
    session, the pairs of ``cfg`` (a :class:`~mpirecon.learning.data.PairsTrainConfig`), the float32
    factors on the session's device, ``hyperparameters((Ny, Nx))`` -> hp, ``model(hp)`` -> module,
    ``predict(module, b, factors)`` -> images; weights of ``kind`` with the calibration, recipe and
    versions recorded. Returns :class:`~mpirecon.learning.loop.TrainResult`."""
    from pathlib import Path

    from mpirecon.errors import ReconstructorError
    from mpirecon.io.provenance import versions
    from mpirecon.learning.calibration import calibration_metadata
    from mpirecon.learning.loop import fit, training_session

    shape = system_matrix.image_shape
    if len(shape) != 2:
        raise ReconstructorError(f"{kind}: trains on 2D grids (Nz = 1); take a slice of a 3D calibration")
    with training_session(cfg.device, cfg.seed, cfg.num_threads) as session:
        data = cfg.pairs(system_matrix)
        factors = factors_for(system_matrix, "float32", session.device)
        hp = hyperparameters((int(shape[0]), int(shape[1])))
        metadata = dict(calibration_metadata(system_matrix), model=kind, hyperparameters=hp.as_dict(),
                        training=dict(data.describe(), config=cfg.model_dump(mode="json"), world_size=session.world),
                        versions=versions())
        return fit(model(hp), data, lambda net, b: predict(net, b, factors), Path(out_path), kind=kind,
                   metadata=metadata, config=cfg, session=session, resume=resume, progress=progress)
