"""PP-MPI (Askin et al. 2022): plug-and-play ADMM with a learned image denoiser as the prior.

    x  = (AᵀA + ρI)⁻¹ (Aᵀb + ρ(z - u))      data consistency (shared ADMM factorisation)
    z  = max(D(x + u), 0)                    learned denoiser as proximal step, non-negativity
    u += x - z

The prior list is ``[Denoiser, NonNegative]`` for :func:`mpirecon.admm.admm`, the engine the ADMM
baselines use; the x-update factorisation is cached in the shared operator (torch backend, on
the CPU or a GPU); iterations are batched over frames. ``mpirecon train --method ppmpi`` trains
a denoiser on the phantom prior for the system matrix's grid (:meth:`PPMPIReconstructor.train`).
:meth:`PPMPIReconstructor.plug_and_play` is also the hook through which another method warm-starts
the iteration at its own images (DERnet's default refinement).
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union

import numpy as np
import torch
from pydantic import Field

from mdf_io import SystemMatrix
from mpirecon.admm import admm
from mpirecon.autoreg import is_auto, residual_targets
from mpirecon.operator import operator_for
from mpirecon.priors import Denoiser, NonNegative
from mpirecon.reconstructor import Capabilities, Reconstructor, ReconstructorConfig, ReconstructorError

from .denoiser import denoise, load_denoiser
from .denoiser_training import DenoiserTrainConfig, train_denoiser


class PPMPIConfig(ReconstructorConfig):
    """PP-MPI parameters: ADMM penalty, iterations, non-negativity, working precision."""

    rho: float = Field(0.1, gt=0, description="ADMM penalty (relative to ||A||_F^2/P)")
    iterations: int = Field(30, ge=1, le=10000)
    sigma_start: float = Field(0.1, gt=0, description="noise std (relative to the image maximum) a noise-aware "
                                                     "denoiser is told in the first iteration (at least sigma_end); "
                                                     "a plain denoiser ignores the schedule")
    sigma_end: Union[Annotated[float, Field(gt=0)], Literal["auto"]] = Field(
        "auto", description="... in the last iteration (geometric in between, strong denoising first, as DPIR); "
                          "'auto': per frame, sigma_factor x the frame's relative data error (expected misfit "
                          "from the noise estimate, never below GCV's, over ||b||)")
    sigma_factor: float = Field(1.0, gt=0, description="κ of sigma_end='auto'. Shipped denoiser, bench validation "
                                "splits (60 per SNR, 20/25/30/35 dB), realistic: κ = 0.7/1/1.4 gave 20.49/20.78/20.79 "
                                "dB mean, paper 26.53/26.87/27.11; a fixed 0.1 -> 0.02: 19.63 and 25.48, the "
                                "published denoiser 20.08 and 23.70 (benchmarks/method_validation.py)")
    nonneg: bool = Field(True, description="non-negativity constraint, enforced in every iteration")
    dtype: str = Field("float32", pattern="^(float32|float64)$")


class PPMPIReconstructor(Reconstructor):
    """Plug-and-play ADMM; ``weights`` = a denoiser file, ``"shipped"`` (the default: the packaged
    noise-aware denoiser) or ``"published"`` (the PP-MPI authors' RDN)."""

    name = "ppmpi"
    description = ("PP-MPI plug-and-play ADMM with a learned RDN denoiser (default: the shipped noise-aware one; "
                   "weights=published: the PP-MPI authors')")
    Config = PPMPIConfig
    capabilities = Capabilities(needs_weights=False, supports_gpu=True, trainable=True, supports_3d=False)
    TrainSettings = DenoiserTrainConfig

    def _load_weights(self, weights) -> None:
        self.denoiser = load_denoiser(weights)  # WeightsError naming the file
        self.weights_file = Path(self.denoiser.source)
        self.device = torch.device(self.config.device)
        self.tdtype = getattr(torch, self.config.dtype)
        self.denoiser.net.to(self.device, self.tdtype)

    def _setup(self, system_matrix: SystemMatrix) -> None:
        self.host = operator_for(system_matrix, "float64")  # data and per-frame scales in float64
        self.op = operator_for(system_matrix, self.config.dtype, self.config.device, backend="torch")
        self.op.x_update(self.config.rho)
        self.image_shape = system_matrix.image_shape

    def noise_schedule(self, b: np.ndarray | None = None, warm: bool = False) -> np.ndarray:
        """The noise std (relative to the image maximum) the denoiser is told in each ADMM
        iteration, per frame (iterations, F): geometric from ``max(sigma_start, sigma_end)`` to
        ``sigma_end``, or flat at ``sigma_end`` when ``warm`` (a warm start is already close, see
        :meth:`plug_and_play`). ``b``: the stacked scaled data (2R, F), needed with
        ``sigma_end='auto'`` (F = 1 without it)."""
        cfg = self.config
        if is_auto(cfg.sigma_end):
            end = cfg.sigma_factor * self.relative_error(b)
        else:
            end = np.full(1 if b is None else b.shape[1], float(cfg.sigma_end))
        start = end if warm else np.maximum(cfg.sigma_start, end)
        return np.geomspace(start, end, cfg.iterations)

    def relative_error(self, b: np.ndarray) -> np.ndarray:
        """Each frame's expected data misfit over its data norm (F,), for stacked scaled data b
        (2R, F): ``sqrt(m) / ||b||`` with m the noise energy of the noise estimate, never below the
        misfit GCV sees (:func:`mpirecon.autoreg.residual_targets`)."""
        norms = np.linalg.norm(b, axis=0)
        return np.sqrt(residual_targets(self.host, b, self.noise)) / np.where(norms > 0, norms, 1.0)

    def _solve(self, spectra: np.ndarray) -> np.ndarray:
        return self.plug_and_play(spectra, noise=self.noise)

    def plug_and_play(self, spectra: np.ndarray, start: np.ndarray | None = None, *, noise) -> np.ndarray:
        """PP-MPI's ADMM on spectra (F, R complex) -> images (F, P), from zero or, as a hook for
        other methods (DERnet's refinement), warm-started at images ``start`` (F, P; the output's
        units and voxel order, x fastest), with the denoiser told the final noise level from the
        first iteration (``sigma_start`` then has no effect). ``noise``: the frames'
        :class:`~mpirecon.noise.NoiseEstimate` or None, as :meth:`reconstruct` would find it."""
        self.noise = noise
        b = self.host.data(spectra)
        s = self.host.frame_scales(b)
        shape = self.image_shape
        schedule = self.noise_schedule(b, warm=start is not None)
        self.solve_info = {"sigma_end": schedule[-1].tolist()}
        levels = iter(torch.as_tensor(schedule, device=self.device, dtype=self.tdtype))  # one row per prox call

        def denoise_columns(v: torch.Tensor) -> torch.Tensor:
            img = v.T.reshape((-1,) + tuple(shape))
            return denoise(self.denoiser, img, next(levels)).reshape(img.shape[0], -1).T

        terms = [Denoiser(denoise_columns)] + ([NonNegative()] if self.config.nonneg else [])
        bt = torch.as_tensor(b / s, device=self.device, dtype=self.tdtype)
        x_init = None if start is None else torch.as_tensor(np.asarray(start).T / s, device=self.device,
                                                             dtype=self.tdtype)
        with torch.inference_mode():
            z = admm(self.op, bt, terms, self.config.rho, self.config.iterations, x_init=x_init)
        return (z.cpu().numpy().astype(np.float64) * s).T

    @classmethod
    def train(cls, system_matrix: SystemMatrix, output, settings: dict, *, resume=None,
              progress: bool = True) -> dict:
        """Train a denoiser into ``output`` (use it with ``weights=output``); ``settings`` override
        :class:`~.denoiser_training.DenoiserTrainConfig` fields; the image grid is the system
        matrix's (Nx, Ny) unless ``grid`` is set, and ``system_matrix`` may then be None."""
        cfg = cls.train_settings(settings)
        if cfg.grid is None:
            if system_matrix is None:
                raise ReconstructorError("ppmpi: denoiser training needs a system matrix (--sm) or grid=NX,NY")
            cfg = cfg.model_copy(update={"grid": tuple(int(n) for n in system_matrix.grid[:2])})
        return train_denoiser(output, cfg, resume=resume, progress=progress).summary()
