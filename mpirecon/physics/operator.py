"""The system matrix as one linear operator object, scaled to be unit-free, with cached set-up.

Images are real, so ``min ||A x - b||`` with complex A and real x equals the real problem with
the stacked matrix ``[Re A; Im A]`` (2R x P) and data ``[Re b; Im b]``. The matrix is divided by
``a = sqrt(||A||_F^2 / P)`` (so the mean diagonal of AᵀA is 1, as RegularizedLeastSquares.jl
normalises lambda); regularisation parameters are therefore relative to the matrix and one
default fits any calibration scale.

:func:`operator_for` returns ONE :class:`SystemOperator` per (system matrix, dtype, device): it
is kept in the system matrix's ``cache``, so every method bound to the same matrix shares the
stacked matrix, the normal matrix, the SVD and the ADMM x-update factorisations, each computed
on first use. Solver-specific per-matrix data go through :meth:`SystemOperator.memo`.
Arrays are numpy on the CPU; with ``device`` other than ``"cpu"`` the operator holds torch
tensors (torch is imported only then).

Strategies. Every classical solver has a *dense* form (today's, for small grids) and a *large*
form whose cost follows the data; :meth:`SystemOperator.strategy` picks one per problem shape:

* P <= :data:`DENSE_MAX_VOXELS` (a P x P float64 matrix of at most 512 MiB): dense — ADMM
  inverts AᵀA + ρ(I + DᵀD) (P x P), CGNR forms AᵀA; pinv takes the full SVD only for
  P <= :data:`SVD_MAX_VOXELS` (a full SVD of a 7,960 x 6,859 matrix took ~470 s on 2 shared
  cores, the Gram route ~20 s).
* larger P: ADMM x-updates through the Woodbury identity on a 2R x 2R system
  (:class:`mpirecon.physics.xupdate.WoodburyXUpdate`, TV via the DCT), CGNR matrix-free, pinv from the
  2R x 2R Gram AAᵀ.
* Kaczmarz follows the rows: blocks of rows through BLAS on numpy; on torch the whole R x R sweep
  matrix for R <= :data:`KACZMARZ_WHOLE_MAX_ROWS`, blocks beyond (:mod:`baselines.kaczmarz`).

``strategy="dense"``/``"large"`` (a solver parameter) overrides the choice, e.g. for tests.
"""
from __future__ import annotations

from typing import Callable, Hashable

import numpy as np

from mdf_io import SystemMatrix

from mpirecon.errors import ReconstructorError
from mpirecon.physics.linalg import ENERGY_ONE_PASS_BYTES, row_energies, symmetric_eig

#: largest P for the dense strategies (a P x P float64 matrix is then at most 512 MiB)
DENSE_MAX_VOXELS = 8192
#: largest P for pinv's full SVD (its cost, ~2R·P² with a large constant, dominates above)
SVD_MAX_VOXELS = 4096
#: bytes of one row block of :meth:`SystemOperator.normal_apply` (a few MiB: stays in cache)
NORMAL_BLOCK_BYTES = 4 * 2 ** 20
#: most frames for which :meth:`SystemOperator.normal_apply` goes by row blocks (more are compute-bound)
NORMAL_BLOCK_MAX_FRAMES = 4
#: largest R for the whole-matrix Kaczmarz sweep (an R x R complex128 matrix: 256 MiB)
KACZMARZ_WHOLE_MAX_ROWS = 4096
STRATEGIES = ("auto", "dense", "large")
#: largest stacked real operator (2R x P) built as its own array on numpy; above it the operator
#: works from the system matrix's complex rows (one copy of the matrix in memory)
STACKED_MAX_BYTES = 512 * 2 ** 20
#: most data columns for which products go through complex BLAS on the matrix itself (one pass,
#: memory-bound); more columns go through blocks of stacked rows (half the arithmetic)
COMPLEX_PRODUCT_MAX_COLUMNS = 8
#: rows per block of stacked rows built on the fly (rows mode)
ROW_BLOCK = 512


def stacks_operator(rows: int, voxels: int, dtype="float64") -> bool:
    """Whether the numpy operator of an (R, P) matrix in ``dtype`` holds the stacked (2R, P) array
    (at most :data:`STACKED_MAX_BYTES`) or works from the complex rows ("rows mode")."""
    return 2 * rows * voxels * np.dtype(dtype).itemsize <= STACKED_MAX_BYTES


def choose_strategy(requested: str, size: int, limit: int) -> str:
    """``"dense"`` when ``size <= limit`` else ``"large"``, unless ``requested`` names one."""
    if requested not in STRATEGIES:
        raise ValueError(f"strategy {requested!r}: expected one of {STRATEGIES}")
    if requested != "auto":
        return requested
    return "dense" if size <= limit else "large"


def matrix_scale(matrix: np.ndarray) -> float:
    """``sqrt(||A||_F^2 / P)`` of an (R, P) matrix (summed in row blocks, no full-size temporary);
    1.0 for an all-zero matrix."""
    m = np.asarray(matrix)
    if m.nbytes <= ENERGY_ONE_PASS_BYTES:  # small: one sum (the value 2D calibrations always had, to the bit)
        total = float(np.sum(np.abs(m) ** 2))
    else:
        total = float(np.sum(row_energies(m)))
    a = float(np.sqrt(total / m.shape[1]))
    return a if a > 0 else 1.0


def tikhonov_inverse(u: np.ndarray, s: np.ndarray, vt: np.ndarray, lam: float, keep=None) -> np.ndarray:
    """Tikhonov-regularised inverse ``V diag(s / (s² + λ)) Uᵀ`` (P, 2R) of a stacked real operator
    from its thin SVD ``u`` (2R, r), ``s`` (r,), ``vt`` (r, P); singular values where ``keep`` is
    False are dropped (truncated SVD). λ is in the operator's units (relative for a scaled one)."""
    filt = s / (s ** 2 + lam)
    if keep is not None:
        filt = np.where(keep, filt, 0.0)
    return (vt.T * filt) @ u.T


class SystemOperator:
    """Stacked, scaled real form of a system matrix with lazily cached per-matrix work.

    Attributes:
        A: (2R, P) ``[Re A; Im A] / scale`` in the working dtype (numpy, or torch on a device),
            built on first use (solvers that work on the complex rows never build it).
        scale: the factor ``a`` of the module docstring (float).
        dtype: numpy dtype name of the working precision; device: ``"cpu"`` or a torch device.
        image_shape: shape of one image ((Ny, Nx) or (Nz, Ny, Nx)); num_voxels: P;
        num_rows: 2R, the rows of the stacked matrix.
    """

    def __init__(self, system_matrix: SystemMatrix, dtype="float64", device: str = "cpu", backend=None):
        m = system_matrix.matrix
        self.system_matrix = system_matrix
        self.scale = matrix_scale(m)
        self.dtype = np.dtype(dtype)
        self.device = str(device)
        self.backend_name = backend or ("numpy" if self.device == "cpu" else "torch")
        if self.backend_name not in ("numpy", "torch") or (self.backend_name == "numpy" and self.device != "cpu"):
            raise ReconstructorError(f"operator backend {self.backend_name!r} on device {self.device!r} is not available")
        self.image_shape = tuple(system_matrix.image_shape)
        self.num_voxels = m.shape[1]
        self.num_rows = 2 * m.shape[0]
        self._cache: dict = {}
        #: False in rows mode (numpy, large matrix): products and row blocks come from the complex rows
        self.stacked = not self.on_cpu or stacks_operator(m.shape[0], m.shape[1], self.dtype)

    @property
    def A(self):
        """The stacked, scaled real matrix (2R, P) (see the class docstring), built once."""
        def build():  # written in place: no full-size temporaries beside the result
            m = self.system_matrix.matrix
            a = np.empty((2 * m.shape[0], m.shape[1]), self.dtype)
            np.divide(m.real, self.scale, out=a[: m.shape[0]], casting="unsafe")
            np.divide(m.imag, self.scale, out=a[m.shape[0]:], casting="unsafe")
            return self.backend(a)
        return self.memo("A", build)

    # -- arrays ---------------------------------------------------------------------------------
    @property
    def on_cpu(self) -> bool:
        """True for the numpy backend (arrays are numpy arrays)."""
        return self.backend_name == "numpy"

    def backend(self, array: np.ndarray):
        """A numpy array as this operator's array type (a torch tensor on its device for torch)."""
        if self.on_cpu:
            return array
        import torch
        return torch.as_tensor(np.ascontiguousarray(array), device=self.device)

    def memo(self, key: Hashable, build: Callable[[], object]):
        """Per-matrix value under ``key``, built by ``build()`` on first use and then reused. Torch
        values are built outside ``torch.inference_mode`` (and without autograd history), so a value
        first needed by an inference-only method (PP-MPI) still serves one that differentiates (DIP)."""
        if key not in self._cache:
            if self.on_cpu:
                self._cache[key] = build()
            else:
                import torch
                with torch.inference_mode(False), torch.no_grad():
                    self._cache[key] = build()
        return self._cache[key]

    # -- the linear map ---------------------------------------------------------------------------
    def data(self, spectra: np.ndarray):
        """Complex spectra (F, R) -> scaled stacked real data (2R, F) for the scaled operator."""
        s = np.asarray(spectra)
        return self.backend((np.concatenate([s.real, s.imag], axis=1).T / self.scale).astype(self.dtype))

    def rows(self, i0: int, i1: int, dtype=None):
        """Rows ``i0:i1`` of the stacked operator (i1 - i0, P) in ``dtype`` (default: working dtype):
        a view of :attr:`A`, or in rows mode built from the complex rows (a copy of the block)."""
        if self.stacked:
            block = self.A[i0:i1]
            return block if dtype is None else block.astype(dtype, copy=False)
        m, r = self.system_matrix.matrix, self.num_rows // 2
        out = np.empty((i1 - i0, self.num_voxels), dtype or self.dtype)
        re0, re1, im0, im1 = min(i0, r), min(i1, r), max(i0, r) - r, max(i1, r) - r
        np.divide(m[re0:re1].real, self.scale, out=out[: re1 - re0], casting="unsafe")
        np.divide(m[im0:im1].imag, self.scale, out=out[re1 - re0:], casting="unsafe")
        return out

    def _complex_rows(self):
        """The system matrix (R, P) in the working complex dtype (itself when it already is)."""
        cdtype = np.complex64 if self.dtype == np.float32 else np.complex128
        m = self.system_matrix.matrix
        return m if m.dtype == cdtype else self.memo("complex_rows", lambda: m.astype(cdtype))

    def _blocks(self):
        return [(i, min(i + ROW_BLOCK, self.num_rows)) for i in range(0, self.num_rows, ROW_BLOCK)]

    def forward(self, x):
        """A x: voxels (P, F) -> stacked data (2R, F)."""
        if self.stacked:
            return self.A @ x
        if x.shape[1] <= COMPLEX_PRODUCT_MAX_COLUMNS:  # one pass over the complex rows
            m = self._complex_rows()
            y = m @ x.astype(m.dtype)
            return (np.concatenate([y.real, y.imag]) / self.scale).astype(self.dtype, copy=False)
        out = np.empty((self.num_rows, x.shape[1]), np.result_type(self.dtype, x))
        for i0, i1 in self._blocks():
            out[i0:i1] = self.rows(i0, i1) @ x
        return out

    def adjoint(self, y):
        """Aᵀ y: stacked data (2R, F) -> voxels (P, F)."""
        if self.stacked:
            return self.A.T @ y
        r = self.num_rows // 2
        if y.shape[1] <= COMPLEX_PRODUCT_MAX_COLUMNS:  # Re(Mᵀ (y_re - i y_im)) = Re(M)ᵀ y_re + Im(M)ᵀ y_im
            m = self._complex_rows()
            c = (y[:r] - 1j * y[r:]).astype(m.dtype)
            return ((m.T @ c).real / self.scale).astype(self.dtype, copy=False)
        out = np.zeros((self.num_voxels, y.shape[1]), np.result_type(self.dtype, y))
        for i0, i1 in self._blocks():
            out += self.rows(i0, i1).T @ y[i0:i1]
        return out

    @property
    def unit(self) -> float:
        """The unit of the regularisation parameters (λ, ρ): the mean of AᵀA's eigenvalues on its
        range, ``||A||_F² / min(2R, P)``, in the scaled operator's units: ``max(1, P / 2R)``. It is 1
        (the mean diagonal of AᵀA, as RegularizedLeastSquares.jl normalises λ) when rows outnumber
        voxels, as in 2D calibrations; for a 3D calibration with P >> 2R the spectrum sits P/2R
        higher and a λ in this unit means the same filtering of it."""
        return max(1.0, self.num_voxels / self.num_rows)

    def noise_energy(self, noise, frames: int):
        """Expected ``||n||²`` per frame (F,) of the stacked scaled data for a noise estimate
        (``Σ_r σ_r² / scale²``), or None without one."""
        if noise is None:
            return None
        return np.sum(noise.rows(frames, self.num_rows // 2) ** 2, axis=1) / self.scale ** 2

    def column_energy(self) -> np.ndarray:
        """``Σ_rows A²`` per voxel (P,) float64 of the stacked operator, computed once in row blocks."""
        def build():
            total = np.zeros(self.num_voxels)
            for i0, i1 in self._blocks():
                block = self.host(self.rows(i0, i1)).astype(np.float64)
                total += np.einsum("ij,ij->j", block, block)
            return total
        return self.memo("column_energy", build)

    def normal_apply(self, x):
        """AᵀA x for voxel columns (P, F) without forming AᵀA. For a few frames on the CPU the rows
        of A are taken in blocks of about :data:`NORMAL_BLOCK_BYTES` whose two products run while
        the block is in cache: one pass over A from memory instead of two (a single frame on a
        large matrix is memory-bound). Otherwise ``Aᵀ(A x)``."""
        if not self.stacked:
            return self.adjoint(self.forward(x))
        a = self.A
        rows = max(8, NORMAL_BLOCK_BYTES // max(a.shape[1] * a.dtype.itemsize, 1)) if self.on_cpu else a.shape[0]
        if x.shape[1] > NORMAL_BLOCK_MAX_FRAMES or rows >= a.shape[0]:
            return a.T @ (a @ x)
        out = np.zeros((a.shape[1], x.shape[1]), dtype=np.result_type(a, x))
        for i in range(0, a.shape[0], rows):
            block = a[i:i + rows]
            out += block.T @ (block @ x)
        return out

    def normal_matrix(self):
        """AᵀA (P, P), computed once (in row blocks in rows mode)."""
        def build():
            if self.stacked:
                return self.A.T @ self.A
            out = np.zeros((self.num_voxels, self.num_voxels), self.dtype)
            for i0, i1 in self._blocks():
                block = self.rows(i0, i1)
                out += block.T @ block
            return out
        return self.memo("normal", build)

    def row_gram(self):
        """AAᵀ (2R, 2R) float64 (numpy or torch), computed once in row blocks in the working dtype
        (:func:`mpirecon.physics.linalg.row_gram`); the large strategies of pinv and ADMM (L1) share it."""
        from mpirecon.physics.linalg import row_gram
        return self.memo("row_gram", lambda: row_gram(self.rows, self.num_rows))

    def strategy(self, requested: str = "auto", svd: bool = False) -> str:
        """``"dense"`` or ``"large"`` for this matrix's P (see the module docstring); ``svd``: the
        limit of a full SVD (pinv) instead of a P x P factorisation."""
        return choose_strategy(requested, self.num_voxels, SVD_MAX_VOXELS if svd else DENSE_MAX_VOXELS)

    def frame_scales(self, b):
        """Per-frame scale ``max|Aᵀb|`` (F,) of stacked data (2R, F), used to make non-linear priors
        scale-equivariant: solving for ``b / s`` and multiplying by ``s`` gives ``x(k b) = k x(b)``.
        Zero frames get 1."""
        if self.on_cpu:
            s = np.max(np.abs(self.adjoint(b)), axis=0)
            return np.where(s > 0, s, 1.0)
        s = self.adjoint(b).abs().amax(dim=0)
        return s.where(s > 0, s.new_ones(()))

    # -- cached factorisations ------------------------------------------------------------------------
    def svd(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Thin SVD ``(u (2R, r), s (r,), vt (r, P))`` of the float64 stacked operator, computed once
        (on the CPU, numpy)."""
        def build():
            if not self.stacked:  # a float64 temporary, not kept (the SVD is only taken for P <= SVD_MAX_VOXELS)
                a = self.rows(0, self.num_rows, np.float64)
            else:
                a = self.A if self.on_cpu and self.dtype == np.float64 else self.host(self.A).astype(np.float64)
            return np.linalg.svd(a, full_matrices=False)
        return self.memo("svd", build)

    def spectrum(self) -> tuple[np.ndarray, np.ndarray]:
        """Left singular vectors ``u`` (2R, r) and singular values ``s`` (r,), descending, float64
        numpy, computed once: from the thin SVD when it fits (P <= SVD_MAX_VOXELS), else from the
        eigen-decomposition of the 2R x 2R row Gram AAᵀ (the cost follows the rows, not P)."""
        def build():
            if self.num_voxels <= SVD_MAX_VOXELS:
                u, s, _ = self.svd()
                return u, s
            s2, u = (self.host(a).astype(np.float64) for a in symmetric_eig(self.row_gram()))
            keep = slice(None, None, -1)
            return np.ascontiguousarray(u[:, keep]), np.sqrt(np.maximum(s2[keep], 0.0))
        return self.memo("spectrum", build)

    def normal_eig(self, rcond: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
        """Eigen-decomposition of AᵀA on its range, float64 numpy, computed once: ``V`` (P, r) and
        ``s²`` (r,) with ``AᵀA = V diag(s²) Vᵀ`` (singular values below ``rcond * s_max`` dropped),
        so ``(AᵀA + ρI)⁻¹ y = y/ρ - V diag(s²/(ρ(s²+ρ))) Vᵀ y`` for any ρ > 0 without a P x P matrix.
        From the thin SVD when it fits, else ``V = Aᵀ U diag(1/s)`` from :meth:`spectrum`."""
        def build():
            if self.num_voxels <= SVD_MAX_VOXELS:
                _, s, vt = self.svd()
                keep = s > rcond * s[0]
                return np.ascontiguousarray(vt[keep].T), s[keep] ** 2
            u, s = self.spectrum()
            keep = s > rcond * s[0]
            v = np.zeros((self.num_voxels, int(keep.sum())))
            for i0, i1 in self._blocks():  # Aᵀ U in float64, row block by row block
                v += self.host(self.rows(i0, i1)).astype(np.float64).T @ u[i0:i1, keep]
            return v / s[keep], s[keep] ** 2
        return self.memo(("normal_eig", rcond), build)

    def tikhonov_inverse(self, lam: float, rcond: float = 0.0) -> np.ndarray:
        """``(AᵀA + λI)⁻¹Aᵀ`` (P, 2R), float64, from the cached SVD; singular values below
        ``rcond * s_max`` are dropped."""
        u, s, vt = self.svd()
        return tikhonov_inverse(u, s, vt, lam, s > rcond * s[0])

    def float64_normal_matrix(self):
        """AᵀA (P, P) of the float64 CPU operator of the same matrix (numpy), what x-update
        factorisations are computed from whatever the working precision."""
        return operator_for(self.system_matrix, "float64").normal_matrix()

    def x_update(self, rho: float, transforms: tuple[str, ...] = (), strategy: str = "auto"):
        """The ADMM x-update solver for penalty ``rho`` and the non-identity splittings
        ``transforms`` (e.g. ``("gradient",)``), built once per key: :class:`~mpirecon.physics.xupdate.DenseXUpdate`
        for the dense strategy, :class:`~mpirecon.physics.xupdate.WoodburyXUpdate` for the large one."""
        from mpirecon.physics.xupdate import DenseXUpdate, WoodburyXUpdate
        kind = self.strategy(strategy)
        key = ("x_update", float(rho), tuple(transforms)) + (() if kind == "dense" else (kind,))
        build = DenseXUpdate.build if kind == "dense" else WoodburyXUpdate.build
        return self.memo(key, lambda: build(self, float(rho), tuple(transforms)))

    @staticmethod
    def host(array) -> np.ndarray:
        """A numpy copy of a numpy array or torch tensor."""
        if isinstance(array, np.ndarray):
            return array
        return array.detach().cpu().numpy()


#: kept for code written against round 1 (the stacked operator used to be called RealOperator)
RealOperator = SystemOperator


def operator_for(system_matrix: SystemMatrix, dtype="float64", device: str = "cpu", backend=None) -> SystemOperator:
    """The one :class:`SystemOperator` of ``system_matrix`` for (dtype, device, backend), cached in
    ``system_matrix.cache`` so every method bound to that matrix shares its set-up. ``backend``:
    "numpy" (default on the CPU) or "torch" (default elsewhere; on the CPU for torch methods)."""
    backend = backend or ("numpy" if str(device) == "cpu" else "torch")
    key = ("mpirecon.physics.operator", np.dtype(dtype).name, str(device), backend)
    op = system_matrix.cache.get(key)
    if op is None:
        op = system_matrix.cache[key] = SystemOperator(system_matrix, dtype, device, backend)
    return op


def frame_scales(op: SystemOperator, b) -> np.ndarray:
    """``op.frame_scales(b)`` (kept as a function for existing callers)."""
    return op.frame_scales(b)
