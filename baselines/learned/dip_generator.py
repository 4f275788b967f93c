"""Untrained U-Net generators for the deep image prior, one per frame, run as one batch.

Every frame has its own network with its own weights. All frames' weights live in ONE flat
tensor ``theta`` (F, N) (row f = the parameters of frame f's network); a convolution of all
frames is a single grouped convolution (``groups=F``), so F generators cost about as much as
one larger network, and Adam on ``theta`` is the same as one Adam per frame (Adam acts on each
parameter alone and each frame's loss only reaches its own row). Stopping a frame removes its
row (:meth:`MaskedAdam.keep`), so the remaining frames run faster and the stopped one stays as
it was.

Architecture (``depth`` levels, ``channels`` feature maps; 3x3 convolutions, or 3x3x3 on a
volume, instance normalisation, LeakyReLU(0.2))::

    z (C, *image_shape) -> block -> [stride-2 block -> block] x depth -> [upsample, concat skip, block] x depth
      -> 1x1 conv -> softplus (non-negative image)

The initial weights (PyTorch's default uniform ±1/sqrt(fan_in)) and the fixed input z (uniform
in [0, 0.1)) are drawn once from ``seed`` and copied to every frame, so a frame's result does not
depend on which other frames share its batch.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

#: z is uniform in [0, Z_SCALE), as in Ulyanov et al.'s DIP
Z_SCALE = 0.1
#: the output head's bias starts here: softplus(-3) ~ 0.05, a near-empty first image
HEAD_BIAS = -3.0


class GeneratorBatch:
    """The layout of one generator and the batched forward pass.

    Args:
        image_shape: (Ny, Nx) of an image or (Nz, Ny, Nx) of a volume (then 3x3x3 convolutions).
        channels: feature maps per convolution; depth: number of down/up-sampling levels.
    Attributes:
        layers: name -> (c_out, c_in, k) of every convolution; size: N parameters per frame.
    """

    def __init__(self, image_shape, channels: int = 16, depth: int = 2):
        if len(image_shape) not in (2, 3):
            raise ValueError(f"the DIP generator takes 2D or 3D images; got image shape {tuple(image_shape)}")
        self.image_shape = tuple(int(n) for n in image_shape)
        self.dims = len(self.image_shape)
        self.channels, self.depth = int(channels), int(depth)
        c = self.channels
        self.layers = {"in": (c, c, 3)}
        for i in range(self.depth):
            self.layers[f"down{i}"] = (c, c, 3)
            self.layers[f"enc{i}"] = (c, c, 3)
            self.layers[f"dec{i}"] = (c, 2 * c, 3)
        self.layers["out"] = (1, c, 1)
        self.offsets, n = {}, 0
        for name, (co, ci, k) in self.layers.items():
            self.offsets[name] = n
            n += co * ci * k ** self.dims + co
        self.size = n

    def initial(self, frames: int, seed: int, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """Seeded initial weights ``theta`` (frames, N) and input ``z`` (frames, C, *image_shape),
        identical for every frame (drawn on the CPU in float64, then moved)."""
        gen = torch.Generator().manual_seed(int(seed))
        theta = torch.empty(self.size, dtype=torch.float64)
        for name, (co, ci, k) in self.layers.items():
            bound = 1.0 / math.sqrt(ci * k ** self.dims)
            off = self.offsets[name]
            theta[off:off + co * ci * k ** self.dims + co].uniform_(-bound, bound, generator=gen)
        theta[self.offsets["out"] + self.channels] = HEAD_BIAS
        z = torch.rand((self.channels,) + self.image_shape, generator=gen, dtype=torch.float64) * Z_SCALE
        theta = theta.expand(frames, -1).to(device=device, dtype=dtype).contiguous()
        z = z.expand(frames, *(-1,) * (self.dims + 1)).to(device=device, dtype=dtype).contiguous()
        return theta, z

    def _conv(self, theta: torch.Tensor, name: str, x: torch.Tensor, stride: int = 1) -> torch.Tensor:
        """Frame f's convolution ``name`` on x[f] for every f: x (F, c_in, *spatial) -> (F, c_out, *spatial')."""
        co, ci, k = self.layers[name]
        frames, d = x.shape[0], self.dims
        off = self.offsets[name]
        n = co * ci * k ** d
        w = theta[:, off:off + n].reshape(frames * co, ci, *(k,) * d)
        b = theta[:, off + n:off + n + co].reshape(-1)
        conv = F.conv2d if d == 2 else F.conv3d
        y = conv(x.reshape(1, frames * ci, *x.shape[-d:]), w, b, stride=stride, padding=k // 2, groups=frames)
        return y.reshape(frames, co, *y.shape[-d:])

    def _block(self, theta, name, x, stride=1):
        return F.leaky_relu(F.instance_norm(self._conv(theta, name, x, stride)), 0.2)

    def forward(self, theta: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Images of all frames: theta (F, N), z (F, C, *image_shape) -> (F, P) non-negative, x fastest."""
        h = self._block(theta, "in", z)
        skips = []
        for i in range(self.depth):
            skips.append(h)
            h = self._block(theta, f"enc{i}", self._block(theta, f"down{i}", h, stride=2))
        for i in reversed(range(self.depth)):
            h = F.interpolate(h, size=skips[i].shape[-self.dims:], mode="bilinear" if self.dims == 2 else "trilinear",
                              align_corners=False)
            h = self._block(theta, f"dec{i}", torch.cat([h, skips[i]], dim=1))
        return F.softplus(self._conv(theta, "out", h)).reshape(z.shape[0], -1)


class MaskedAdam:
    """Adam (Kingma & Ba; torch.optim.Adam's update) on the rows of a flat parameter tensor,
    with :meth:`keep` to drop rows (stopped frames) from the parameters and the moments."""

    def __init__(self, theta: torch.Tensor, lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        self.theta = theta.detach().clone().requires_grad_(True)
        self.m = torch.zeros_like(self.theta)
        self.v = torch.zeros_like(self.theta)
        self.lr, self.betas, self.eps, self.t = float(lr), betas, float(eps), 0

    def keep(self, rows: torch.Tensor) -> None:
        """Keep only ``rows`` (a bool mask or indices over the current rows) of the parameters,
        their gradient and the moments."""
        with torch.no_grad():
            grad = self.theta.grad
            self.theta = self.theta.detach()[rows].requires_grad_(True)
            self.theta.grad = None if grad is None else grad[rows]
            self.m, self.v = self.m[rows], self.v[rows]

    def step(self) -> None:
        """One Adam step from ``theta.grad``; clears the gradient."""
        b1, b2 = self.betas
        self.t += 1
        with torch.no_grad():
            g = self.theta.grad
            self.m.mul_(b1).add_(g, alpha=1 - b1)
            self.v.mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = (self.v / (1 - b2 ** self.t)).sqrt_().add_(self.eps)
            self.theta.addcdiv_(self.m, denom, value=-self.lr / (1 - b1 ** self.t))
        self.theta.grad = None
