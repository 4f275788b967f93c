"""Physics-informed start for DERnet's domain transform (a departure from the paper, opt-in).

The paper initialises every layer with PyTorch's defaults (sec. 2.2), so the fully connected
domain transform of eq. (4) — C1*M x C2*N weights, ~10 M for the 19x19 default — has to learn
an inverse of the system matrix from data alone, which takes most of the training budget on a
CPU. :func:`tikhonov_start` sets the 1D convolutions of eq. (2) to pass the real and imaginary
parts through unchanged (as ``relu(x) - relu(-x)``, since eq. (2)'s first convolution is followed
by a ReLU here) and the FC weights of eq. (4) to Tikhonov-regularised pseudo-inverses of the
system matrix, one regularisation strength per image channel of eq. (5). The architecture is
unchanged and every weight is still trained end to end; only the starting point differs: the
network begins as a bank of Tikhonov reconstructions followed by a randomly initialised
post-processing network.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from mpirecon.errors import ReconstructorError
from mpirecon.physics.operator import matrix_scale, tikhonov_inverse

#: Tikhonov λ per image channel of eq. (5), relative to ||A||_F^2 / N (as the pinv baseline)
DEFAULT_LAMBDAS = (1e-3, 1e-2, 1e-1, 1.0)


def tikhonov_inverses(matrix: np.ndarray, lambdas: Sequence[float]) -> np.ndarray:
    """Regularised inverses of the stacked real system matrix.

    Args:
        matrix: (M, N) complex system matrix (selected rows, voxels in row-major Ny x Nx order).
        lambdas: K regularisation strengths relative to ``||A||_F^2 / N``.
    Returns:
        (K, N, 2M) float64: ``(AᵀA + λ s² I)⁻¹ Aᵀ`` with A = [Re; Im] stacked, so that
        ``P @ [Re b; Im b]`` is the Tikhonov image in the units of the matrix's voxels.
    """
    a = np.concatenate([matrix.real, matrix.imag], axis=0)
    scale = matrix_scale(matrix)
    u, s, vt = np.linalg.svd(a / scale, full_matrices=False)
    return np.stack([tikhonov_inverse(u, s, vt, lam) for lam in lambdas]) / scale


@torch.no_grad()
def tikhonov_start(net, matrix: np.ndarray, kappa: float, lambdas: Sequence[float] = DEFAULT_LAMBDAS) -> None:
    """Set eq. (2)'s convolutions to pass-through and eq. (4)'s FC layer to Tikhonov inverses.

    Args:
        net: a :class:`~mpirecon_dernet.model.DERnet` with C1 >= 4; modified in place.
        matrix: (M, N) complex selected system matrix the network is trained for.
        kappa: the unit-free scale of eq. (10) (network targets are ``κ c / max|b|``).
        lambdas: one λ per FC output channel (C2 values; shorter lists are cycled).
    """
    hp = net.hp
    m, n = matrix.shape
    if m != hp.num_rows or n != hp.grid[0] * hp.grid[1]:
        raise ReconstructorError(f"matrix {matrix.shape} does not fit DERnet with {hp.num_rows} rows, grid {hp.grid}")
    if hp.c1 < 4:
        raise ReconstructorError("the Tikhonov start needs C1 >= 4 (re, -re, im, -im through the ReLU)")
    c1, c2 = hp.c1, hp.c2
    w1 = torch.zeros_like(net.conv1d_1.weight)  # (C1, 2, 3): channels re, -re, im, -im
    for ch, (src, sign) in enumerate(((0, 1.0), (0, -1.0), (1, 1.0), (1, -1.0))):
        w1[ch, src, 1] = sign
    net.conv1d_1.weight.copy_(w1)
    net.conv1d_1.bias.zero_()
    w2 = torch.zeros_like(net.conv1d_2.weight)  # (C1, C1, 3): out 0 = re, out 1 = im
    w2[0, 0, 1], w2[0, 1, 1], w2[1, 2, 1], w2[1, 3, 1] = 1.0, -1.0, 1.0, -1.0
    net.conv1d_2.weight.copy_(w2)
    net.conv1d_2.bias.zero_()
    lam = [lambdas[k % len(lambdas)] for k in range(c2)]
    inv = kappa * tikhonov_inverses(matrix, lam)  # (C2, N, 2M)
    fc = np.zeros((c2, n, c1, m))
    fc[:, :, 0, :] = inv[:, :, :m]
    fc[:, :, 1, :] = inv[:, :, m:]
    net.fc.weight.copy_(torch.from_numpy(fc.reshape(c2 * n, c1 * m)).to(net.fc.weight.dtype))
    net.fc.bias.zero_()


def freeze_transform(net) -> None:
    """Stop training of the domain transform (eq. (2)'s convolutions and eq. (4)'s FC layer) of
    ``net`` in place: with :func:`tikhonov_start` the network becomes a fixed bank of Tikhonov
    images followed by the trained image networks (the ~10 M FC weights no longer fit the
    training shapes)."""
    for module in (net.conv1d_1, net.conv1d_2, net.fc):
        for p in module.parameters():
            p.requires_grad_(False)
