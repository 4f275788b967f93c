"""Training DEQ-MPI on simulated data of the user's calibration (the recipe of
``mpirecon train --method deq_mpi``).

Recipe: 16 000 training and 1 000 validation phantoms of the default mixture, SNR uniform in
20-40 dB, signals from the calibration perturbed at its own per-row noise (``operator_noise=1``)
and, for half of them, measured with other physics (``physics_augmentation=0.5``: relaxation,
receive chain, harmonic tilt; :mod:`mpirecon.learning.augment`), MSE loss on the image, Adam lr
5e-4 with cosine decay over 10 epochs, batch 64; gradients through five iterations from the
fixed point (Jacobian-free). An epoch of 12 000 phantoms took 200 s on 2 CPU cores for the 19x19
calibration, so the recipe needs about 45 minutes (the wall-time budget ``max_minutes`` stops it
at 55). Data pipeline, loop and weights format are the
ones DERnet and ADMM-Net use (kind ``deq_mpi``).
"""
from __future__ import annotations

from typing import Optional

from pydantic import Field

from mdf_io import SystemMatrix
from mpirecon.learning.data import PairsTrainConfig
from mpirecon.learning.loop import TrainResult
from mpirecon.learning.unrolled import PenaltyStart, PriorScaling, train_unrolled

from .deq_mpi_model import DEQMPI, DEQHyperParams, predict

KIND = "deq_mpi"


class DEQTrainConfig(PairsTrainConfig, PriorScaling, PenaltyStart):
    """Training recipe of DEQ-MPI (defaults = the documented recipe)."""

    samples: int = Field(16000, ge=1, description="training phantoms")
    val_samples: int = Field(1000, ge=1, description="validation phantoms")
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(5e-4, gt=0, description="Adam learning rate (cosine decay to 2% of it)")
    physics_augmentation: float = Field(0.5, ge=0, le=1, description="share of training signals measured with "
                                                                      "other physics (mpirecon.learning.augment)")
    channels: int = Field(32, ge=1, description="channels of the prior CNN")
    layers: int = Field(4, ge=2, description="3x3 convolutions of the prior CNN")
    consistency_channels: int = Field(8, ge=1, description="channels of the learned-consistency CNN")
    consistency_layers: int = Field(3, ge=0, description="convolutions of the learned-consistency CNN (0: exact "
                                                         "data consistency)")
    max_iterations: int = Field(40, ge=1, le=1000, description="fixed-point iterations at most")
    tolerance: float = Field(1e-3, gt=0, description="stop when the relative change of the image falls below")
    grad_steps: int = Field(5, ge=1, le=50, description="differentiable iterations after the fixed point "
                                                        "(Jacobian-free backpropagation over a few steps)")


def train_deq_mpi(system_matrix: SystemMatrix, out_path, config: DEQTrainConfig | None = None, *,
                  resume: Optional[str] = None, progress: bool = True) -> TrainResult:
    """Train DEQ-MPI for ``system_matrix`` (already frequency-selected) and save the best model
    into ``out_path`` (checkpoint ``out_path + '.ckpt'``; ``resume`` continues one)."""
    cfg = config or DEQTrainConfig()
    return train_unrolled(system_matrix, out_path, cfg, kind=KIND, model=DEQMPI, predict=predict, resume=resume,
                          progress=progress, hyperparameters=lambda shape: DEQHyperParams(
                              image_shape=shape, channels=cfg.channels, layers=cfg.layers,
                              consistency_channels=cfg.consistency_channels,
                              consistency_layers=cfg.consistency_layers, rho0=cfg.initial_rho(shape), rho_in_unit=True,
                              max_iterations=cfg.max_iterations, tolerance=cfg.tolerance, grad_steps=cfg.grad_steps,
                              normalise=cfg.normalised(shape)))
