"""Training DERnet on simulated data b = A c + n (paper sec. 2.1, 2.3, 3.1(a), 3.3).

Recipe (the defaults of ``mpirecon train``): 48 000 training and 6 000 validation samples of
the default phantom mixture (digits + every procedural family), SNR uniform in 20-40 dB,
MSE loss (eq. (11)) on I_pd, Adam with lr 1e-3 and cosine decay over 36 epochs, batch 128,
the model with the best validation loss is the one saved. One departure from the paper: the
domain transform starts from Tikhonov inverses of the system matrix (``init="tikhonov"``, see
:mod:`.initialisation`) instead of PyTorch's random default (``init="pytorch"``); it reaches
the paper-init validation quality in about half the epochs. Noise is re-drawn every epoch (same
distribution, seeded); validation noise is fixed. Checkpoint every epoch, resumable, deterministic for a seed.
Runs under ``torchrun`` (DDP, gloo on CPU / nccl on GPU) with the same call.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import numpy as np
import torch
import torch.distributed as dist
from pydantic import BaseModel, ConfigDict, Field

from mdf_io import SystemMatrix
from mpirecon.progress import Progress
from mpirecon.simulation.datasets import DEFAULT_FAMILIES, SignalRecipe, generate_signals

from .initialisation import tikhonov_start
from .model import DERnet, DERnetHyperParams, predict
from .weights import environment, load_weights, save_weights

KIND = "dernet"
CHECKPOINT_KIND = "dernet-checkpoint"


class TrainConfig(BaseModel):
    """Training recipe (defaults = the documented recipe)."""

    model_config = ConfigDict(extra="forbid")

    samples: int = Field(48000, ge=1)
    val_samples: int = Field(6000, ge=1)
    epochs: int = Field(36, ge=1)
    batch_size: int = Field(128, ge=1)
    lr: float = Field(1e-3, gt=0)
    snr_min: float = 20.0
    snr_max: float = 40.0
    seed: int = 0
    device: str = "cpu"
    families: tuple[str, ...] = DEFAULT_FAMILIES
    max_minutes: Optional[float] = Field(55.0, description="stop before an epoch would end past this")
    init: Literal["pytorch", "tikhonov"] = Field(
        "tikhonov", description="tikhonov: FC starts as Tikhonov inverses (initialisation.py); pytorch: the paper's")
    resample_phantoms: bool = Field(False, description="draw a new phantom set every epoch (else: one fixed set)")
    c1: int = 8
    c2: int = 4
    c3: int = 16
    c4: int = 8
    c5: int = 128
    rho0: float = 0.05
    rho1: float = 0.05
    num_threads: Optional[int] = None


@dataclass
class TrainResult:
    """History (one dict per epoch), best validation loss/PSNR and the weights path."""

    path: Path
    history: list = field(default_factory=list)
    best_val_loss: float = math.inf
    best_val_psnr: float = -math.inf
    best_epoch: int = -1
    seconds: float = 0.0


def _dist_info() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _maybe_init_distributed(device: str) -> bool:
    """Initialise torch.distributed when launched by torchrun (WORLD_SIZE > 1)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
        return True
    return False


def system_scale(clean: np.ndarray, images: np.ndarray) -> float:
    """κ: median over samples of max|b| / max c — the unit-free scale of eq. (10)."""
    bmax = np.abs(clean).max(axis=1)
    cmax = images.reshape(images.shape[0], -1).max(axis=1)
    ok = cmax > 0
    return float(np.median(bmax[ok] / cmax[ok]))


def _noisy(clean: torch.Tensor, snr_db: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    power = clean.abs().pow(2).mean(dim=1, keepdim=True)
    sigma = torch.sqrt(power / 10 ** (snr_db[:, None] / 10))
    noise = torch.randn(clean.shape + (2,), generator=gen, dtype=torch.float32)
    return clean + (sigma / math.sqrt(2)) * torch.complex(noise[..., 0], noise[..., 1])


def _epoch_phantoms(matrix, shape, cfg: TrainConfig, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The noise-free training set of ``epoch`` (0: the set every epoch uses unless
    ``resample_phantoms``), seeded by config seed and epoch: clean signals (samples, M)
    complex64 and images (samples, Ny, Nx) float32. Noise is added per batch."""
    recipe = SignalRecipe(cfg.samples, (200.0, 200.0), tuple(cfg.families), cfg.seed + 10_000_019 * epoch)
    clean_np, images_np, _ = generate_signals(matrix, shape, recipe)
    return torch.from_numpy(clean_np), torch.from_numpy(images_np)


def train_dernet(system_matrix: SystemMatrix, out_path, config: TrainConfig | None = None, *,
                 resume: Optional[str] = None, progress: bool = True) -> TrainResult:
    """Train a DERnet for ``system_matrix`` (already frequency-selected) and save the best model.

    Args:
        system_matrix: the calibration whose selected rows the network takes as input.
        out_path: weights file to write (best validation loss); a checkpoint goes to
            ``out_path + '.ckpt'`` after every epoch.
        config: :class:`TrainConfig` (defaults = the documented recipe).
        resume: a checkpoint file to continue from (same config required).
    Returns:
        :class:`TrainResult`.
    """
    cfg = config or TrainConfig()
    started = _maybe_init_distributed(cfg.device)
    rank, world = _dist_info()
    t_start = time.perf_counter()
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    torch.manual_seed(cfg.seed)
    device = torch.device(cfg.device if not cfg.device.startswith("cuda") or world == 1
                          else f"cuda:{rank % max(torch.cuda.device_count(), 1)}")
    out_path = Path(out_path)
    ckpt_path = Path(str(out_path) + ".ckpt")
    shape = system_matrix.image_shape
    if len(shape) != 2:
        raise ValueError("DERnet reconstructs 2D grids (Nz = 1)")
    matrix = system_matrix.matrix
    train_recipe = SignalRecipe(cfg.samples, (cfg.snr_min, cfg.snr_max), tuple(cfg.families), cfg.seed)
    val_recipe = SignalRecipe(cfg.val_samples, (cfg.snr_min, cfg.snr_max), tuple(cfg.families), cfg.seed + 1_000_003)
    # clean training signals; noise is drawn per epoch from the recorded SNRs
    clean, images = _epoch_phantoms(matrix, shape, cfg, 0)
    snr_np = np.random.default_rng([cfg.seed, 7]).uniform(cfg.snr_min, cfg.snr_max, cfg.samples)
    val_sig_np, val_img_np, _ = generate_signals(matrix, shape, val_recipe)
    kappa = system_scale(clean.numpy(), images.numpy())
    snr = torch.from_numpy(snr_np.astype(np.float32))
    val_sig = torch.from_numpy(val_sig_np)
    val_img = torch.from_numpy(val_img_np)

    hp = DERnetHyperParams(num_rows=system_matrix.num_rows, grid=(shape[1], shape[0]), c1=cfg.c1, c2=cfg.c2,
                           c3=cfg.c3, c4=cfg.c4, c5=cfg.c5, rho0=cfg.rho0, rho1=cfg.rho1)
    net = DERnet(hp)
    if cfg.init == "tikhonov":
        tikhonov_start(net, matrix, kappa)
    net = net.to(device)
    model = net
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, fused=True)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs, eta_min=cfg.lr * 0.02)
    result = TrainResult(path=out_path)
    best_state = None
    start_epoch = 0
    if resume:
        state, meta = load_weights(resume, CHECKPOINT_KIND)
        if meta.get("config") != cfg.model_dump(mode="json"):
            raise ValueError(f"{resume}: checkpoint was made with a different training config")
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(meta["scheduler"])
        torch.set_rng_state(state["rng"])
        best_state = state.get("best")
        start_epoch = int(meta["epoch"]) + 1
        result.history = meta["history"]
        result.best_val_loss = meta["best_val_loss"]
        result.best_val_psnr = meta["best_val_psnr"]
        result.best_epoch = meta["best_epoch"]

    metadata_base = {
        "model": "dernet", "hyperparameters": hp.as_dict(), "kappa": kappa,
        "image_shape": list(shape), "grid": list(system_matrix.grid),
        "fov": system_matrix.fov.tolist(), "center": system_matrix.center.tolist(),
        "rows": {"period": system_matrix.rows.period.tolist(), "channel": system_matrix.rows.channel.tolist(),
                 "frequency_index": system_matrix.rows.frequency_index.tolist()},
        "bandwidth": system_matrix.bandwidth, "num_sampling_points": system_matrix.num_sampling_points,
        "selection": system_matrix.selection, "system_matrix_fingerprint": system_matrix.fingerprint(),
        "system_matrix_source": system_matrix.source,
        "training": {"config": cfg.model_dump(mode="json"), "train_recipe": train_recipe.as_dict(),
                     "val_recipe": val_recipe.as_dict(), "noise": "resampled every epoch",
                     "world_size": world},
        "versions": environment(),
    }
    for epoch in range(start_epoch, cfg.epochs):
        t_epoch = time.perf_counter()
        model.train()
        gen = torch.Generator().manual_seed(cfg.seed * 100003 + epoch)
        if cfg.resample_phantoms and epoch > 0:
            clean, images = _epoch_phantoms(matrix, shape, cfg, epoch)
        order = torch.randperm(cfg.samples, generator=gen)[rank::world]
        total, count = 0.0, 0
        with Progress(len(order), f"epoch {epoch + 1}/{cfg.epochs}", enabled=progress and rank == 0) as bar:
            for i in range(0, len(order), cfg.batch_size):
                idx = order[i:i + cfg.batch_size]
                b = _noisy(clean[idx], snr[idx], gen).to(device)
                target = images[idx].to(device)
                pred = predict(model, b, kappa)  # model may be DDP-wrapped: same forward
                loss = torch.mean((pred - target) ** 2)  # eq. (11)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
                count += len(idx)
                bar.update(len(idx), loss=total / count)
        sched.step()
        val_loss, val_psnr = _validate(net, val_sig, val_img, kappa, device, cfg.batch_size * 4)
        train_loss = total / max(count, 1)
        if world > 1:
            t = torch.tensor([train_loss], dtype=torch.float64)
            dist.all_reduce(t)
            train_loss = float(t) / world
        entry = {"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val_loss, "val_psnr": val_psnr,
                 "seconds": time.perf_counter() - t_epoch, "lr": opt.param_groups[0]["lr"]}
        result.history.append(entry)
        if val_loss < result.best_val_loss:
            result.best_val_loss, result.best_val_psnr, result.best_epoch = val_loss, val_psnr, epoch + 1
            best_state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
            if rank == 0:
                save_weights(out_path, KIND, best_state, dict(metadata_base, history=result.history,
                                                               best_epoch=epoch + 1, best_val_loss=val_loss,
                                                               best_val_psnr=val_psnr))
        if rank == 0:
            if progress:
                Progress(1, enabled=True).message(
                    f"epoch {epoch + 1}: train loss {train_loss:.4g}  val loss {val_loss:.4g}  "
                    f"val PSNR {val_psnr:.2f} dB  ({entry['seconds']:.0f} s)")
            save_weights(ckpt_path, CHECKPOINT_KIND,
                         {"model": net.state_dict(), "optimizer": opt.state_dict(), "rng": torch.get_rng_state(),
                          "best": best_state},
                         {"epoch": epoch, "config": cfg.model_dump(mode="json"), "history": result.history,
                          "scheduler": sched.state_dict(), "best_val_loss": result.best_val_loss,
                          "best_val_psnr": result.best_val_psnr, "best_epoch": result.best_epoch})
        elapsed = (time.perf_counter() - t_start) / 60
        per_epoch = elapsed / (epoch + 1 - start_epoch)
        if cfg.max_minutes is not None and elapsed + per_epoch > cfg.max_minutes and epoch + 1 < cfg.epochs:
            if rank == 0 and progress:
                Progress(1).message(f"stopping after epoch {epoch + 1}: the next epoch would pass "
                                    f"max_minutes={cfg.max_minutes}")
            break
    if rank == 0 and best_state is not None:  # final metadata carries the whole history
        save_weights(out_path, KIND, best_state, dict(metadata_base, history=result.history,
                                                       best_epoch=result.best_epoch,
                                                       best_val_loss=result.best_val_loss,
                                                       best_val_psnr=result.best_val_psnr))
    result.seconds = time.perf_counter() - t_start
    if started:
        dist.barrier()
        dist.destroy_process_group()
    return result


@torch.no_grad()
def _validate(net, signals, images, kappa, device, batch) -> tuple[float, float]:
    """Mean MSE and mean PSNR (eq. (13)) over the validation set."""
    net.eval()
    se, ps = 0.0, []
    for i in range(0, signals.shape[0], batch):
        pred = predict(net, signals[i:i + batch].to(device), kappa).cpu()
        gt = images[i:i + batch]
        mse = ((pred - gt) ** 2).flatten(1).mean(1)
        se += float(mse.sum())
        peak = gt.flatten(1).amax(1)
        ps.append(10 * torch.log10(peak ** 2 / mse.clamp_min(1e-30)))
    net.train()
    return se / signals.shape[0], float(torch.cat(ps).mean())
