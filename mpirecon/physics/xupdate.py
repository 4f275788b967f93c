"""ADMM x-update solvers: :class:`DenseXUpdate` (the explicit P x P inverse, small P) and
:class:`WoodburyXUpdate` (large P, through the Woodbury identity on a 2R x 2R system).

The x-update solves ``(AᵀA + M) x = r`` with ``M = ρ S`` and ``S = I`` (identity splitting
only) or ``S = I + DᵀD`` (with the TV splitting; D the forward-difference gradient with
Neumann boundary, so DᵀD is the Neumann Laplacian). S is diagonal in the orthonormal DCT-II
basis C: ``S = Cᵀ diag(s) C`` with ``s = 1 + Σ_axes 4 sin²(πk/(2n))`` (:mod:`mpirecon.physics.linalg`).
By Woodbury::

    (AᵀA + M)⁻¹ = M⁻¹ - M⁻¹Aᵀ (I + A M⁻¹ Aᵀ)⁻¹ A M⁻¹,     A M⁻¹ Aᵀ = (1/ρ) A S⁻¹ Aᵀ

so the set-up is the ρ-independent 2R x 2R Gram ``A S⁻¹ Aᵀ`` (= AAᵀ for S = I, shared with pinv;
else the Gram of the rows of A transformed by ``dctn`` and scaled by ``s^(-1/2)``, computed in
row blocks, in float64), cached in the operator, plus one 2R x 2R Cholesky inverse per ρ, kept
in float64. An iteration costs two products with A (2R x P, working dtype) and one with the
2R x 2R inverse (float64) for the whole batch, plus two DCTs of the batch for TV — never a P x P
matrix, never a dense D.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

import scipy.linalg as sla

from mpirecon.errors import ReconstructorError
from mpirecon.optim.priors import GRADIENT, gradient_operator
from mpirecon.physics.linalg import add_diagonal, as_float64, cast_like, dct_images, laplacian_eigenvalues, like, row_gram, spd_inverse

#: largest ``A M⁻¹`` (bytes) kept by a TV x-update: a compressed operator's, not a full calibration's
SCALED_ROWS_MAX_BYTES = 512 * 2 ** 20


@dataclass
class WoodburyXUpdate:
    """``(AᵀA + ρS)⁻¹`` through Woodbury (module docstring) for an operator, ρ and transforms.

    Attributes:
        op: the :class:`~mpirecon.physics.operator.SystemOperator`; rho: the penalty.
        inverse: (2R, 2R) ``(I + A M⁻¹ Aᵀ)⁻¹`` in float64 (numpy, or torch on the device), also
            for a float32 operator: ``r - Aᵀy`` cancels in the directions of large singular
            values, so y must be accurate (float32 G⁻¹: x-update error ~1e-3, float64: ~2e-5
            relative on an 11^3 calibration with ρ = 0.1; the dense float32 inverse: ~1e-6).
        spectrum: (P,) eigenvalues ``ρ s`` of M in the DCT basis, or None for M = ρI.
        transforms: name -> (K, Kᵀ) sparse matrices, as :class:`~mpirecon.optim.admm.DenseXUpdate`.
    """

    op: object
    rho: float
    inverse: object
    spectrum: object = None
    transforms: dict = field(default_factory=dict)
    #: ``A M⁻¹`` (2R, P) in the working dtype when M ≠ ρI and it is small (a compressed operator):
    #: then an x-update needs one DCT pair instead of two
    scaled_rows: object = None

    @classmethod
    def build(cls, op, rho: float, transforms: tuple[str, ...] = ()) -> "WoodburyXUpdate":
        mats = transform_matrices(op, transforms)  # validates the names
        if transforms:
            gram, s = transformed_gram(op)
            spectrum = like(op.rows(0, 1), rho * s, op.dtype)
        else:
            gram, spectrum = op.row_gram(), None
        g = add_diagonal(gram / rho, 1.0)  # I + A M⁻¹ Aᵀ, float64
        inverse = spd_inverse(g)
        out = cls(op=op, rho=float(rho), inverse=inverse, spectrum=spectrum, transforms=mats)
        if spectrum is not None and op.num_rows * op.num_voxels * op.dtype.itemsize <= SCALED_ROWS_MAX_BYTES:
            out.scaled_rows = out._m_inverse(op.rows(0, op.num_rows).T).T  # A M⁻¹ (M symmetric)
        return out

    def _m_inverse(self, v):
        """M⁻¹ v for voxel columns (P, F)."""
        if self.spectrum is None:
            return v / self.rho
        shape = self.op.image_shape
        return dct_images(dct_images(v.T, shape) / self.spectrum, shape, inverse=True).T

    def solve(self, rhs):
        """x for the right-hand side (P, F)."""
        op = self.op
        w = self._m_inverse(rhs)
        if self.scaled_rows is not None:  # x = M⁻¹r - (A M⁻¹)ᵀ y with z = A M⁻¹ r: one DCT pair
            z = self.scaled_rows @ rhs
            y = cast_like(self.inverse @ as_float64(z), z)
            return w - self.scaled_rows.T @ y
        z = op.forward(w)
        y = cast_like(self.inverse @ as_float64(z), z)
        return self._m_inverse(rhs - op.adjoint(y))


def transformed_gram(op):
    """``(A S⁻¹ Aᵀ (2R, 2R) float64, s (P,))`` for ``S = I + DᵀD`` (module docstring), the Gram
    computed once per operator in row blocks of ``dctn(rows of A) * s^(-1/2)``."""
    s = 1.0 + laplacian_eigenvalues(op.image_shape)

    def build():
        weight = like(op.rows(0, 1), 1.0 / np.sqrt(s), op.dtype)
        return row_gram(lambda i0, i1: dct_images(op.rows(i0, i1), op.image_shape) * weight, op.num_rows)

    return op.memo("gradient_gram", build), s


@dataclass
class DenseXUpdate:
    """``(AᵀA + ρ(I + Σ KᵀK))⁻¹`` formed once (Cholesky, P x P) for an operator, ρ and transforms.

    Attributes:
        op: the :class:`~mpirecon.physics.operator.SystemOperator`; rho: the penalty.
        inverse: (P, P) in the operator's dtype and device.
        transforms: name -> (K, Kᵀ) sparse matrices (scipy for numpy, torch COO for torch).
    """

    op: object
    rho: float
    inverse: object
    transforms: dict = field(default_factory=dict)

    @classmethod
    def build(cls, op, rho: float, transforms: tuple[str, ...] = ()) -> "DenseXUpdate":
        p = op.num_voxels
        normal = op.float64_normal_matrix()  # factorised in float64
        m = normal.astype(np.float64) + rho * np.eye(p)
        mats = transform_matrices(op, transforms)
        for _ in transforms:
            k = gradient_operator(op.image_shape)
            m += rho * (k.T @ k).toarray()
        c, low = sla.cho_factor(m, lower=True, check_finite=False)
        inverse = sla.cho_solve((c, low), np.eye(p), check_finite=False).astype(op.dtype)
        return cls(op=op, rho=float(rho), inverse=op.backend(inverse), transforms=mats)

    def solve(self, rhs):
        """x for the right-hand side (P, F)."""
        return self.inverse @ rhs


def transform_matrices(op, transforms: tuple[str, ...]) -> dict:
    """name -> (K, Kᵀ) of each splitting transform as sparse matrices in the operator's dtype
    (scipy for numpy, torch COO for torch); only ``"gradient"`` (:func:`gradient_operator`) exists."""
    mats = {}
    for name in transforms:
        if name != GRADIENT:
            raise ReconstructorError(f"unknown ADMM transform {name!r} (known: {GRADIENT!r})")
        k = gradient_operator(op.image_shape).astype(op.dtype)
        mats[name] = (_sparse_backend(op, k), _sparse_backend(op, k.T))
    return mats


def _sparse_backend(op, k):
    if op.on_cpu:
        return k
    import torch
    k = k.tocoo()
    index = torch.as_tensor(np.stack([k.row, k.col]).astype(np.int64))
    return torch.sparse_coo_tensor(index, torch.as_tensor(k.data), size=k.shape, device=op.device,
                                   check_invariants=True).coalesce()
