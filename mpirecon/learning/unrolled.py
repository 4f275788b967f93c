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
from typing import Optional

import numpy as np
import torch
from pydantic import BaseModel, Field
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
    #: a compressed operator's basis Q (2R, k): A is then ``QᵀA`` (k, P) and the data ``Qᵀb``
    basis: Optional[torch.Tensor] = None
    #: the operator's unit (:attr:`mpirecon.physics.operator.SystemOperator.unit`: 1 when rows
    #: outnumber voxels, P/2R above), the scale of a penalty given relative to the spectrum
    unit: float = 1.0

    @classmethod
    def from_operator(cls, op, dtype=torch.float32, device="cpu") -> "Factors":
        """Factors of a float64 :class:`~mpirecon.physics.operator.SystemOperator` (host arrays), or of
        its :class:`~mpirecon.physics.compression.CompressedOperator` (the calibration's dominant row
        space, for a matrix whose stacked operator is too large to hold)."""
        v, s2 = op.normal_eig()
        t = (lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device))
        basis = getattr(op, "basis", None)
        return cls(A=t(op.host(op.A)), V=t(v), s2=t(s2), scale=float(op.scale),
                   basis=None if basis is None else t(basis), unit=float(op.unit))

    def data(self, spectra: torch.Tensor) -> torch.Tensor:
        """Complex spectra (B, R) -> stacked real scaled data (B, 2R), or (B, k) ``Qᵀb`` when compressed."""
        b = torch.cat([spectra.real, spectra.imag], dim=1) / self.scale
        b = b.to(self.A.dtype)
        return b if self.basis is None else b @ self.basis

    def solve(self, y: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
        """``(AᵀA + ρI)⁻¹ y`` for rows y (B, P) and a scalar tensor ρ > 0."""
        return normal_solve(y, self.V, self.s2, rho)


def normal_solve(y: torch.Tensor, v: torch.Tensor, s2: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
    """``(AᵀA + ρI)⁻¹ y`` for rows y (B, P) from ``AᵀA = V diag(s2) Vᵀ`` (V (P, r), s2 (r,)) and a
    scalar tensor ρ > 0 (the operator's units squared); differentiable in y and ρ."""
    w = s2 / (rho * (s2 + rho))
    return y / rho - ((y @ v) * w) @ v.T


def factors_for(system_matrix, dtype: str, device) -> Factors:
    """The :class:`Factors` of a (selected) system matrix in torch ``dtype`` ("float32" or
    "float64") on ``device``, built once and cached with the matrix's float64 operator (every
    model-based network bound to the same matrix shares them); when :func:`factors_strategy` says
    "compressed", of the compressed operator built in ``dtype`` (training and reconstruction then
    agree, and no float64 copy of the matrix is made)."""
    from mpirecon.physics.compression import DEFAULT_RANK, compressed_operator
    from mpirecon.physics.operator import operator_for

    if factors_strategy(system_matrix.num_rows, system_matrix.num_voxels) == "compressed":
        # the range finder runs through the operator in the working precision: a float64 operator
        # would hold a complex128 copy of the whole matrix beside the one that was read
        op = compressed_operator(operator_for(system_matrix, dtype), DEFAULT_RANK)
    else:
        op = operator_for(system_matrix, "float64")
    return op.memo(("unrolled_factors", dtype, str(device)),
                   lambda: Factors.from_operator(op, getattr(torch, dtype), device))


def factors_strategy(rows: int, voxels: int) -> str:
    """"compressed" when the stacked float64 operator of an (R, P) calibration would be too large to
    hold (e.g. 37^3: the networks then work on its dominant row space of rank
    :data:`~mpirecon.physics.compression.DEFAULT_RANK`), else "exact"."""
    from mpirecon.optim.classical import auto_compresses
    return "compressed" if auto_compresses(rows, voxels, "float64") else "exact"


def frame_scales(b: torch.Tensor, factors: Factors) -> torch.Tensor:
    """Per-frame scale ``max|Aᵀb|`` (B, 1) of scaled stacked data b (B, 2R); 1 for zero frames."""
    s = (b @ factors.A).abs().amax(dim=1, keepdim=True)
    return torch.where(s > 0, s, torch.ones_like(s))


def conv_prior(channels: int, layers: int, dims: int = 2, inputs: int = 1, outputs: int = 1) -> nn.Sequential:
    """``layers`` 3-wide convolutions (``dims`` = 1, 2 or 3: signals, images, volumes) inputs -> C ->
    ... -> outputs with ReLUs between them; the last layer starts at zero (the block starts as "no
    correction")."""
    conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dims]
    mods, c_in = [], inputs
    for _ in range(layers - 1):
        mods += [conv(c_in, channels, 3, padding=1), nn.ReLU(inplace=True)]
        c_in = channels
    last = conv(c_in, outputs, 3, padding=1)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(*mods, last)


def penalty(log_rho: torch.Tensor, factors: Factors, in_unit: bool, dtype) -> torch.Tensor:
    """The ADMM penalty ρ the x-update uses, from a network's learned ``log_rho``: ``exp(log_rho)``
    times the operator's unit when ``in_unit`` (a ρ that means the same on 19^3 and 37^3, as the
    ADMM solvers' ρ; weights that predate it used ``exp(log_rho)`` as it is)."""
    rho = log_rho.exp().to(dtype)
    return rho * factors.unit if in_unit else rho


class PenaltyStart(BaseModel):
    """The training setting of a model-based network's initial ADMM penalty."""

    rho0: Optional[float] = Field(None, gt=0, description="initial ADMM penalty, in the operator's unit (as the ADMM "
                                  "solvers' rho); None: 0.1 on 2D grids (the measured 2D recipes), 1.0 on 3D grids "
                                  "(an untrained network is then non-negative least-squares ADMM near its best on "
                                  "19^3 and 37^3; at 0.1 the 37^3 training died)")

    def initial_rho(self, image_shape) -> float:
        """ρ0 for a network on ``image_shape``."""
        if self.rho0 is not None:
            return float(self.rho0)
        return 1.0 if len(image_shape) == 3 else 0.1


class PriorScaling(BaseModel):
    """The training setting of a model-based network's CNN prior scaling (:func:`apply_image_prior`)."""

    normalise: Optional[bool] = Field(None, description="scale-equivariant CNN priors (input / max|v|, output * "
                                      "max|v|); None: on 3D grids (where plain priors died in training), not on 2D "
                                      "(the measured 2D recipes)")

    def normalised(self, image_shape) -> bool:
        """Whether the prior of a network for ``image_shape`` is normalised."""
        return len(image_shape) == 3 if self.normalise is None else bool(self.normalise)


def apply_image_prior(cnn: nn.Module, v: torch.Tensor, image_shape, normalise: bool = False) -> torch.Tensor:
    """A convolutional prior (:func:`conv_prior` with ``dims = len(image_shape)``) applied to flat
    images v (B, P): reshaped to (B, 1, *image_shape), back to (B, P). ``normalise``: the CNN sees
    v / m and its output is multiplied by m, m = max |v| per frame (a scale-equivariant prior whose
    ReLUs a bias step cannot silence on faint iterates; without it 3D ADMM-Net training died)."""
    if not normalise:
        return cnn(v.reshape((-1, 1) + tuple(image_shape))).reshape(v.shape)
    m = v.abs().amax(dim=1, keepdim=True).clamp_min(1e-12)
    return m * apply_image_prior(cnn, v / m, image_shape)


def train_unrolled(system_matrix, out_path, cfg, *, kind: str, hyperparameters, model, predict,
                   resume=None, progress: bool = True):
    """The training of an unrolled network on simulated pairs (ADMM-Net, DEQ-MPI): the session, the
    pairs of ``cfg`` (a :class:`~mpirecon.learning.data.PairsTrainConfig`; 3D grids: the 3D phantom
    prior), the float32 factors on the session's device, ``hyperparameters(image_shape)`` -> hp
    (``image_shape`` (Ny, Nx) or (Nz, Ny, Nx)), ``model(hp)`` -> module,
    ``predict(module, b, factors)`` -> images; weights of ``kind`` with the calibration, recipe and
    versions recorded. Returns :class:`~mpirecon.learning.loop.TrainResult`."""
    from pathlib import Path

    from mpirecon.io.provenance import versions
    from mpirecon.learning.calibration import calibration_metadata
    from mpirecon.learning.loop import fit, training_session

    shape = tuple(int(n) for n in system_matrix.image_shape)
    with training_session(cfg.device, cfg.seed, cfg.num_threads) as session:
        data = cfg.pairs(system_matrix)
        factors = factors_for(system_matrix, "float32", session.device)
        hp = hyperparameters(shape)
        metadata = dict(calibration_metadata(system_matrix), model=kind, hyperparameters=hp.as_dict(),
                        training=dict(data.describe(), config=cfg.model_dump(mode="json"), world_size=session.world),
                        versions=versions())
        return fit(model(hp), data, lambda net, b: predict(net, b, factors), Path(out_path), kind=kind,
                   metadata=metadata, config=cfg, session=session, resume=resume, progress=progress)


#: prior channels assumed by :func:`unrolled_memory` (the documented recipes' widest CNN)
ESTIMATE_CHANNELS = 32


def unrolled_memory(config, rows: int, voxels: int, frames: int):
    """Estimated peak (:class:`mpirecon.memory.MemoryEstimate`) of a model-based network (ADMM-Net,
    DEQ-MPI) with ``config`` (``dtype``, ``batch_size``) on R=``rows``, P=``voxels``, F=``frames``:
    the matrix and frames; the factors' set-up (float64 SVD or, compressed, the range finder) and
    tensors (V, A, Q); the CNN activations of one batch (about 4 x 32 values per voxel and frame)."""
    from mpirecon.memory import MemoryEstimate, common_parts, real_size, stacked_operator_bytes
    from mpirecon.optim.classical import compressed_memory
    from mpirecon.physics.compression import DEFAULT_RANK

    prec = config.dtype
    parts = common_parts(rows, voxels, frames, prec)
    strategy = factors_strategy(rows, voxels)
    if strategy == "compressed":
        k = min(2 * rows, DEFAULT_RANK)
        parts.update(compressed_memory(rows, voxels, DEFAULT_RANK, prec))
        parts["factors"] = voxels * k * 8 + (2 * voxels + 2 * rows) * k * real_size(prec)
    else:
        r = min(2 * rows, voxels)
        parts["operator"] = stacked_operator_bytes(rows, voxels, "float64")
        parts["factors"] = 2 * voxels * r * 8 + (2 * rows + r) * voxels * real_size(prec)
    batch = min(frames, config.batch_size)
    parts["activations"] = batch * voxels * (4 * ESTIMATE_CHANNELS + 8) * real_size(prec)
    return MemoryEstimate(parts, prec, strategy)
