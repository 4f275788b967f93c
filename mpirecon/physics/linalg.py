"""Array-agnostic linear algebra for the classical solvers: numpy arrays or torch tensors alike.

The solvers run one code path on numpy (CPU) or torch (CPU or a GPU); the few operations whose
spelling differs are here. torch is imported only inside the torch branches, so the numpy path
never imports it. Also here: the blocked Gram matrix ``B Bᵀ`` of a matrix given by row blocks
(never more than two blocks in memory), the inverse of a symmetric positive definite matrix,
and the orthonormal DCT-II that diagonalises the Neumann Laplacian ``DᵀD`` of
:func:`mpirecon.optim.priors.gradient_operator`.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import scipy.fft
import scipy.linalg as sla

#: rows per block of :func:`row_gram` (a 1024 x 50,653 block is 400 MB in float64)
GRAM_BLOCK_ROWS = 1024


def is_numpy(a) -> bool:
    """True for a numpy array, False for a torch tensor."""
    return isinstance(a, np.ndarray)


def colsum(a):
    """Sum over axis 0: (N, F) -> (F,)."""
    return np.sum(a, axis=0) if is_numpy(a) else a.sum(dim=0)


def zeros_like(a):
    """Zeros with ``a``'s shape, dtype and array type."""
    return np.zeros_like(a) if is_numpy(a) else a.new_zeros(a.shape)


def copy(a):
    """A copy of ``a`` (numpy or torch)."""
    return a.copy() if is_numpy(a) else a.clone()


def clamp_min(a, value: float):
    """Elementwise ``max(a, value)``."""
    return np.maximum(a, value) if is_numpy(a) else a.clamp_min(value)


def tiny(a) -> float:
    """Smallest positive normal number of ``a``'s (real) dtype."""
    if is_numpy(a):
        return float(np.finfo(a.dtype).tiny)
    import torch
    return float(torch.finfo(a.dtype).tiny)


def cast_like(a, ref):
    """``a`` in the dtype (and device) of ``ref`` (numpy or torch alike)."""
    return a.astype(ref.dtype) if is_numpy(a) else a.to(ref.dtype)


def like(ref, array: np.ndarray, dtype=None):
    """The numpy ``array`` as the array type of ``ref`` (same device for torch), in ``dtype`` (a
    numpy dtype name; default: unchanged)."""
    array = np.asarray(array if dtype is None else np.asarray(array).astype(dtype))
    if is_numpy(ref):
        return array
    import torch
    return torch.as_tensor(np.ascontiguousarray(array), device=ref.device)


def eye_like(ref, n: int):
    """Identity (n, n) in ``ref``'s dtype and array type."""
    if is_numpy(ref):
        return np.eye(n, dtype=ref.dtype)
    import torch
    return torch.eye(n, dtype=ref.dtype, device=ref.device)


def solve_lower(lower, rhs):
    """Solve ``lower @ x = rhs`` for a lower-triangular (n, n) matrix and rhs (n, F)."""
    if is_numpy(lower):
        return sla.solve_triangular(lower, rhs, lower=True, check_finite=False)
    import torch
    return torch.linalg.solve_triangular(lower, rhs, upper=False)


def tril(a):
    """Lower triangle (diagonal included) of a square matrix."""
    return np.tril(a) if is_numpy(a) else a.tril()


def row_gram(rows: Callable[[int, int], object], n: int, block: int = GRAM_BLOCK_ROWS):
    """Gram matrix ``G = B Bᵀ`` (n, n) float64 of an (n, P) real matrix B given by its row blocks.

    ``rows(i0, i1)`` returns ``B[i0:i1]`` (numpy or torch, any real dtype); products are taken in
    float64 (a float32 Gram's rounding, amplified by its condition number, spoils the Woodbury
    x-update in float32). Only the lower block triangle is computed and then mirrored,
    so at most two blocks are alive at a time (a block is recomputed for each pair: make
    ``rows`` cheap, e.g. a view, or accept the recomputation).
    """
    starts = list(range(0, n, block))
    gram = None
    for i0 in starts:
        i1 = min(i0 + block, n)
        bi = as_float64(rows(i0, i1))
        if gram is None:
            gram = _zeros64(bi, (n, n))
        for j0 in starts:
            if j0 > i0:
                break
            j1 = min(j0 + block, n)
            bj = bi if j0 == i0 else as_float64(rows(j0, j1))
            gram[i0:i1, j0:j1] = bi @ bj.T
            if j0 != i0:
                gram[j0:j1, i0:i1] = gram[i0:i1, j0:j1].T
    return gram


#: matrices up to this size (bytes) are summed in one numpy call (the values they always had)
ENERGY_ONE_PASS_BYTES = 64 * 2 ** 20


def row_energies(matrix: np.ndarray, block: int = 256) -> np.ndarray:
    """``Σ_p |m_rp|²`` per row (R,) float64 of an (R, P) numpy matrix (complex or real): in one pass
    for small matrices, else in row blocks cast to float64 (no full-size temporary)."""
    m = np.asarray(matrix)
    if m.nbytes <= ENERGY_ONE_PASS_BYTES:
        return np.sum(np.abs(m) ** 2, axis=1).astype(np.float64)
    out = np.empty(m.shape[0])
    for i in range(0, m.shape[0], block):
        b = m[i:i + block].astype(np.complex128 if np.iscomplexobj(m) else np.float64)
        out[i:i + block] = np.einsum("ij,ij->i", b.conj(), b).real
    return out


def _zeros64(ref, shape):
    if is_numpy(ref):
        return np.empty(shape, np.float64)
    import torch
    return torch.empty(shape, dtype=torch.float64, device=ref.device)


def as_float64(a):
    """``a`` in float64 (no copy when it already is)."""
    if is_numpy(a):
        return a.astype(np.float64, copy=False)
    import torch
    return a.to(torch.float64)


def spd_inverse(m):
    """Inverse of a symmetric positive definite float64 matrix (n, n) through its Cholesky factor
    (LAPACK potrf/potri for numpy, ``cholesky_inverse`` for torch). Consumes ``m`` (numpy)."""
    if is_numpy(m):
        c, info = sla.lapack.dpotrf(m, lower=1, overwrite_a=1, clean=1)
        if info != 0:
            raise np.linalg.LinAlgError(f"matrix is not positive definite (potrf info {info})")
        inv, info = sla.lapack.dpotri(c, lower=1, overwrite_c=1)
        if info != 0:
            raise np.linalg.LinAlgError(f"potri failed (info {info})")
        n = inv.shape[0]
        for i0 in range(0, n, GRAM_BLOCK_ROWS):  # mirror the lower triangle in place, block by block
            i1 = min(i0 + GRAM_BLOCK_ROWS, n)
            inv[i0:i1, i1:] = inv[i1:, i0:i1].T
            inv[i0:i1, i0:i1] = np.tril(inv[i0:i1, i0:i1]) + np.tril(inv[i0:i1, i0:i1], -1).T
        return inv
    import torch
    return torch.cholesky_inverse(torch.linalg.cholesky(m))


def symmetric_eig(m):
    """Eigenvalues (n,) ascending and eigenvectors (n, n) of a symmetric matrix."""
    if is_numpy(m):
        return np.linalg.eigh(m)
    import torch
    return torch.linalg.eigh(m)


def add_diagonal(m, value: float):
    """``m + value * I`` for a square matrix (a new array)."""
    if is_numpy(m):
        out = m.copy()
        out[np.diag_indices_from(out)] += value
        return out
    out = m.clone()
    out.diagonal().add_(value)
    return out


# -- the DCT-II that diagonalises the Neumann Laplacian ------------------------------------------
def laplacian_eigenvalues(image_shape: Sequence[int]) -> np.ndarray:
    """Eigenvalues (P,) of ``DᵀD`` for the forward-difference gradient D with Neumann boundary
    (:func:`mpirecon.optim.priors.gradient_operator`) in the orthonormal DCT-II basis:
    ``Σ_axes 4 sin²(π k_a / (2 n_a))``, flattened in C order (x fastest) like the images."""
    total = np.zeros(tuple(image_shape))
    for axis, n in enumerate(image_shape):
        lam = 4.0 * np.sin(np.pi * np.arange(n) / (2.0 * n)) ** 2
        shape = [1] * len(image_shape)
        shape[axis] = n
        total = total + lam.reshape(shape)
    return total.ravel()


def dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II matrix (n, n): ``C @ v`` equals ``scipy.fft.dct(v, norm='ortho')``."""
    k = np.arange(n)[:, None]
    c = np.cos(np.pi * k * (2 * np.arange(n)[None, :] + 1) / (2 * n)) * np.sqrt(2.0 / n)
    c[0] /= np.sqrt(2.0)
    return c


def dct_images(v, image_shape: Sequence[int], inverse: bool = False):
    """Orthonormal n-D DCT-II (or its inverse) of flat images ``v`` (N, P) -> (N, P).

    numpy: ``scipy.fft.dctn``/``idctn`` over the image axes; torch: the separable per-axis DCT
    matrices (n_a x n_a, tiny) applied along each axis, the same map.
    """
    shape = tuple(image_shape)
    n = v.shape[0]
    img = v.reshape((n,) + shape)
    if is_numpy(v):
        fn = scipy.fft.idctn if inverse else scipy.fft.dctn
        return fn(img, type=2, axes=tuple(range(1, len(shape) + 1)), norm="ortho", workers=-1).reshape(n, -1)
    import torch
    for axis, size in enumerate(shape):
        c = torch.as_tensor(dct_matrix(size), dtype=v.dtype, device=v.device)
        c = c.T if inverse else c
        img = torch.movedim(torch.tensordot(img, c, dims=([axis + 1], [1])), -1, axis + 1)
    return img.reshape(n, -1)
