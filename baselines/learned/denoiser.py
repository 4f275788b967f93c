"""Residual dense network (RDN) image denoiser of PP-MPI (Askin et al. 2022): model and loading.

Architecture (matching the published state dict key for key): conv0 (1->F, 3x3) and conv1
(F->F, 3x3); B residual dense blocks, each with L 3x3 conv+ReLU layers of growth G whose
outputs are concatenated, a 1x1 fusion back to F channels and a local residual; a 1x1 fusion of
the B block outputs (conv2), conv3 (3x3) plus the conv0 features (global residual), conv4
(F->1) plus the input image, and a final ReLU. Fully convolutional: any grid size.

A denoiser expects images scaled so that the maximum is 1 (as in training); the noise level it
was trained for (std of the additive Gaussian noise on that scale) is stored with it. Training:
:mod:`.denoiser_training`.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from mpirecon.learning.weights import FORMAT, WeightsError, error_line, read_safely, unpack

KIND = "ppmpi-denoiser"
PUBLISHED_WEIGHTS = "ppmpi_rdn_denoiser_epoch150.pth"
PUBLISHED_NOISE_STD = 0.1
ARCHITECTURE_KEYS = ("features", "blocks", "layers", "growth")


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
    return Path(str(resources.files("baselines.learned").joinpath("pretrained", PUBLISHED_WEIGHTS)))


def load_denoiser(path=None) -> LoadedDenoiser:
    """Load a denoiser: ``None`` = the packaged published PP-MPI weights; a file written by
    :func:`~.denoiser_training.train_denoiser`; or a plain RDN state dict (noise std assumed 0.1
    as published). Loading is safe (``weights_only``) and strict (every key and shape must
    match); anything that does not fit raises :class:`WeightsError` naming the file."""
    p = published_weights_path() if path is None else Path(path)
    raw = read_safely(p)
    try:
        if isinstance(raw, dict) and raw.get("format") == FORMAT:
            state, meta = unpack(raw, p, KIND)
            arch = {k: int(meta["architecture"][k]) for k in ARCHITECTURE_KEYS}
            noise = float(meta["noise_std"])
        elif isinstance(raw, dict) and raw and all(isinstance(v, torch.Tensor) for v in raw.values()):
            state, arch = raw, architecture_of_state(raw)
            noise = PUBLISHED_NOISE_STD
            meta = {"source": "published PP-MPI weights (icon-lab/PP-MPI, MIT)", "architecture": arch,
                    "noise_std": noise}
        else:
            raise WeightsError(f"{p}: neither an mpirecon denoiser file nor an RDN state dict")
        net = RDNDenoiser(**arch)
        net.load_state_dict(state, strict=True)
    except WeightsError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as exc:
        raise WeightsError(f"{p}: not a usable RDN denoiser: {error_line(exc)}") from None
    return LoadedDenoiser(net=net.eval(), noise_std=noise, source=str(p), metadata=meta)


def architecture_of_state(state: dict) -> dict:
    """RDN architecture (features, blocks, layers, growth) read off a plain state dict's keys and shapes."""
    blocks = len({k.split(".")[1] for k in state if k.startswith("rdbs.")})
    layers = len({k.split(".")[3] for k in state if k.startswith("rdbs.0.local_res_block.")})
    features = int(state["conv0.weight"].shape[0])
    growth = int(state["rdbs.0.local_res_block.0.conv.weight"].shape[0]) if blocks else 12
    return {"features": features, "blocks": blocks, "layers": layers, "growth": growth}


@torch.no_grad()
def denoise(den: LoadedDenoiser, images: torch.Tensor) -> torch.Tensor:
    """Denoise (B, H, W) images of any scale: each is divided by its maximum (the scale the
    network was trained on), denoised, and multiplied back. Non-positive images pass as zeros."""
    scale = images.flatten(1).amax(1).clamp_min(0)
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))[:, None, None, None]
    out = (den.net(images[:, None] / safe) * safe)[:, 0]
    return torch.where((scale > 0)[:, None, None], out, torch.zeros_like(out))
