"""The system matrix as a linear operator for solvers, scaled to be unit-free.

Images are real, so ``min ||A x - b||`` with complex A and real x equals the real problem with
the stacked matrix ``[Re A; Im A]`` (2R x P) and data ``[Re b; Im b]``. The matrix is divided by
``a = sqrt(||A||_F^2 / P)`` (so the mean diagonal of AᵀA is 1, as RegularizedLeastSquares.jl
normalises lambda); regularisation parameters are therefore relative to the matrix and one
default fits any calibration scale.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from mdf_io import SystemMatrix


def matrix_scale(matrix: np.ndarray) -> float:
    """``sqrt(||A||_F^2 / P)`` of an (R, P) matrix; 1.0 for an all-zero matrix."""
    a = float(np.sqrt(np.sum(np.abs(matrix) ** 2) / matrix.shape[1]))
    return a if a > 0 else 1.0


class RealOperator:
    """Stacked, scaled real form of a system matrix.

    Attributes:
        A: (2R, P) real array ``[Re A; Im A] / scale`` in the working dtype.
        scale: the factor ``a`` above.
    """

    def __init__(self, system_matrix: SystemMatrix, dtype="float64"):
        m = system_matrix.matrix
        self.scale = matrix_scale(m)
        self.dtype = np.dtype(dtype)
        self.A = (np.concatenate([m.real, m.imag], axis=0) / self.scale).astype(self.dtype)
        self.num_voxels = m.shape[1]

    def data(self, spectra: np.ndarray) -> np.ndarray:
        """Complex spectra (F, R) -> scaled stacked real data (2R, F) for the scaled operator."""
        s = np.asarray(spectra)
        return (np.concatenate([s.real, s.imag], axis=1).T / self.scale).astype(self.dtype)

    def normal_matrix(self) -> np.ndarray:
        """AᵀA (P, P) of the scaled operator."""
        return self.A.T @ self.A


def tikhonov_inverse(u: np.ndarray, s: np.ndarray, vt: np.ndarray, lam: float, keep=None) -> np.ndarray:
    """Tikhonov-regularised inverse ``V diag(s / (s² + λ)) Uᵀ`` (P, 2R) of a stacked real operator
    from its thin SVD ``u`` (2R, r), ``s`` (r,), ``vt`` (r, P); singular values where ``keep`` is
    False are dropped (truncated SVD). λ is in the operator's units (relative for a scaled one)."""
    filt = s / (s ** 2 + lam)
    if keep is not None:
        filt = np.where(keep, filt, 0.0)
    return (vt.T * filt) @ u.T


def frame_scales(op: RealOperator, b: np.ndarray) -> np.ndarray:
    """Per-frame scale ``max|Aᵀb|`` (F,), used to make non-linear priors scale-equivariant:
    solving for ``b / s`` and multiplying by ``s`` gives ``x(k b) = k x(b)``. Zero frames get 1."""
    s = np.max(np.abs(op.A.T @ b), axis=0)
    return np.where(s > 0, s, 1.0)


def gradient_operator(image_shape: tuple[int, ...]) -> sp.csr_matrix:
    """Forward-difference gradient D of an image with ``image_shape`` (x fastest, Neumann
    boundary): sparse (ndim*P, P), rows grouped by axis (last axis = x first)."""
    blocks = []
    dims = list(image_shape)
    for axis in reversed(range(len(dims))):
        n = dims[axis]
        d1 = sp.diags([-np.ones(n), np.ones(n - 1)], [0, 1], shape=(n, n), format="lil")
        d1[n - 1, n - 1] = 0.0
        mats = [sp.identity(k, format="csr") for k in dims]
        mats[axis] = d1.tocsr()
        op = mats[0]
        for m in mats[1:]:
            op = sp.kron(op, m, format="csr")
        blocks.append(op)
    return sp.vstack(blocks, format="csr")


def total_variation(images: np.ndarray) -> np.ndarray:
    """Isotropic total variation of each image in a batch (F, *image_shape*) -> (F,)."""
    imgs = np.asarray(images, dtype=np.float64)
    shape = imgs.shape[1:]
    d = gradient_operator(shape)
    g = (d @ imgs.reshape(imgs.shape[0], -1).T).reshape(len(shape), -1, imgs.shape[0])
    return np.sqrt((g ** 2).sum(axis=0)).sum(axis=0)
