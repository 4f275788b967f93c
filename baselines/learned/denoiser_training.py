"""Training a PP-MPI RDN denoiser on the simulation's phantom prior (``mpirecon train --method ppmpi``).

Images of the prior scaled to max 1 plus Gaussian noise of std ``noise_std`` (the published
denoiser's convention), MSE loss, Adam at a constant learning rate; the model with the best
validation loss is saved in the safe weights format with its noise level, architecture, recipe
and versions. Data: :class:`mpirecon.learning.data.DenoisingPairs`; loop (checkpoint, resume,
wall-time budget, DDP): :mod:`mpirecon.learning.loop`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mpirecon.learning.data import DenoisingPairs
from mpirecon.learning.loop import TrainResult, fit, training_session
from mpirecon.errors import ReconstructorError
from mpirecon.io.provenance import versions
from mpirecon.simulation.phantoms import TRAINING_FAMILIES

from mpirecon.models.denoiser import KIND, PUBLISHED_NOISE_STD, RDNDenoiser


class DenoiserTrainConfig(BaseModel):
    """Denoiser training recipe (defaults of ``mpirecon train --method ppmpi``)."""

    model_config = ConfigDict(extra="forbid")

    grid: Optional[Union[tuple[int, int], tuple[int, int, int]]] = Field(
        None, description="training image size (Nx, Ny), or (Nx, Ny, Nz) for a 3D (volume) denoiser on the 3D "
        "prior; default: the system matrix's grid (the denoiser is fully convolutional)")
    samples: int = Field(20000, ge=1, description="training images")
    val_samples: Optional[int] = Field(None, ge=1, description="validation images (default samples // 10, >= 16)")
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(1e-3, gt=0, description="Adam learning rate (constant)")
    noise_std: float = Field(PUBLISHED_NOISE_STD, gt=0, description="Gaussian noise std on images scaled to max 1 "
                             "(a noise-aware denoiser: ignored, see noise_range)")
    noise_range: Optional[tuple[float, float]] = Field(
        None, description="(lo, hi): train a noise-aware denoiser (the std as an input map, as DRUNet) on "
                          "stds log-uniform in [lo, hi]; None: a plain denoiser for noise_std")
    families: tuple[str, ...] = Field(TRAINING_FAMILIES, description="phantom families of the prior (on a 3D "
                                      "grid the default stands for the 3D training families)")
    seed: int = 0
    device: str = "cpu"
    max_minutes: Optional[float] = Field(None, description="stop before an epoch would end past this")
    features: int = Field(12, ge=1)
    blocks: int = Field(4, ge=1)
    layers: int = Field(4, ge=1)
    growth: int = Field(12, ge=1)
    num_threads: Optional[int] = None
    keep_checkpoint: bool = Field(False, description="keep OUTPUT.ckpt after a successful run")

    @field_validator("noise_range")
    @classmethod
    def _ordered_positive(cls, value):
        if value is not None and not 0 < value[0] <= value[1]:
            raise ValueError(f"expected 0 < lo <= hi, found {tuple(value)}")
        return value


def train_denoiser(out_path, config: DenoiserTrainConfig, *, resume=None, progress: bool = True) -> TrainResult:
    """Train an RDN denoiser for (Nx, Ny) = ``config.grid`` images (a 3D one for (Nx, Ny, Nz)
    volumes) into ``out_path`` (the best
    validation loss is kept; a checkpoint ``out_path + '.ckpt'`` after every epoch).
    Returns the :class:`~mpirecon.learning.loop.TrainResult`."""
    cfg = config
    if cfg.grid is None:
        raise ReconstructorError("denoiser training needs grid=(Nx, Ny) or (Nx, Ny, Nz)")
    with training_session(cfg.device, cfg.seed, cfg.num_threads) as session:
        data = DenoisingPairs(tuple(cfg.grid[::-1]), cfg.samples, cfg.val_samples or max(cfg.samples // 10, 16),
                              cfg.noise_std, tuple(cfg.families), cfg.seed, noise_range=cfg.noise_range)
        net = RDNDenoiser(cfg.features, cfg.blocks, cfg.layers, cfg.growth, noise_input=cfg.noise_range is not None,
                          dims=len(cfg.grid))
        noise = cfg.noise_std if cfg.noise_range is None else min(cfg.noise_range)
        metadata = {"architecture": net.arch, "noise_std": noise, "noise_range": cfg.noise_range,
                    "training": dict(cfg.model_dump(mode="json"), world_size=session.world),
                    "versions": versions(), "source": "mpirecon train --method ppmpi"}
        return fit(net, data, lambda model, x: model(x), Path(out_path), kind=KIND, metadata=metadata, config=cfg,
                   session=session, resume=resume, progress=progress, lr_final=1.0, label="denoiser epoch")
