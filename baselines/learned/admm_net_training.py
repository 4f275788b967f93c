"""Training ADMM-Net on simulated data b = A c + n of the user's calibration.

Recipe (the defaults of ``mpirecon train --method admm_net``): 32 000 training and 2 000
validation phantoms of the default mixture (the DERnet recipe's families), SNR uniform in
20-40 dB, signals from the calibration perturbed at its own per-row noise level
(``operator_noise=1``: b = (A + E) c + δ Σc + n, E and δ drawn per batch, see
:class:`mpirecon.learning.data.SimulatedPairs`), MSE loss on the image, Adam lr 2e-3 with cosine
decay over 20 epochs, batch 64, 10 stages with their own 3-layer, 32-channel CNN; the model with
the best validation loss is saved. It shares DERnet's data pipeline (:class:`mpirecon.learning.data.SimulatedPairs`), loop
(:func:`mpirecon.learning.loop.fit`: checkpoints, resume, wall-time budget) and weights format
(kind ``admm_net``: geometry, selected rows, fingerprint, recipe, versions).

On a 3D calibration the same recipe trains 3x3x3 CNNs on the 3D phantom prior; on 2 CPU cores at
19^3 a smaller network fits (docs/learned-3d.md: ``stages=8 channels=16``, 6,000 phantoms).
"""
from __future__ import annotations

from typing import Optional

from pydantic import Field

from mdf_io import SystemMatrix
from mpirecon.learning.data import PairsTrainConfig
from mpirecon.learning.loop import TrainResult
from mpirecon.learning.unrolled import PenaltyStart, PriorScaling, train_unrolled

from .admm_net_model import ADMMNet, ADMMNetHyperParams, predict

KIND = "admm_net"


class ADMMNetTrainConfig(PairsTrainConfig, PriorScaling, PenaltyStart):
    """Training recipe of ADMM-Net (defaults = the documented recipe)."""

    samples: int = Field(32000, ge=1, description="training phantoms")
    val_samples: int = Field(2000, ge=1, description="validation phantoms")
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(2e-3, gt=0, description="Adam learning rate (cosine decay to 2% of it)")
    stages: int = Field(10, ge=1, le=100, description="unrolled ADMM stages K")
    channels: int = Field(32, ge=1, description="channels of each stage's CNN")
    layers: int = Field(3, ge=2, description="3x3 convolutions per CNN")
    shared: bool = Field(False, description="one CNN shared by all stages")


def train_admm_net(system_matrix: SystemMatrix, out_path, config: ADMMNetTrainConfig | None = None, *,
                   resume: Optional[str] = None, progress: bool = True) -> TrainResult:
    """Train an ADMM-Net for ``system_matrix`` (already frequency-selected) and save the best model.

    Args:
        system_matrix: the calibration; its selected rows are the network's data.
        out_path: weights file (best validation loss); checkpoint ``out_path + '.ckpt'``.
        config: :class:`ADMMNetTrainConfig` (defaults = the documented recipe).
        resume: a checkpoint to continue from (same recipe required).
    Returns:
        :class:`~mpirecon.learning.loop.TrainResult`.
    """
    cfg = config or ADMMNetTrainConfig()
    return train_unrolled(system_matrix, out_path, cfg, kind=KIND, model=ADMMNet, predict=predict, resume=resume,
                          progress=progress, hyperparameters=lambda shape: ADMMNetHyperParams(
                              image_shape=shape, stages=cfg.stages, channels=cfg.channels, layers=cfg.layers,
                              shared=cfg.shared, rho0=cfg.initial_rho(shape), rho_in_unit=True,
                              normalise=cfg.normalised(shape)))
