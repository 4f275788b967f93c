"""PP-MPI (Askin et al. 2022): plug-and-play ADMM with a learned image denoiser as the prior.

The iteration is the core's :func:`mpirecon.optim.pnp.pnp_admm` (shared with DERnet's plug-and-play
refinement), run from zero, batched over frames, with the x-update factorisation cached in the
shared operator (torch backend, on the CPU or a GPU). On 3D grids a 2D denoiser (the default)
works slice by slice along the three axes (averaged); a 3D (volume) denoiser, e.g. the shipped
``weights=shipped3d`` trained on the 3D phantom prior, denoises the volume at once (measured below
the slice-wise route at 19^3: docs/learned-3d.md). The denoiser is the core's
:mod:`mpirecon.models.denoiser` (default: the shipped noise-aware RDN). ``mpirecon train --method
ppmpi`` trains a denoiser on the phantom prior for the system matrix's grid (:meth:`PPMPIReconstructor.train`).
"""
from __future__ import annotations

from pathlib import Path

import torch
from pydantic import Field

from mdf_io import SystemMatrix
from mpirecon.memory import (MemoryEstimate, common_parts, gram_block_bytes, gram_bytes, real_size,
                             stacked_operator_bytes)
from mpirecon.models.denoiser import load_denoiser
from mpirecon.optim.classical import auto_compresses, compressed_memory, solver_strategy
from mpirecon.optim.pnp import PnPSettings, pnp_admm, prepare_pnp
from mpirecon.physics.compression import DEFAULT_RANK, compressed_operator
from mpirecon.physics.operator import operator_for
from mpirecon.reconstructor import Capabilities, Reconstructor, ReconstructorConfig, ReconstructorError

from .denoiser_training import DenoiserTrainConfig, train_denoiser


class PPMPIConfig(ReconstructorConfig, PnPSettings):
    """PP-MPI parameters: those of :class:`mpirecon.optim.pnp.PnPSettings`, device and working precision."""

    dtype: str = Field("float32", pattern="^(float32|float64)$")
    rank: int = Field(DEFAULT_RANK, ge=1, description="rows of the compressed operator a large calibration is "
                      "reconstructed with on the CPU (its dominant row space, as the classical solvers)")

    @property
    def pnp(self) -> PnPSettings:
        """The plug-and-play settings alone."""
        return PnPSettings(**{k: getattr(self, k) for k in PnPSettings.model_fields})


class PPMPIReconstructor(Reconstructor):
    """Plug-and-play ADMM; ``weights`` = a denoiser file, ``"shipped"`` (the default: the packaged
    noise-aware denoiser), ``"shipped3d"`` (the packaged 3D denoiser) or ``"published"`` (the PP-MPI
    authors' RDN). A 2D denoiser on a 3D grid works slice by slice along the three axes (averaged)."""

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

    @staticmethod
    def strategy(config, rows: int, voxels: int) -> str:
        """"compressed" on the CPU when the stacked operator would be too large to hold (the
        iteration then runs on the calibration's dominant row space, numpy), else "torch"."""
        return "compressed" if auto_compresses(rows, voxels, config.dtype, config.device) else "torch"

    @classmethod
    def memory_estimate(cls, config, rows: int, voxels: int, frames: int) -> MemoryEstimate:
        """The matrix and frames; the torch operator (2R x P), or for a large calibration on the CPU the
        compressed operator and its set-up; the Woodbury Grams beyond the dense size; the iterates and
        the denoiser's activations (about 100 values per voxel and frame)."""
        prec = config.dtype
        strategy = cls.strategy(config, rows, voxels)
        parts = common_parts(rows, voxels, frames, prec)
        if strategy == "compressed":
            parts.update(compressed_memory(rows, voxels, config.rank, prec))
        else:
            parts["operator"] = stacked_operator_bytes(rows, voxels, prec)
            if solver_strategy("auto", rows, voxels, prec) != "dense":
                parts["gram"] = 3 * gram_bytes(rows) + 2 * gram_block_bytes(voxels)
        parts["iterates"] = 8 * voxels * frames * real_size(prec)
        parts["denoiser"] = 100 * voxels * frames * 4
        return MemoryEstimate(parts, prec, strategy)

    def _setup(self, system_matrix: SystemMatrix) -> None:
        cfg = self.config
        if self.denoiser.dims > len(system_matrix.image_shape):
            raise ReconstructorError(f"ppmpi: {self.weights_file} is a 3D denoiser; the calibration's grid "
                                     f"{'x'.join(map(str, system_matrix.grid[:2]))} is 2D (use a 2D denoiser)")
        if self.strategy(cfg, system_matrix.num_rows, system_matrix.num_voxels) == "compressed":
            self.op = self.host = compressed_operator(operator_for(system_matrix, cfg.dtype), cfg.rank)
        else:
            self.host = operator_for(system_matrix, "float64")  # data and per-frame scales in float64
            self.op = operator_for(system_matrix, cfg.dtype, cfg.device, backend="torch")
        prepare_pnp(self.op, cfg.pnp, self.host)

    def _solve(self, spectra):
        images, info = pnp_admm(self.op, self.host, spectra, self.denoiser, self.config.pnp, noise=self.noise)
        self.solve_info.update(info)
        return images

    @classmethod
    def train(cls, system_matrix: SystemMatrix, output, settings: dict, *, resume=None,
              progress: bool = True) -> dict:
        """Train a denoiser into ``output`` (use it with ``weights=output``); ``settings`` override
        :class:`~.denoiser_training.DenoiserTrainConfig` fields; the image grid is the system
        matrix's (Nx, Ny), or (Nx, Ny, Nz) on a 3D calibration (a 3D denoiser on the 3D prior), unless
        ``grid`` is set, and ``system_matrix`` may then be None."""
        cfg = cls.train_settings(settings)
        if cfg.grid is None:
            if system_matrix is None:
                raise ReconstructorError("ppmpi: denoiser training needs a system matrix (--sm) or grid=NX,NY")
            nx, ny, nz = (int(n) for n in system_matrix.grid)
            cfg = cfg.model_copy(update={"grid": (nx, ny) if nz == 1 else (nx, ny, nz)})
        return train_denoiser(output, cfg, resume=resume, progress=progress).summary()
