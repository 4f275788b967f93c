"""DERnet (Peng et al. 2024, Phys. Med. Biol. 69 015002), sections 2.2-2.3.

Feature-mapping (FM) subnetwork
    eq. (2)  U0 = Z1D,2(Z1D,1(D(U_in, ρ0)))        two 1D convolutions on (re, im) x M rows
    eq. (4)  I0 = W_FC D(U0, ρ1)                    fully connected domain transform C1*M -> C2*N
    eq. (5)  I1 = reshape(I0)                       C2 x N2 x N1 image features
    eq. (6)  I2 = Z2D,4(cat(I1, Z2D,1(I1), Z2D,2(I1), Z2D,3(I1)))   1x1 / 3x3 / 5x5 branches, fused to C3
    eq. (7)  I3 = Z2D,5(CBAM(I2))                   cascaded conv block to C4
Post-processing subnetwork
    eq. (8)  I_out = Z2D,6(I3 + Z_u(I3))            U-net with residual connection, then CBAM,
                                                    two convolutions and a final ReLU (non-negativity)
Learned data consistency (a departure from the paper, ``consistency_stages`` K > 0; K = 0 is the
paper's network): K unrolled stages after eq. (8), each ``x <- ReLU(x + Z_k(x, η Ãᵀ(b̃ - Ã x)))``
with Ã = [Re A; Im A] / κ the selected calibration in the network's units (a buffer of the
weights), b̃ the normalised input, η = 1/||Ã||₂² and Z_k a small CNN whose last layer starts at
zero (each stage starts as the identity). Trained end to end, the stages learn how far to trust
the data, which the physics augmentation of training makes imperfect on purpose. With
``consistency="solve"`` a stage sees the exact regularised data fit from x instead of a gradient
step: ``z_k = (ÃᵀÃ + ρ_k I)⁻¹(Ãᵀb̃ + ρ_k x)``, ``x <- ReLU(x + Z_k(x, z_k - x))``, with a learned
ρ_k relative to the mean eigenvalue of ÃᵀÃ (its eigen-decomposition is a buffer of the weights,
computed once by ``set_operator``; :func:`mpirecon.learning.unrolled.normal_solve`).
Normalisation, eq. (9)-(10): the network sees b / max|b|; its output is multiplied by
max|b| / κ, where κ (a fixed scale of the system matrix, typical max|b| / max c of the training
data) makes the targets unit-free. Z2D,1-3 and Z2D,5 (and every U-net block) use BN + ReLU.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mpirecon.learning.unrolled import normal_solve

#: ρ_k / mean eigenvalue of ÃᵀÃ at the start of training (the middle of the Tikhonov start's λ)
SOLVE_RHO_START = 0.1


@dataclass(frozen=True)
class DERnetHyperParams:
    """Architecture of one DERnet: M input rows, grid (Nx, Ny), channels C1..C5, dropouts."""

    num_rows: int
    grid: tuple[int, int]
    c1: int = 8
    c2: int = 4
    c3: int = 16
    c4: int = 8
    c5: int = 128
    rho0: float = 0.05
    rho1: float = 0.05
    pooling_stages: int | None = None  # None: adapt to the grid (see pooling_stages_for)
    consistency_stages: int = 0  # learned data-consistency stages after eq. (8) (0: the paper's network)
    consistency: str = "gradient"  # what a stage sees: "gradient" (η Ãᵀ(b̃ - Ãx)) or "solve" (z_k - x)

    def resolved_stages(self) -> int:
        return self.pooling_stages if self.pooling_stages is not None else pooling_stages_for(self.grid)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["grid"] = list(self.grid)
        d["pooling_stages"] = self.resolved_stages()
        return d


def pooling_stages_for(grid) -> int:
    """Pooling stages while the smaller side is >= 3 before pooling (ceil mode), at most 4:
    11x11 -> 3 (as the paper used), 19x19 -> 4."""
    n = min(grid)
    stages = 0
    while n >= 3 and stages < 4:
        n = -(-n // 2)
        stages += 1
    return max(stages, 1)


def conv_bn_relu(cin: int, cout: int, k: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class CBAM(nn.Module):
    """Convolutional block attention (Woo et al. 2018): channel then spatial attention."""

    def __init__(self, channels: int, reduction: int = 4, spatial_kernel: int = 7):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels))
        self.spatial = nn.Conv2d(2, 1, spatial_kernel, padding=spatial_kernel // 2)

    def forward(self, x):
        avg = self.mlp(x.mean(dim=(2, 3)))
        mx = self.mlp(x.amax(dim=(2, 3)))
        x = x * torch.sigmoid(avg + mx)[:, :, None, None]
        s = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial(s))


class UNet(nn.Module):
    """U-net with BN+ReLU double convolutions; channels double per stage up to ``bottleneck``.
    Ceil-mode pooling and size-matched upsampling handle odd and non-square grids."""

    def __init__(self, channels: int, bottleneck: int, stages: int):
        super().__init__()
        widths = [max(bottleneck >> (stages - i), channels) for i in range(stages + 1)]
        self.down = nn.ModuleList()
        cin = channels
        for w in widths[:-1]:
            self.down.append(nn.Sequential(conv_bn_relu(cin, w), conv_bn_relu(w, w)))
            cin = w
        self.bottom = nn.Sequential(conv_bn_relu(cin, widths[-1]), conv_bn_relu(widths[-1], widths[-1]))
        self.up_proj = nn.ModuleList()
        self.up = nn.ModuleList()
        for i in reversed(range(stages)):
            self.up_proj.append(nn.Conv2d(widths[i + 1], widths[i], 1))
            self.up.append(nn.Sequential(conv_bn_relu(2 * widths[i], widths[i]), conv_bn_relu(widths[i], widths[i])))
        self.out = nn.Conv2d(widths[0], channels, 1)

    def forward(self, x):
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2, ceil_mode=True)
        x = self.bottom(x)
        for proj, block, skip in zip(self.up_proj, self.up, reversed(skips)):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([proj(x), skip], dim=1))
        return self.out(x)


class ConsistencyStage(nn.Module):
    """One unrolled stage: (x, its data-consistency gradient) -> a correction of x, (B, 1, Ny, Nx)."""

    def __init__(self, width: int = 16):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(2, width, 3, padding=1), nn.ReLU(inplace=True),
                                 nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True),
                                 nn.Conv2d(width, 1, 3, padding=1))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, x, grad):
        return F.relu(x + self.net(torch.cat([x, grad], dim=1)))


class DERnet(nn.Module):
    """The network Net_DER of eq. (10): (B, 2, M) normalised signals -> (B, 1, Ny, Nx) >= 0."""

    def __init__(self, hp: DERnetHyperParams):
        super().__init__()
        self.hp = hp
        nx, ny = hp.grid
        self.image_hw = (ny, nx)
        # eq. (2): dropout + two 1D convolutions
        self.drop0 = nn.Dropout(hp.rho0)
        self.conv1d_1 = nn.Conv1d(2, hp.c1, 3, padding=1)
        self.conv1d_2 = nn.Conv1d(hp.c1, hp.c1, 3, padding=1)
        # eq. (4)-(5): dropout + fully connected domain transform
        self.drop1 = nn.Dropout(hp.rho1)
        self.fc = nn.Linear(hp.c1 * hp.num_rows, hp.c2 * nx * ny)
        # eq. (6): multi-scale branches Z2D,1-3 (BN+ReLU) and fusion Z2D,4
        self.branch1 = conv_bn_relu(hp.c2, hp.c3, 1)
        self.branch3 = conv_bn_relu(hp.c2, hp.c3, 3)
        self.branch5 = conv_bn_relu(hp.c2, hp.c3, 5)
        self.fuse = nn.Conv2d(hp.c2 + 3 * hp.c3, hp.c3, 3, padding=1)
        # eq. (7): CBAM + cascaded convolution block Z2D,5
        self.cbam_fm = CBAM(hp.c3)
        self.cascade = nn.Sequential(conv_bn_relu(hp.c3, hp.c4), conv_bn_relu(hp.c4, hp.c4))
        # eq. (8): U-net with residual connection, then Z2D,6 = CBAM, two convs, ReLU
        self.unet = UNet(hp.c4, hp.c5, hp.resolved_stages())
        self.cbam_out = CBAM(hp.c4)
        self.head = nn.Sequential(nn.Conv2d(hp.c4, hp.c4, 3, padding=1), nn.Conv2d(hp.c4, 1, 3, padding=1))
        self.stages = nn.ModuleList([ConsistencyStage() for _ in range(hp.consistency_stages)])
        if hp.consistency not in ("gradient", "solve"):
            raise ValueError(f"consistency: expected 'gradient' or 'solve', found {hp.consistency!r}")
        if hp.consistency_stages:  # Ã (2M, P) and η, set by set_operator (training) or the weights
            self.register_buffer("operator", torch.zeros(2 * hp.num_rows, nx * ny))
            self.register_buffer("step", torch.zeros(()))
            if hp.consistency == "solve":  # ÃᵀÃ = V diag(s2) Vᵀ and log(ρ_k / mean(s2))
                self.register_buffer("gram_vectors", torch.zeros(nx * ny, nx * ny))
                self.register_buffer("gram_values", torch.zeros(nx * ny))
                self.log_rho = nn.Parameter(torch.full((hp.consistency_stages,), float(np.log(SOLVE_RHO_START))))

    @torch.no_grad()
    def set_operator(self, matrix, kappa: float) -> None:
        """Store Ã = [Re A; Im A] / κ of the (M, P) complex selected calibration ``matrix`` and the
        step η = 1/||Ã||₂² of the consistency stages (no-op without stages)."""
        if not self.hp.consistency_stages:
            return
        a = np.concatenate([matrix.real, matrix.imag], axis=0) / kappa
        self.operator.copy_(torch.from_numpy(a.astype(np.float32)))
        self.step.fill_(1.0 / float(np.linalg.norm(a, 2)) ** 2)
        if self.hp.consistency == "solve":
            s2, v = np.linalg.eigh(a.T @ a)
            self.gram_vectors.copy_(torch.from_numpy(v.astype(np.float32)))
            self.gram_values.copy_(torch.from_numpy(np.maximum(s2, 0).astype(np.float32)))

    def forward(self, u_in: torch.Tensor) -> torch.Tensor:
        u0 = self.conv1d_2(F.relu(self.conv1d_1(self.drop0(u_in))))  # eq. (2)
        i0 = self.fc(self.drop1(u0).flatten(1))  # eq. (4)
        i1 = i0.view(-1, self.hp.c2, *self.image_hw)  # eq. (5)
        i2 = self.fuse(torch.cat([i1, self.branch1(i1), self.branch3(i1), self.branch5(i1)], 1))  # eq. (6)
        i3 = self.cascade(self.cbam_fm(i2))  # eq. (7)
        x = F.relu(self.head(self.cbam_out(i3 + self.unet(i3))))  # eq. (8)
        if self.stages:
            x = self._consistency(x, u_in.flatten(1))  # (B, 2M): [Re b̃, Im b̃], the order of Ã's rows
        return x

    def _consistency(self, x: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """The K stages on the image x (B, 1, Ny, Nx) and the normalised stacked data b (B, 2M)."""
        a = self.operator.to(x.dtype)
        if self.hp.consistency == "gradient":
            for stage in self.stages:
                r = b - x.flatten(1) @ a.T
                x = stage(x, (self.step * (r @ a)).view_as(x))
            return x
        aty = b @ a
        v, s2 = self.gram_vectors.to(x.dtype), self.gram_values.to(x.dtype)
        rhos = torch.exp(self.log_rho).to(x.dtype) * s2.mean()
        for stage, rho in zip(self.stages, rhos):
            flat = x.flatten(1)
            z = normal_solve(aty + rho * flat, v, s2, rho)
            x = stage(x, (z - flat).view_as(x))
        return x


def normalise_signals(b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. (9): complex (B, M) -> real (B, 2, M) divided by b_max = max|b| per sample; returns
    (normalised input, b_max (B,)). An all-zero sample stays zero (and so does its image,
    since eq. (10) multiplies by b_max = 0)."""
    bmax = b.abs().amax(dim=1)
    bn = b / torch.where(bmax > 0, bmax, torch.ones_like(bmax))[:, None]
    return torch.stack([bn.real, bn.imag], dim=1), bmax


def predict(net: nn.Module, b: torch.Tensor, kappa: float) -> torch.Tensor:
    """Eq. (10) with the unit-free scale κ: I_pd = (b_max / κ) Net(N(b)), (B, Ny, Nx)."""
    x, bmax = normalise_signals(b)
    return net(x.to(next(net.parameters()).dtype))[:, 0] * (bmax / kappa)[:, None, None].to(x.dtype)


def fuse_for_inference(net: DERnet) -> DERnet:
    """A copy of ``net`` in eval mode with every Conv2d + BatchNorm2d pair folded into one
    convolution (same outputs up to rounding, fewer operations per frame). Dropout is a no-op
    in eval mode; the original network is not modified."""
    import copy

    from torch.nn.utils.fusion import fuse_conv_bn_eval

    fused = copy.deepcopy(net).eval()
    for module in fused.modules():
        if isinstance(module, nn.Sequential):
            children = list(module)
            for i in range(len(children) - 1):
                conv, bn = children[i], children[i + 1]
                if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                    module[i] = fuse_conv_bn_eval(conv, bn)
                    module[i + 1] = nn.Identity()
    return fused
