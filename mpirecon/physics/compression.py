"""A large system matrix's dominant row space as a small operator, for iterative solvers.

An MPI calibration's stacked operator A (2R x P) has a few hundred singular values that carry the
particle signal and a flat floor of thousands more that carry calibration noise (on an OpenMPI-scale
37^3 file with 7,666 stacked rows: 462 above 0.05 and 7,200 between 0.009 and 0.045, in the
operator's units where the mean of AᵀA's diagonal is 1). With an orthonormal basis Q (2R x k) of
the dominant range,

    ||A x - b||² = ||Qᵀ A x - Qᵀ b||² + ||(I - QQᵀ) A x||² + (terms without x)

and the middle term only involves the floor: replacing A by ``B = QᵀA`` (k x P) and the data by
``Qᵀb`` drops the directions of the floor from the data term, like a truncated SVD does, and makes
an ADMM iteration cost two products with a k x P matrix instead of a 2R x P one.

Q comes from a seeded randomised range finder (Halko, Martinsson & Tropp 2011) with power
iterations, run through the operator's own products (row blocks, never a second copy of A); the
rows of B are then rotated to B's singular vectors, so ``B Bᵀ = diag(s²)``. The compressed operator
is a :class:`~mpirecon.physics.operator.SystemOperator` (same scale, dtype and image shape) whose ``data``
maps spectra to ``Qᵀb``; every solver that takes an operator runs on it unchanged. Built once per
(matrix, dtype, rank) and cached with the full operator.
"""
from __future__ import annotations

import numpy as np

from mpirecon.physics.operator import SystemOperator

#: rows kept by default (the signal rank of an OpenMPI-scale calibration is a few hundred)
DEFAULT_RANK = 1024
#: extra random directions of the range finder (dropped at the end)
OVERSAMPLING = 16
#: power iterations of the range finder (each: one product with Aᵀ and one with A)
POWER_ITERATIONS = 1


def compressed_operator(op: SystemOperator, rank: int = DEFAULT_RANK, seed: int = 0) -> "CompressedOperator":
    """The cached :class:`CompressedOperator` of ``op`` with at most ``rank`` rows (all 2R rows'
    range when ``rank`` >= 2R: then it is exact up to rounding)."""
    return op.memo(("compressed", int(rank), int(seed)), lambda: CompressedOperator.build(op, int(rank), int(seed)))


def range_basis(op: SystemOperator, width: int, seed: int, power: int = POWER_ITERATIONS) -> np.ndarray:
    """Orthonormal Q (2R, width) float64 spanning ``A Ω`` (Ω seeded Gaussian, P x width), refined by
    ``power`` power iterations; ``width`` >= 2R gives a basis of the whole row space of A."""
    rng = np.random.default_rng(seed)
    omega = rng.standard_normal((op.num_voxels, width)).astype(op.dtype)
    q, _ = np.linalg.qr(op.host(op.forward(op.backend(omega))).astype(np.float64))
    for _ in range(power):
        z = op.adjoint(op.backend(q.astype(op.dtype)))
        q, _ = np.linalg.qr(op.host(op.forward(z)).astype(np.float64))
    return q


class CompressedOperator(SystemOperator):
    """``B = QᵀA`` (k, P) with orthogonal rows (see the module docstring).

    Attributes (besides :class:`~mpirecon.physics.operator.SystemOperator`'s):
        source: the full operator; basis: Q (2R, k) float64; singular_values2: s² (k,) descending;
        leverage: (2R,) ``Σ_k Q²`` per stacked row (how much of each row's noise reaches ``Qᵀb``);
        captured: the share of ``||A||_F²`` kept (1.0 when nothing is dropped).
    """

    def __init__(self, source: SystemOperator, basis: np.ndarray, rows: np.ndarray, s2: np.ndarray):
        self.source = source
        self.system_matrix = source.system_matrix
        self.scale = source.scale
        self.dtype = source.dtype
        self.device = source.device
        self.backend_name = source.backend_name
        self.image_shape = source.image_shape
        self.num_voxels = source.num_voxels
        self.num_rows = rows.shape[0]
        self.stacked = True
        self._cache = {"A": source.backend(np.ascontiguousarray(rows, dtype=self.dtype))}
        self.basis = basis
        self.singular_values2 = s2
        self.leverage = np.sum(basis * basis, axis=1)
        self.captured = float(s2.sum() / max(float(source.column_energy().sum()), 1e-300))

    @classmethod
    def build(cls, op: SystemOperator, rank: int, seed: int) -> "CompressedOperator":
        """Range finder, then B's SVD through its k x k Gram: rows rotated to singular vectors,
        numerically zero directions (s² <= 1e-12 s²_max) and those beyond ``rank`` dropped."""
        width = min(op.num_rows, rank + OVERSAMPLING)
        q = range_basis(op, width, seed)
        bt = op.host(op.adjoint(op.backend(q.astype(op.dtype)))).astype(np.float64)  # Aᵀ Q (P, width)
        s2, v = np.linalg.eigh(bt.T @ bt)
        order = np.argsort(s2)[::-1]
        s2, v = np.maximum(s2[order], 0.0), v[:, order]
        keep = min(rank, int(np.sum(s2 > 1e-12 * max(s2[0], 1e-300))))
        return cls(op, q @ v[:, :keep], (bt @ v[:, :keep]).T, s2[:keep])

    @property
    def unit(self) -> float:
        """The full operator's unit (a parameter means the same with and without compression)."""
        return self.source.unit

    def data(self, spectra):
        """Complex spectra (F, R) -> ``Qᵀ b`` (k, F), b the scaled stacked data."""
        b = self.source.host(self.source.data(spectra)).astype(np.float64)
        return self.backend((self.basis.T @ b).astype(self.dtype))

    def noise_energy(self, noise, frames: int):
        """Expected ``||Qᵀn||²`` per frame (F,): each row's σ² weighted by its leverage."""
        if noise is None:
            return None
        r = self.source.num_rows // 2
        sigma2 = noise.rows(frames, r) ** 2 / 2.0  # per real and imaginary part
        return (sigma2 @ (self.leverage[:r] + self.leverage[r:])) / self.scale ** 2

    def x_update(self, rho: float, transforms: tuple[str, ...] = (), strategy: str = "auto"):
        """Always the Woodbury x-update on the k x k system (a P x P matrix would defeat the point)."""
        return super().x_update(rho, transforms, "large")

    def describe(self) -> dict:
        """What was kept, for result files: rows, share of ||A||_F², smallest kept s² (relative units)."""
        return {"rows": int(self.num_rows), "of_rows": int(self.source.num_rows),
                "energy_kept": round(self.captured, 6), "smallest_s2": float(self.singular_values2[-1])}
