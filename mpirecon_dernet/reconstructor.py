"""The ``dernet`` reconstructor plugin: a trained DERnet behind the common interface."""
from __future__ import annotations

import numpy as np
import torch
from pydantic import Field, field_validator

from mdf_io import SystemMatrix
from mpirecon.learning.calibration import TrainedForCalibration
from mpirecon.learning.inference import predict_in_batches
from mpirecon.learning.weights import recorded_hyperparameters
from mpirecon.physics.operator import operator_for
from mpirecon.reconstructor import Capabilities, Reconstructor, ReconstructorConfig, ReconstructorError

from .model import DERnet, DERnetHyperParams, fuse_for_inference, predict
from .refinement import ProximalRefinement, Refinement, Refiner, refinement_value
from .training import KIND, TrainConfig, train_dernet


class DERnetConfig(ReconstructorConfig):
    batch_size: int = Field(1024, ge=1, description="frames per forward pass")
    dtype: str = Field("float32", pattern="^(float32|float64)$")
    refine: Refinement = Field(default_factory=ProximalRefinement, description=(
        "refinement of the network image against the data when a system matrix is bound: false or 'none' (the "
        "network alone), 'proximal' (default) or 'pnp' with that kind's defaults, or a dict such as "
        "{'kind': 'proximal', 'iterations': 50} or {'kind': 'pnp', 'denoiser': 'shipped', 'iterations': 30} "
        "(mpirecon_dernet.refinement)"))

    @field_validator("refine", mode="before")
    @classmethod
    def _shorthand(cls, value):
        return refinement_value(value)


class DERnetReconstructor(TrainedForCalibration, Reconstructor):
    """DERnet (Peng et al. 2024): end-to-end CNN from selected spectra to the image.

    ``load_reconstructor("dernet", weights="w.pt")`` needs nothing else: the weights carry the
    geometry (grid, selected rows, receiver) and a fingerprint of the system matrix. Binding a
    system matrix is optional; if given, its rows are reduced to the trained selection and its
    fingerprint must match, otherwise a clear error is raised instead of a garbage image. With a
    bound matrix the network image is refined against the data (``refine``, one typed value of
    :mod:`.refinement`): by default with the proximal refinement of :mod:`.refine`, or with the core's
    plug-and-play iteration warm-started at it (``refine="pnp"``). Defaults chosen on the worst of the
    bench's realistic and physics-shift validation splits (docs/dernet.md).
    """

    name = "dernet"
    description = ("DERnet end-to-end CNN (Peng et al. 2024); needs --weights from `mpirecon train`; 2D grids: its "
                   "fully connected domain transform maps the selected rows to one slice, so a 3D calibration is "
                   "used one slice at a time (--slice z=K, trained per slice), as in the paper; the signal of the "
                   "other slices then counts as model error, so this fits an object confined to the slice, not a "
                   "volume (on the 3D protocol's volumes the slice images are several times too bright: "
                   "docs/learned-3d.md). For whole volumes: ppmpi (3D denoiser), admm_net, deq_mpi")
    Config = DERnetConfig
    capabilities = Capabilities(needs_system_matrix=False, needs_weights=True, supports_gpu=True, trainable=True,
                                supports_3d=False)
    TrainSettings = TrainConfig

    def _load_weights(self, weights) -> None:
        def build(meta):
            self.hp = recorded_hyperparameters(DERnetHyperParams, meta["hyperparameters"])
            self.kappa = float(meta["kappa"])
            return DERnet(self.hp)

        net, _ = self._read_trained_weights(weights, KIND, "DERnet", build)
        self.device = torch.device(self.config.device)
        self.net = fuse_for_inference(net).to(self.device, dtype=getattr(torch, self.config.dtype))

    def _setup(self, system_matrix: SystemMatrix) -> None:
        """Per matrix: the refinement's set-up (the network itself needs nothing): operators,
        factorisations and, for plug-and-play, the denoiser."""
        cfg = self.config
        self.refiner = Refiner(cfg.refine, lambda dtype, device, backend: operator_for(
            system_matrix, dtype, device, backend=backend), cfg.device, cfg.dtype)

    def _solve(self, spectra: np.ndarray) -> np.ndarray:
        images = self._network(spectra)
        self.solve_info["refined"] = self.system_matrix is not None and self.config.refine.kind != "none"
        if self.system_matrix is None:
            return images
        refined, info = self.refiner(spectra, images, self.noise)
        self.solve_info.update(info)
        return refined

    def _network(self, spectra: np.ndarray) -> np.ndarray:
        """The network's images (F, P) float32 of spectra (F, R), in batches of ``batch_size``."""
        return predict_in_batches(lambda b: predict(self.net, b, self.kappa), spectra, self.config.batch_size,
                                  self.config.dtype, self.device, np.float32)

    @classmethod
    def train(cls, system_matrix: SystemMatrix, output, settings: dict, *, resume=None,
              progress: bool = True) -> dict:
        """Train DERnet for ``system_matrix`` (frequency-selected) into ``output`` with the
        documented recipe; ``settings`` override :class:`~.training.TrainConfig` fields."""
        cfg = cls.train_settings(settings)
        if system_matrix is None:
            raise ReconstructorError("dernet: training needs the system matrix (--sm)")
        return train_dernet(system_matrix, output, cfg, resume=resume, progress=progress).summary()
