"""The ``admm_net`` reconstructor plugin: a trained ADMM-Net (unrolled ADMM with learned penalties
and proximal CNNs, :mod:`.admm_net_model`) behind the common interface.

It needs its weights (``mpirecon train --method admm_net``) and the system matrix they were
trained for: every stage's x-update solves with the bound matrix (its cached eigen-decomposition
of AᵀA), so the data consistency is exact. The weights record the calibration's geometry, rows
and fingerprint; another calibration is refused with a one-line error.
"""
from __future__ import annotations

import numpy as np
import torch
from pydantic import Field

from mdf_io import SystemMatrix
from mpirecon.learning.calibration import TrainedForCalibration
from mpirecon.learning.inference import predict_in_batches
from mpirecon.learning.weights import recorded_hyperparameters
from mpirecon.reconstructor import Capabilities, Reconstructor, ReconstructorConfig, ReconstructorError

from mpirecon.learning.unrolled import factors_for, unrolled_memory

from .admm_net_model import ADMMNet, ADMMNetHyperParams, predict
from .admm_net_training import KIND, ADMMNetTrainConfig, train_admm_net


class ADMMNetConfig(ReconstructorConfig):
    batch_size: int = Field(1024, ge=1, description="frames per forward pass")
    dtype: str = Field("float32", pattern="^(float32|float64)$")


class ADMMNetReconstructor(TrainedForCalibration, Reconstructor):
    """ADMM-Net (Yang et al. 2018) for MPI; ``weights`` from ``mpirecon train --method admm_net``."""

    name = "admm_net"
    description = "ADMM-Net: unrolled ADMM with learned penalties and CNN priors; needs --weights and --sm"
    Config = ADMMNetConfig
    capabilities = Capabilities(needs_system_matrix=True, needs_weights=True, supports_gpu=True, trainable=True)
    TrainSettings = ADMMNetTrainConfig

    def _load_weights(self, weights) -> None:
        def build(meta):
            self.hp = recorded_hyperparameters(ADMMNetHyperParams, meta["hyperparameters"])
            return ADMMNet(self.hp)

        net, _ = self._read_trained_weights(weights, KIND, "ADMM-Net", build)
        self.device = torch.device(self.config.device)
        self.tdtype = getattr(torch, self.config.dtype)
        self.net = net.to(self.device, self.tdtype).eval()

    @classmethod
    def memory_estimate(cls, config, rows: int, voxels: int, frames: int):
        """The factors of the exact (or, for a large calibration, compressed) x-update and one batch's
        CNN activations (:func:`mpirecon.learning.unrolled.unrolled_memory`)."""
        return unrolled_memory(config, rows, voxels, frames)

    def _setup(self, system_matrix: SystemMatrix) -> None:
        """The factors of the bound matrix, built once per operator and device."""
        self.factors = factors_for(system_matrix, self.config.dtype, self.device)

    def _solve(self, spectra: np.ndarray) -> np.ndarray:
        return predict_in_batches(lambda b: predict(self.net, b, self.factors), spectra, self.config.batch_size,
                                  self.config.dtype, self.device)

    @classmethod
    def train(cls, system_matrix: SystemMatrix, output, settings: dict, *, resume=None,
              progress: bool = True) -> dict:
        """Train ADMM-Net for ``system_matrix`` (frequency-selected) into ``output``; ``settings``
        override :class:`~.admm_net_training.ADMMNetTrainConfig` fields."""
        cfg = cls.train_settings(settings)
        if system_matrix is None:
            raise ReconstructorError("admm_net: training needs the system matrix (--sm)")
        return train_admm_net(system_matrix, output, cfg, resume=resume, progress=progress).summary()
