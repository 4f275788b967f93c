"""The ``deq_mpi`` reconstructor plugin: a trained DEQ-MPI (deep equilibrium ADMM with a learned
prior and learned consistency, :mod:`.deq_mpi_model`) behind the common interface.

It needs its weights (``mpirecon train --method deq_mpi``) and the system matrix they were trained
for (the x-update solves with it; another calibration is refused with a one-line error).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch
from pydantic import Field

from mdf_io import SystemMatrix
from mpirecon.learning.calibration import TrainedForCalibration
from mpirecon.learning.inference import predict_in_batches
from mpirecon.learning.weights import recorded_hyperparameters
from mpirecon.learning.unrolled import factors_for, unrolled_memory
from mpirecon.reconstructor import Capabilities, Reconstructor, ReconstructorConfig, ReconstructorError

from .deq_mpi_model import DEQMPI, DEQHyperParams, predict
from .deq_mpi_training import KIND, DEQTrainConfig, train_deq_mpi


class DEQConfig(ReconstructorConfig):
    batch_size: int = Field(1024, ge=1, description="frames per forward pass")
    dtype: str = Field("float32", pattern="^(float32|float64)$")
    max_iterations: int | None = Field(None, ge=1, le=10000, description="fixed-point iterations at most (None: "
                                                                          "the trained setting)")
    tolerance: float | None = Field(None, gt=0, description="relative change of the image that ends the fixed-point "
                                                            "iteration (None: the trained setting)")


class DEQMPIReconstructor(TrainedForCalibration, Reconstructor):
    """DEQ-MPI (after Güngör et al. 2023); ``weights`` from ``mpirecon train --method deq_mpi``."""

    name = "deq_mpi"
    description = "DEQ-MPI: deep equilibrium ADMM with a learned prior and learned consistency; needs --weights and --sm"
    Config = DEQConfig
    capabilities = Capabilities(needs_system_matrix=True, needs_weights=True, supports_gpu=True, trainable=True)
    TrainSettings = DEQTrainConfig

    def _load_weights(self, weights) -> None:
        cfg = self.config

        def build(meta):
            hp = recorded_hyperparameters(DEQHyperParams, meta["hyperparameters"])
            overrides = {k: getattr(cfg, k) for k in ("max_iterations", "tolerance") if getattr(cfg, k) is not None}
            self.hp = dataclasses.replace(hp, **overrides)
            return DEQMPI(self.hp)

        net, _ = self._read_trained_weights(weights, KIND, "DEQ-MPI", build)
        self.device = torch.device(cfg.device)
        self.tdtype = getattr(torch, cfg.dtype)
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
        out = predict_in_batches(lambda b: predict(self.net, b, self.factors), spectra, self.config.batch_size,
                                 self.config.dtype, self.device)
        # of the last batch of frames (one batch unless more than batch_size frames)
        self.solve_info.update(iterations=self.net.last_iterations, relative_change=self.net.last_change)
        return out

    @classmethod
    def train(cls, system_matrix: SystemMatrix, output, settings: dict, *, resume=None,
              progress: bool = True) -> dict:
        """Train DEQ-MPI for ``system_matrix`` (frequency-selected) into ``output``; ``settings``
        override :class:`~.deq_mpi_training.DEQTrainConfig` fields."""
        cfg = cls.train_settings(settings)
        if system_matrix is None:
            raise ReconstructorError("deq_mpi: training needs the system matrix (--sm)")
        return train_deq_mpi(system_matrix, output, cfg, resume=resume, progress=progress).summary()
