"""Residual dense network (RDN) image denoiser of PP-MPI (Askin et al. 2022): model and loading.

Architecture (matching the published state dict key for key): conv0 (1->F, 3x3) and conv1
(F->F, 3x3); B residual dense blocks, each with L 3x3 conv+ReLU layers of growth G whose
outputs are concatenated, a 1x1 fusion back to F channels and a local residual; a 1x1 fusion of
the B block outputs (conv2), conv3 (3x3) plus the conv0 features (global residual), conv4
(F->1) plus the input image, and a final ReLU. Fully convolutional: any grid size.

A denoiser expects images scaled so that the maximum is 1 (as in training). A plain one (the
published PP-MPI RDN) was trained for one noise level, stored with it. A *noise-aware* one
(``noise_input=True``, as DRUNet) takes the noise std as a second input channel, a constant map,
and was trained on a range of levels (stored as ``noise_range``): the caller says how strongly to
denoise. Training: :mod:`baselines.learned.denoiser_training` (`mpirecon train --method ppmpi`); the shipped noise-aware denoiser:
:data:`SHIPPED_WEIGHTS`.
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
#: the noise-aware denoiser shipped with the package, ppmpi's default (command in pretrained/README.md)
SHIPPED_WEIGHTS = "ppmpi_noise_aware_rdn.pth"
#: names that ``weights=`` accepts for the packaged files
PACKAGED = {"shipped": SHIPPED_WEIGHTS, "published": PUBLISHED_WEIGHTS}
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
    """(B, 1, H, W) noisy image (max ~1) -> (B, 1, H, W) denoised, >= 0. With ``noise_input`` the
    input is (B, 2, H, W): the image and a map of its noise std (same scale)."""

    def __init__(self, features: int = 12, blocks: int = 4, layers: int = 4, growth: int = 12,
                 noise_input: bool = False):
        super().__init__()
        self.arch = {"features": features, "blocks": blocks, "layers": layers, "growth": growth,
                     "noise_input": bool(noise_input)}
        self.conv0 = nn.Conv2d(2 if noise_input else 1, features, 3, padding=1)
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
        return torch.relu(self.conv4(h) + x[:, :1])


@dataclass
class LoadedDenoiser:
    """A denoiser with what is needed to use it: the noise std it was trained for (a plain one)
    or the lowest of its range (a noise-aware one), source, metadata."""

    net: RDNDenoiser
    noise_std: float
    source: str
    metadata: dict
    #: the network takes the noise std as a second input channel
    noise_aware: bool = False


def packaged_weights_path(name: str = "published") -> Path:
    """Path of a denoiser packaged with mpirecon: ``"shipped"`` (noise-aware, ppmpi's default) or
    ``"published"`` (the PP-MPI authors' RDN)."""
    return Path(str(resources.files("mpirecon.models").joinpath("pretrained", PACKAGED[name])))


def load_denoiser(path=None) -> LoadedDenoiser:
    """Load a denoiser: ``None`` or ``"shipped"`` = the packaged noise-aware denoiser,
    ``"published"`` = the packaged published PP-MPI weights; a file written by
    :func:`baselines.learned.denoiser_training.train_denoiser`; or a plain RDN state dict (noise std assumed 0.1
    as published). An existing file of a packaged name is read as that file. Loading is safe
    (``weights_only``) and strict (every key and shape must match); anything that does not fit
    raises :class:`WeightsError` naming the file."""
    name = "shipped" if path is None else str(path)
    p = packaged_weights_path(name) if name in PACKAGED and not Path(name).is_file() else Path(path)
    raw = read_safely(p)
    try:
        if isinstance(raw, dict) and raw.get("format") == FORMAT:
            state, meta = unpack(raw, p, KIND)
            arch = {k: int(meta["architecture"][k]) for k in ARCHITECTURE_KEYS}
            arch["noise_input"] = bool(meta["architecture"].get("noise_input", False))
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
    return LoadedDenoiser(net=net.eval(), noise_std=noise, source=str(p), metadata=meta,
                          noise_aware=arch["noise_input"])


def architecture_of_state(state: dict) -> dict:
    """RDN architecture (features, blocks, layers, growth) read off a plain state dict's keys and shapes."""
    blocks = len({k.split(".")[1] for k in state if k.startswith("rdbs.")})
    layers = len({k.split(".")[3] for k in state if k.startswith("rdbs.0.local_res_block.")})
    features = int(state["conv0.weight"].shape[0])
    growth = int(state["rdbs.0.local_res_block.0.conv.weight"].shape[0]) if blocks else 12
    return {"features": features, "blocks": blocks, "layers": layers, "growth": growth,
            "noise_input": int(state["conv0.weight"].shape[1]) == 2}


@torch.no_grad()
def denoise(den: LoadedDenoiser, images: torch.Tensor, sigma=None) -> torch.Tensor:
    """Denoise (B, H, W) images of any scale: each is divided by its maximum (the scale the
    network was trained on), denoised, and multiplied back. Non-positive images pass as zeros.

    ``sigma``: noise std relative to each image's maximum (a float or (B,)), the input map of a
    noise-aware denoiser (None: its lowest training level); a plain denoiser ignores it."""
    scale = images.flatten(1).amax(1).clamp_min(0)
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))[:, None, None, None]
    x = images[:, None] / safe
    if den.noise_aware:
        level = den.noise_std if sigma is None else sigma
        level = torch.as_tensor(level, dtype=x.dtype, device=x.device).reshape(-1, 1, 1, 1)
        x = torch.cat([x, level.expand_as(x)], dim=1)
    out = (den.net(x) * safe)[:, 0]
    return torch.where((scale > 0)[:, None, None], out, torch.zeros_like(out))


#: largest noise std (relative to a slice's maximum) told to the denoiser by :func:`denoise_volume`
SLICE_SIGMA_MAX = 1.0


def denoise_volume(den: LoadedDenoiser, volumes: torch.Tensor, sigma=None) -> torch.Tensor:
    """Denoise (B, Nz, Ny, Nx) volumes with a 2D denoiser, slice by slice along each of the three
    axes, and average the three results (no 3D training needed). ``sigma``: noise std relative to
    each volume's maximum (a float or (B,)); a slice is told the same absolute level relative to its
    own maximum (``sigma x volume max / slice max``, at most :data:`SLICE_SIGMA_MAX`), so a faint
    slice is smoothed more, as its noise is larger against its signal."""
    b = volumes.shape[0]
    vmax = volumes.flatten(1).amax(1).clamp_min(0)
    level = den.noise_std if sigma is None else sigma
    level = torch.as_tensor(level, dtype=volumes.dtype, device=volumes.device).reshape(-1).expand(b)
    out = torch.zeros_like(volumes)
    for axis in (1, 2, 3):
        moved = volumes.movedim(axis, 1)                       # (B, N_axis, a, c)
        slices = moved.reshape(-1, *moved.shape[2:])
        smax = slices.flatten(1).amax(1).clamp_min(0)
        rel = (level * vmax).repeat_interleave(moved.shape[1]) / torch.where(smax > 0, smax, torch.ones_like(smax))
        done = denoise(den, slices, rel.clamp(max=SLICE_SIGMA_MAX))
        out += done.reshape(moved.shape).movedim(1, axis)
    return out / 3
