"""Residual dense network (RDN) image denoiser of PP-MPI (Askin et al. 2022), and its training.

Architecture (matching the published state dict key for key): conv0 (1->F, 3x3) and conv1
(F->F, 3x3); B residual dense blocks, each with L 3x3 conv+ReLU layers of growth G whose
outputs are concatenated, a 1x1 fusion back to F channels and a local residual; a 1x1 fusion of
the B block outputs (conv2), conv3 (3x3) plus the conv0 features (global residual), conv4
(F->1) plus the input image, and a final ReLU. Fully convolutional: any grid size.

A denoiser expects images scaled so that the maximum is 1 (as in training); the noise level it
was trained for (std of the additive Gaussian noise on that scale) is stored with it.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mpirecon.progress import Progress
from mpirecon.simulation.phantoms import TRAINING_FAMILIES, mixture

from .weights import WeightsError, environment, load_weights, save_weights

KIND = "ppmpi-denoiser"
PUBLISHED_WEIGHTS = "ppmpi_rdn_denoiser_epoch150.pth"
PUBLISHED_NOISE_STD = 0.1


class _DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, growth, 3, padding=1)

    def forward(self, x):
        return torch.cat([x, torch.relu(self.conv(x))], dim=1)


class _ResidualDenseBlock(nn.Module):
    def __init__(self, features: int, layers: int, growth: int):
        super().__init__()
        self.local_res_block = nn.Sequential(*[_DenseLayer(features + i * growth, growth) for i in range(layers)])
        self.last_conv = nn.Conv2d(features + layers * growth, features, 1)

    def forward(self, x):
        return x + self.last_conv(self.local_res_block(x))


class RDNDenoiser(nn.Module):
    """(B, 1, H, W) noisy image (max ~1) -> (B, 1, H, W) denoised, >= 0."""

    def __init__(self, features: int = 12, blocks: int = 4, layers: int = 4, growth: int = 12):
        super().__init__()
        self.arch = {"features": features, "blocks": blocks, "layers": layers, "growth": growth}
        self.conv0 = nn.Conv2d(1, features, 3, padding=1)
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.rdbs = nn.ModuleList([_ResidualDenseBlock(features, layers, growth) for _ in range(blocks)])
        self.conv2 = nn.Conv2d(blocks * features, features, 1)
        self.conv3 = nn.Conv2d(features, features, 3, padding=1)
        self.conv4 = nn.Conv2d(features, 1, 3, padding=1)

    def forward(self, x):
        f0 = self.conv0(x)
        h = self.conv1(f0)
        outs = []
        for block in self.rdbs:
            h = block(h)
            outs.append(h)
        h = self.conv3(self.conv2(torch.cat(outs, dim=1))) + f0
        return torch.relu(self.conv4(h) + x)


@dataclass
class LoadedDenoiser:
    """A denoiser with what is needed to use it: noise std it was trained for, source, metadata."""

    net: RDNDenoiser
    noise_std: float
    source: str
    metadata: dict


def published_weights_path() -> Path:
    """Path of the packaged published PP-MPI weights."""
    return Path(str(resources.files("mpirecon_dernet").joinpath("pretrained", PUBLISHED_WEIGHTS)))


def load_denoiser(path=None) -> LoadedDenoiser:
    """Load a denoiser: ``None`` = the packaged published PP-MPI weights; a file written by
    :func:`train_denoiser`; or a plain RDN state dict (noise std assumed 0.1 as published).
    Loading is safe (``weights_only``) and strict (every key and shape must match)."""
    p = published_weights_path() if path is None else Path(path)
    if not p.is_file():
        raise WeightsError(f"{p}: denoiser weights not found")
    try:
        raw = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"{p}: cannot load denoiser weights safely: {exc.__class__.__name__}: "
                           f"{str(exc).splitlines()[0][:200]}") from None
    if isinstance(raw, dict) and raw.get("format") == "mpirecon-weights":
        state, meta = load_weights(p, KIND)
        arch = meta["architecture"]
        noise = float(meta["noise_std"])
    elif isinstance(raw, dict) and all(isinstance(v, torch.Tensor) for v in raw.values()):
        state = raw
        blocks = len({k.split(".")[1] for k in state if k.startswith("rdbs.")})
        layers = len({k.split(".")[3] for k in state if k.startswith("rdbs.0.local_res_block.")})
        features = int(state["conv0.weight"].shape[0])
        growth = int(state["rdbs.0.local_res_block.0.conv.weight"].shape[0]) if blocks else 12
        arch = {"features": features, "blocks": blocks, "layers": layers, "growth": growth}
        noise = PUBLISHED_NOISE_STD
        meta = {"source": "published PP-MPI weights (icon-lab/PP-MPI, MIT)", "architecture": arch,
                "noise_std": noise}
    else:
        raise WeightsError(f"{p}: neither an mpirecon denoiser file nor an RDN state dict")
    net = RDNDenoiser(**arch)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"{p}: state dict does not fit the RDN architecture {arch}: {exc}") from None
    return LoadedDenoiser(net=net.eval(), noise_std=noise, source=str(p), metadata=meta)


def train_denoiser(out_path, *, grid=(32, 32), samples: int = 20000, epochs: int = 10, batch_size: int = 64,
                   lr: float = 1e-3, noise_std: float = PUBLISHED_NOISE_STD, families=TRAINING_FAMILIES,
                   seed: int = 0, device: str = "cpu", progress: bool = True, features: int = 12, blocks: int = 4,
                   layers: int = 4, growth: int = 12) -> dict:
    """Train an RDN denoiser on our phantom prior (images max 1, Gaussian noise ``noise_std``),
    MSE loss, Adam; the model with the best validation loss is saved in the safe weights
    format with its noise level, architecture, recipe and versions. Returns the history."""
    torch.manual_seed(seed)
    shape = (grid[1], grid[0])
    rng = np.random.default_rng(seed)
    clean = torch.from_numpy(mixture(samples, shape, families, rng).astype(np.float32))[:, None]
    clean = clean / clean.flatten(1).amax(1)[:, None, None, None]
    val = torch.from_numpy(mixture(max(samples // 10, 16), shape, families, np.random.default_rng(seed + 1)).astype(np.float32))[:, None]
    val = val / val.flatten(1).amax(1)[:, None, None, None]
    gval = torch.Generator().manual_seed(seed + 2)
    val_noisy = val + noise_std * torch.randn(val.shape, generator=gval)
    net = RDNDenoiser(features, blocks, layers, growth).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    best, best_state, history = math.inf, None, []
    t0 = time.perf_counter()
    for epoch in range(epochs):
        net.train()
        gen = torch.Generator().manual_seed(seed * 7919 + epoch)
        order = torch.randperm(samples, generator=gen)
        total = 0.0
        with Progress(samples, f"denoiser epoch {epoch + 1}/{epochs}", enabled=progress) as bar:
            for i in range(0, samples, batch_size):
                x = clean[order[i:i + batch_size]]
                noisy = x + noise_std * torch.randn(x.shape, generator=gen)
                loss = torch.mean((net(noisy.to(device)) - x.to(device)) ** 2)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.item() * x.shape[0]
                bar.update(x.shape[0], loss=total / min(i + batch_size, samples))
        net.eval()
        with torch.no_grad():
            vloss = float(torch.mean((net(val_noisy.to(device)).cpu() - val) ** 2))
        history.append({"epoch": epoch + 1, "train_loss": total / samples, "val_loss": vloss,
                        "val_psnr": float(10 * np.log10(1.0 / max(vloss, 1e-30)))})
        if vloss < best:
            best = vloss
            best_state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
            save_weights(out_path, KIND, best_state, {
                "architecture": net.arch, "noise_std": noise_std, "history": history,
                "training": {"grid": list(grid), "samples": samples, "epochs": epochs, "batch_size": batch_size,
                             "lr": lr, "families": list(families), "seed": seed},
                "versions": environment(), "source": "mpirecon train-denoiser"})
    return {"history": history, "best_val_loss": best, "seconds": time.perf_counter() - t0, "path": str(out_path)}


@torch.no_grad()
def denoise(den: LoadedDenoiser, images: torch.Tensor) -> torch.Tensor:
    """Denoise (B, H, W) images of any scale: each is divided by its maximum (the scale the
    network was trained on), denoised, and multiplied back. Non-positive images pass as zeros."""
    scale = images.flatten(1).amax(1).clamp_min(0)
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))[:, None, None, None]
    out = (den.net(images[:, None] / safe) * safe)[:, 0]
    return torch.where((scale > 0)[:, None, None], out, torch.zeros_like(out))
