"""PP-MPI (Askin et al. 2022): plug-and-play ADMM with a learned image denoiser as the prior.

The iteration is the core's :func:`mpirecon.optim.pnp.pnp_admm` (shared with DERnet's plug-and-play
refinement), run from zero, batched over frames, with the x-update factorisation cached in the
shared operator (torch backend, on the CPU or a GPU). On 3D grids the 2D denoiser works slice
by slice along the three axes (averaged). The denoiser is the core's
:mod:`mpirecon.models.denoiser` (default: the shipped noise-aware RDN). ``mpirecon train --method
ppmpi`` trains a denoiser on the phantom prior for the system matrix's grid (:meth:`PPMPIReconstructor.train`).
"""
from __future__ import annotations

from pathlib import Path

import torch
from pydantic import Field

from mdf_io import SystemMatrix
from mpirecon.models.denoiser import load_denoiser
from mpirecon.physics.operator import operator_for
from mpirecon.optim.pnp import PnPSettings, pnp_admm, prepare_pnp
from mpirecon.reconstructor import Capabilities, Reconstructor, ReconstructorConfig, ReconstructorError

from .denoiser_training import DenoiserTrainConfig, train_denoiser


class PPMPIConfig(ReconstructorConfig, PnPSettings):
    """PP-MPI parameters: those of :class:`mpirecon.optim.pnp.PnPSettings`, device and working precision."""

    dtype: str = Field("float32", pattern="^(float32|float64)$")

    @property
    def pnp(self) -> PnPSettings:
        """The plug-and-play settings alone."""
        return PnPSettings(**{k: getattr(self, k) for k in PnPSettings.model_fields})


class PPMPIReconstructor(Reconstructor):
    """Plug-and-play ADMM; ``weights`` = a denoiser file, ``"shipped"`` (the default: the packaged
    noise-aware denoiser) or ``"published"`` (the PP-MPI authors' RDN)."""

    name = "ppmpi"
    description = ("PP-MPI plug-and-play ADMM with a learned RDN denoiser (default: the shipped noise-aware one; "
                   "weights=published: the PP-MPI authors')")
    Config = PPMPIConfig
    capabilities = Capabilities(needs_weights=False, supports_gpu=True, trainable=True)
    TrainSettings = DenoiserTrainConfig

    def _load_weights(self, weights) -> None:
        self.denoiser = load_denoiser(weights)  # WeightsError naming the file
        self.weights_file = Path(self.denoiser.source)
        self.denoiser.net.to(torch.device(self.config.device), getattr(torch, self.config.dtype))

    def _setup(self, system_matrix: SystemMatrix) -> None:
        self.host = operator_for(system_matrix, "float64")  # data and per-frame scales in float64
        self.op = operator_for(system_matrix, self.config.dtype, self.config.device, backend="torch")
        prepare_pnp(self.op, self.config.pnp)

    def _solve(self, spectra):
        images, info = pnp_admm(self.op, self.host, spectra, self.denoiser, self.config.pnp, noise=self.noise)
        self.solve_info.update(info)
        return images

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
