"""The ``dernet`` reconstructor plugin: a trained DERnet behind the common interface."""
from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

import numpy as np
import torch
from pydantic import Field, field_validator

from mdf_io import SystemMatrix
from mpirecon.learning.calibration import TrainedForCalibration
from mpirecon.learning.inference import predict_in_batches
from mpirecon.autoreg import admm_mu, is_auto
from mpirecon.noise import CALIBRATION_SNR
from mpirecon.operator import operator_for
from mpirecon.refine import noise_adaptive_mu, prepare, refine
from mpirecon.registry import get_reconstructor_class, load_reconstructor
from mpirecon.reconstructor import (Capabilities, Reconstructor, ReconstructorConfig, ReconstructorError,
                                    validated)

from .model import DERnet, DERnetHyperParams, fuse_for_inference, predict
from .training import KIND, TrainConfig, train_dernet


#: ppmpi parameters of DERnet's plug-and-play refinement (refine_denoiser set; docs/dernet.md)
PNP_DEFAULTS = {"rho": 0.1, "iterations": 60, "sigma_factor": 1.4}


class DERnetConfig(ReconstructorConfig):
    batch_size: int = Field(1024, ge=1, description="frames per forward pass")
    dtype: str = Field("float32", pattern="^(float32|float64)$")
    refine: bool = Field(True, description="data-consistent refinement of the network image whenever a system "
                                           "matrix is bound (proximal, mpirecon.refine; or plug-and-play, see "
                                           "refine_denoiser); false: the network image alone")
    refine_mu: float = Field(0.1, gt=0, description="proximal refinement: pull towards the network image (relative to ||A||_F^2/P), "
                                                     "used when the measurement's noise is unknown")
    refine_error: Optional[float] = Field(0.1, gt=0, description="proximal refinement: expected RMS error of the network image relative "
                                                                 "to its maximum: with a noise estimate, the pull "
                                                                 "follows each frame's noise (MAP weight); unset: "
                                                                 "always refine_mu")
    refine_iterations: int = Field(100, ge=0, le=10000, description="proximal refinement: ADMM iterations (from the "
                                                                    "exact unconstrained refinement)")
    refine_tv: Union[Annotated[float, Field(ge=0)], Literal["auto"]] = Field(
        "auto", description="proximal refinement: weight of a TV term (units of ADMM-TV's mu; 0: none), or 'auto': "
                            "ADMM-TV's automatic mu per frame (mpirecon.autoreg.admm_mu, from the noise estimate)")
    refine_denoiser: Optional[str] = Field(
        None, description="None: the proximal refinement (refine_mu, refine_error, refine_iterations, refine_tv); a "
                          "PP-MPI denoiser ('shipped', 'published' or a file): plug-and-play refinement, ppmpi's ADMM "
                          "iteration warm-started at the network image with it as the prior (refine_pnp)")
    refine_pnp: dict[str, Any] = Field(
        default_factory=lambda: dict(PNP_DEFAULTS),
        description="plug-and-play refinement: ppmpi parameters (rho, iterations, sigma_factor, sigma_end, nonneg) "
                    "over these defaults, not ppmpi's own; device and dtype are DERnet's; sigma_start has no effect "
                    "(the warm start keeps the final noise level)")

    @field_validator("refine_pnp")
    @classmethod
    def _ppmpi_parameters(cls, value: dict) -> dict:
        """Only ppmpi's own parameters (device and dtype follow DERnet's), validated up front."""
        fixed = sorted({"device", "dtype"} & set(value))
        if fixed:
            raise ValueError(f"expected ppmpi parameters other than device/dtype (DERnet's own), found {fixed}")
        merged = dict(PNP_DEFAULTS, **value)
        validated(get_reconstructor_class("ppmpi").Config, merged, "ppmpi")  # a ValueError
        return merged


def hyperparameters_of_weights(meta: dict) -> DERnetHyperParams:
    """The :class:`~.model.DERnetHyperParams` recorded in DERnet weights metadata (numbers coerced)."""
    hp = meta["hyperparameters"]
    stages = hp["pooling_stages"]
    return DERnetHyperParams(num_rows=int(hp["num_rows"]), grid=(int(hp["grid"][0]), int(hp["grid"][1])),
                             c1=int(hp["c1"]), c2=int(hp["c2"]), c3=int(hp["c3"]), c4=int(hp["c4"]), c5=int(hp["c5"]),
                             rho0=float(hp["rho0"]), rho1=float(hp["rho1"]),
                             pooling_stages=None if stages is None else int(stages),
                             consistency_stages=int(hp.get("consistency_stages", 0)))


class DERnetReconstructor(TrainedForCalibration, Reconstructor):
    """DERnet (Peng et al. 2024): end-to-end CNN from selected spectra to the image.

    ``load_reconstructor("dernet", weights="w.pt")`` needs nothing else: the weights carry the
    geometry (grid, selected rows, receiver) and a fingerprint of the system matrix. Binding a
    system matrix is optional; if given, its rows are reduced to the trained selection and its
    fingerprint must match, otherwise a clear error is raised instead of a garbage image. With a
    bound matrix the network image is refined against the data (``refine``): by default with the
    proximal refinement of :mod:`mpirecon.refine`, or with PP-MPI's plug-and-play iteration
    warm-started at it (``refine_denoiser``, ``refine_pnp``). Defaults chosen on the worst of the
    bench's realistic and physics-shift validation splits (docs/dernet.md).
    """

    name = "dernet"
    description = "DERnet end-to-end CNN (Peng et al. 2024); needs --weights from `mpirecon train`"
    Config = DERnetConfig
    capabilities = Capabilities(needs_system_matrix=False, needs_weights=True, supports_gpu=True, trainable=True,
                                supports_3d=False)
    TrainSettings = TrainConfig

    def _load_weights(self, weights) -> None:
        def build(meta):
            self.hp = hyperparameters_of_weights(meta)
            self.kappa = float(meta["kappa"])
            return DERnet(self.hp)

        net, _ = self._read_trained_weights(weights, KIND, "DERnet", build)
        self.device = torch.device(self.config.device)
        self.net = fuse_for_inference(net).to(self.device, dtype=getattr(torch, self.config.dtype))

    def _setup(self, system_matrix: SystemMatrix) -> None:
        """Per matrix: the refinement's set-up (the network itself needs nothing): the bound ppmpi
        of the plug-and-play refinement (its operator and x-update factorisation), or the proximal
        refinement's operator, eigen-decomposition and factorisation."""
        cfg = self.config
        if cfg.refine and cfg.refine_denoiser is not None:
            params = dict(cfg.refine_pnp, device=cfg.device, dtype=cfg.dtype)
            self.pnp = load_reconstructor("ppmpi", system_matrix, weights=cfg.refine_denoiser, **params)
        elif cfg.refine:
            self.op = operator_for(system_matrix, "float64")
            prepare(self.op, tv=is_auto(cfg.refine_tv) or cfg.refine_tv > 0)

    def _solve(self, spectra: np.ndarray) -> np.ndarray:
        images = self._network(spectra)
        cfg = self.config
        self.solve_info["refined"] = bool(cfg.refine and self.system_matrix is not None)
        if not self.solve_info["refined"]:
            return images
        self.solve_info["refinement"] = "proximal" if cfg.refine_denoiser is None else "plug-and-play"
        if cfg.refine_denoiser is not None:
            refined = self.pnp.plug_and_play(spectra, images, noise=self.noise)
            self.solve_info.update(self.pnp.solve_info, denoiser=str(self.pnp.weights_file))
            return refined
        op = self.op
        mu = cfg.refine_mu
        if cfg.refine_error is not None and self.noise is not None and self.noise.source != CALIBRATION_SNR:
            # the measurement's own noise (background frames or given); the calibration's SNR
            # describes the calibration, not the measurement, so it falls back to refine_mu
            mu = noise_adaptive_mu(op, spectra, images, self.noise.sigma, cfg.refine_error)
        tv = admm_mu(op, op.data(spectra), self.noise, "tv") if is_auto(cfg.refine_tv) else cfg.refine_tv
        return refine(op, spectra, images, mu=mu, iterations=cfg.refine_iterations, tv=tv)

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
