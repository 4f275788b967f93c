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
#: the noise-aware 3D (volume) denoiser shipped with the package (ppmpi ``weights=shipped3d``)
SHIPPED_3D_WEIGHTS = "ppmpi_noise_aware_rdn3d.pth"
#: names that ``weights=`` accepts for the packaged files
PACKAGED = {"shipped": SHIPPED_WEIGHTS, "published": PUBLISHED_WEIGHTS, "shipped3d": SHIPPED_3D_WEIGHTS}
ARCHITECTURE_KEYS = ("features", "blocks", "layers", "growth")


def _conv(dims: int):
    """The convolution of a ``dims``-dimensional denoiser (2: images, 3: volumes)."""
    return nn.Conv2d if dims == 2 else nn.Conv3d


class _DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int, dims: int = 2, padding: str = "zeros"):
        super().__init__()
        self.conv = _conv(dims)(cin, growth, 3, padding=1, padding_mode=padding)

    def forward(self, x):
        return torch.cat([x, torch.relu(self.conv(x))], dim=1)


class _ResidualDenseBlock(nn.Module):
    def __init__(self, features: int, layers: int, growth: int, dims: int = 2, padding: str = "zeros"):
        super().__init__()
        self.local_res_block = nn.Sequential(*[_DenseLayer(features + i * growth, growth, dims, padding)
                                               for i in range(layers)])
        self.last_conv = _conv(dims)(features + layers * growth, features, 1)

    def forward(self, x):
        return x + self.last_conv(self.local_res_block(x))


class RDNDenoiser(nn.Module):
    """(B, 1, H, W) noisy image (max ~1) -> (B, 1, H, W) denoised, >= 0. With ``noise_input`` the
    input is (B, 2, H, W): the image and a map of its noise std (same scale). ``dims=3``: the same
        network with 3x3x3 convolutions on volumes (B, 1 or 2, D, H, W). ``padding``: how the 3-wide
    convolutions see beyond the border (None: "zeros" in 2D, as published; "replicate" in 3D)."""

    def __init__(self, features: int = 12, blocks: int = 4, layers: int = 4, growth: int = 12,
                 noise_input: bool = False, dims: int = 2, padding: str | None = None):
        super().__init__()
        padding = padding or ("zeros" if dims == 2 else "replicate")
        self.arch = {"features": features, "blocks": blocks, "layers": layers, "growth": growth,
                     "noise_input": bool(noise_input), "dims": int(dims), "padding": padding}
        conv = _conv(dims)
        pad = {"padding": 1, "padding_mode": padding}
        self.conv0 = conv(2 if noise_input else 1, features, 3, **pad)
        self.conv1 = conv(features, features, 3, **pad)
        self.rdbs = nn.ModuleList([_ResidualDenseBlock(features, layers, growth, dims, padding) for _ in range(blocks)])
        self.conv2 = conv(blocks * features, features, 1)
        self.conv3 = conv(features, features, 3, **pad)
        self.conv4 = conv(features, 1, 3, **pad)

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

    @property
    def dims(self) -> int:
        """2: an image denoiser (3D volumes slice by slice, :func:`denoise_volume`); 3: a volume denoiser."""
        return int(getattr(self.net, "arch", {}).get("dims", 2))  # a custom module without arch: 2D


def packaged_weights_path(name: str = "published") -> Path:
    """Path of a denoiser packaged with mpirecon: ``"shipped"`` (noise-aware, ppmpi's default),
    ``"shipped3d"`` (its 3D counterpart, trained on the 3D phantom prior) or ``"published"`` (the PP-MPI
    authors' RDN)."""
    return Path(str(resources.files("mpirecon.models").joinpath("pretrained", PACKAGED[name])))


def load_denoiser(path=None) -> LoadedDenoiser:
    """Load a denoiser: ``None`` or ``"shipped"`` = the packaged noise-aware denoiser,
    ``"shipped3d"`` = the packaged noise-aware 3D denoiser, ``"published"`` = the packaged
    published PP-MPI weights; a file written by
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
            arch["dims"] = int(meta["architecture"].get("dims", 2))
            arch["padding"] = meta["architecture"].get("padding")
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


def inflate(den: LoadedDenoiser) -> LoadedDenoiser:
    """A 3D denoiser made from a 2D one (kernel inflation, as I3D): every 3x3 kernel becomes a 3x3x3
    kernel with a third of it on each of the three z-planes, same padding. On a volume constant
    along z it gives the 2D denoiser's image on every slice: a starting point for 3D training
    (``init`` of the denoiser recipe)."""
    if den.dims != 2:
        raise ValueError(f"inflate: expected a 2D denoiser, found a {den.dims}D one ({den.source})")
    net = RDNDenoiser(**dict(den.net.arch, dims=3))
    state = {k: (v.unsqueeze(2).expand(-1, -1, v.shape[-1], -1, -1) / v.shape[-1] if v.ndim == 4 else v)
             for k, v in den.net.state_dict().items()}
    net.load_state_dict(state)
    meta = dict(den.metadata, architecture=net.arch, inflated_from=den.source)
    return LoadedDenoiser(net=net.eval(), noise_std=den.noise_std, source=den.source, metadata=meta,
                          noise_aware=den.noise_aware)


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
    """Denoise (B, H, W) images (a 3D denoiser: (B, D, H, W) volumes) of any scale: each is
    divided by its maximum (the scale the network was trained on), denoised, and multiplied back.
    Non-positive images pass as zeros.

    ``sigma``: noise std relative to each image's maximum (a float or (B,)), the input map of a
    noise-aware denoiser (None: its lowest training level); a plain denoiser ignores it."""
    if images.ndim != den.dims + 1:
        raise ValueError(f"a {den.dims}D denoiser takes (B, {'D, ' if den.dims == 3 else ''}H, W) arrays, "
                         f"found shape {tuple(images.shape)}")
    per_image = (-1,) + (1,) * images.ndim  # (B, 1, ...) against the network's (B, C, ...)
    scale = images.flatten(1).amax(1).clamp_min(0)
    safe = torch.where(scale > 0, scale, torch.ones_like(scale)).reshape(per_image)
    x = images[:, None] / safe
    if den.noise_aware:
        level = den.noise_std if sigma is None else sigma
        level = torch.as_tensor(level, dtype=x.dtype, device=x.device).reshape(per_image)
        x = torch.cat([x, level.expand_as(x)], dim=1)
    out = (den.net(x) * safe)[:, 0]
    return torch.where((scale > 0).reshape(per_image[:-1]), out, torch.zeros_like(out))


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
