"""Regularised Kaczmarz (ART) as in MPIReco.jl / RegularizedLeastSquares.jl, vectorised.

Sequential Kaczmarz on the Tikhonov-augmented system with rows a_i updates, for i = 1..R,
``beta_i = (b_i - a_i x - λ v_i) / (||a_i||² + λ)``, ``x += a_iᴴ beta_i``, ``v_i += beta_i``.
Collecting the updates of a run of consecutive rows, ``delta`` solves the lower-triangular system
``(tril(A_k A_kᴴ) + λ I) delta = b_k - A_k x - λ v_k`` for that block of rows A_k — a
Gauss-Seidel sweep on ``(A Aᴴ + λI) y = b`` with ``x = Aᴴ y`` — so a block is one triangular
solve and two matrix products, batched over frames, with exactly the iterates of the row loop.

Large strategy (the numpy default): blocks of ``block_rows`` rows in order, each with its own
B x B triangular matrix (R·B numbers in all, no R x R Gram): true row-action sweeps, run through
BLAS (gemm/trsm, gemv/trsv for one frame) directly on the system matrix's own rows (views, no
copy: the iterates are conjugated so that both products read the C-ordered rows; the rows are
left unscaled with λ s² in place of λ, which gives the same iterates), so the only copy of the
matrix in memory is the one that was read (in complex64 for ``dtype="float32"``). Dense strategy (torch while R <= :data:`mpirecon.physics.operator.KACZMARZ_WHOLE_MAX_ROWS`,
or numpy when R <= ``block_rows``): one block of all R rows (an R x R triangular matrix), fewer
kernel launches on a GPU. ``python benchmarks/kaczmarz_reference.py --two-d`` compares both with
the MDF repository's row loop (identical iterates).
Constraints (real part, non-negativity) are applied after each sweep, as
RegularizedLeastSquares.jl does. numpy or torch (``device="cuda"`` / ``backend="torch"``).
``lam="auto"``: λ per frame from :mod:`mpirecon.optim.autoreg` (frames sharing a λ swept together), so
a frame's image does not depend on its batch.
"""
from __future__ import annotations

from typing import Annotated, Literal, Union

import numpy as np
from pydantic import Field

from mdf_io import SystemMatrix
from mpirecon.optim.autoreg import LAMBDA_HELP, is_auto, tikhonov_lambdas
from mpirecon.optim.classical import ClassicalConfig, classical_operator
from mpirecon.physics.linalg import cast_like, eye_like, is_numpy, solve_lower, zeros_like
from mpirecon.memory import MemoryEstimate, common_parts, real_size
from mpirecon.physics.operator import KACZMARZ_WHOLE_MAX_ROWS, choose_strategy, operator_for
from mpirecon.optim.priors import project_nonneg
from mpirecon.reconstructor import Capabilities, Reconstructor


class KaczmarzConfig(ClassicalConfig):
    lam: Union[Annotated[float, Field(ge=0)], Literal["auto"]] = Field(
        1e-2, description=LAMBDA_HELP + "; per frame")
    iterations: int = Field(10, ge=1, le=100000, description="number of sweeps over all rows")
    shuffle: bool = Field(False, description="visit rows in a seeded random order")
    seed: int = Field(0, description="seed of the row order when shuffle is on")
    enforce_real: bool = Field(True, description="keep the real part after every sweep")
    nonneg: bool = Field(True, description="project onto x >= 0 after every sweep (implies real)")
    block_rows: int = Field(192, ge=1, description="rows per block of the large strategy")


class Kaczmarz(Reconstructor):
    """Regularised Kaczmarz; see the module docstring for the vectorised sweep."""

    name = "kaczmarz"
    description = "regularised Kaczmarz / ART (Tikhonov), MPIReco.jl-style, vectorised sweeps"
    Config = KaczmarzConfig
    capabilities = Capabilities(supports_gpu=True)

    @classmethod
    def memory_estimate(cls, config, rows: int, voxels: int, frames: int) -> MemoryEstimate:
        """The matrix itself (a shuffled copy with ``shuffle``), B x B triangles per row block, the
        complex iterates of every frame."""
        prec = config.dtype
        c = 2 * real_size(prec)
        parts = common_parts(rows, voxels, frames, prec)
        block = min(config.block_rows, rows)
        parts["triangles"] = 2 * rows * block * c
        if config.shuffle:
            parts["shuffled rows"] = rows * voxels * c
        parts["iterates"] = 3 * voxels * frames * c + 4 * rows * frames * c
        return MemoryEstimate(parts, prec, "large" if rows > block else "dense")

    def _setup(self, system_matrix: SystemMatrix) -> None:
        cfg = self.config
        op = classical_operator(system_matrix, cfg)
        self.backend = op.backend
        self.host = op.host
        self.cdtype = cdtype = np.complex64 if cfg.dtype == "float32" else np.complex128
        self.scale = op.scale
        r = system_matrix.num_rows
        self.order = (np.random.default_rng(cfg.seed).permutation(r) if cfg.shuffle else np.arange(r))
        self.blas = _blas_kernels(cdtype) if op.on_cpu else None
        # numpy: always row blocks (BLAS on cache-sized blocks beats one R x R triangle); torch: the
        # whole R x R triangle while it is small (fewer kernel launches), blocks beyond
        self.strategy = choose_strategy(cfg.strategy, r, cfg.block_rows if self.blas else KACZMARZ_WHOLE_MAX_ROWS)
        block = r if self.strategy == "dense" else min(cfg.block_rows, r)
        spans = [(i, min(i + block, r)) for i in range(0, r, block)]

        def row_blocks():  # per (matrix, dtype, row order, blocks): shared by every lambda
            if self.blas:  # views of the matrix's own rows (no copy in the working dtype, natural order)
                rows = visiting_rows(system_matrix.matrix, self.order if cfg.shuffle else None, cdtype)
                return [(i0, i1, rows[i0:i1].T, None, conj_gram(rows[i0:i1])) for i0, i1 in spans]
            rows = [self._rows(system_matrix.matrix, i0, i1, cdtype) for i0, i1 in spans]  # block by block
            ah = op.backend(np.ascontiguousarray(np.concatenate(rows).conj().T)) if self.strategy == "dense" else None
            return [(i0, i1, op.backend(a), ah, op.backend(np.tril(a @ a.conj().T))) for (i0, i1), a in zip(spans, rows)]

        key = ("kaczmarz", cdtype, cfg.seed if cfg.shuffle else None, self.strategy, block, bool(self.blas))
        self.row_blocks = op.memo(key, row_blocks)
        self.num_voxels = system_matrix.num_voxels
        self.unit = op.unit  # λ is given relative to the operator's unit (mpirecon.physics.operator.SystemOperator.unit)
        self.blocks = None if is_auto(cfg.lam) else self._blocks(cfg.lam * self.unit)

    def _rows(self, matrix, i0: int, i1: int, cdtype) -> np.ndarray:
        """Rows ``i0:i1`` of the visiting order of ``matrix`` (R, P), scaled, in ``cdtype`` (torch path)."""
        return (matrix[self.order[i0:i1]] / self.scale).astype(cdtype, copy=False)

    def _blocks(self, lam: float) -> list:
        """(first row, end row, rows, A_kᴴ or None, lower triangle + λI) of every row block. The numpy
        path works on the unscaled rows (``rows`` is the Fortran view A_kᵀ, the triangle that of
        conj(A_k A_kᴴ)) with λ s², which gives the iterates of the scaled problem."""
        out = []
        lam = lam * self.scale ** 2 if self.blas else lam
        for i0, i1, a, ah, gram in self.row_blocks:
            lower = gram + lam * eye_like(gram, i1 - i0)
            out.append((i0, i1, a, ah, np.asfortranarray(lower) if self.blas else lower))
        return out

    def _solve(self, spectra: np.ndarray) -> np.ndarray:
        cfg = self.config
        rows = np.asarray(spectra)[:, self.order].T  # (R, F) in the visiting order
        # numpy: the conjugate problem on the unscaled rows (see _sweep_blas); torch: scaled data
        b = np.conj(rows).astype(self.cdtype) if self.blas else self.backend((rows / self.scale).astype(self.cdtype))
        if not is_auto(cfg.lam):
            return self.host(self._sweeps(b, cfg.lam * self.unit, self.blocks))
        # λ per frame; the frames that share a λ (values of the λ grid) are swept together
        op64 = operator_for(self.system_matrix, "float64")
        lams = tikhonov_lambdas(op64, op64.data(spectra), self.noise)
        self.solve_info["auto"] = {"lam": (lams / self.unit).tolist()}  # in the parameter's unit
        parts = {}
        for lam in np.unique(lams):
            cols = np.flatnonzero(lams == lam)
            parts[float(lam)] = (cols, self.host(self._sweeps(b[:, self.backend(cols) if not is_numpy(b) else cols],
                                                              float(lam), self._blocks(float(lam)))))
        first = next(iter(parts.values()))[1]
        out = np.empty((len(lams), first.shape[1]), dtype=first.dtype)
        for cols, part in parts.values():
            out[cols] = part
        return out

    def _sweeps(self, b, lam: float, blocks: list):
        """``iterations`` sweeps for data columns ``b`` (R, F) with λ and its row ``blocks``, the
        constraints applied after every sweep; returns the images (F, P) (real unless neither
        ``enforce_real`` nor ``nonneg``)."""
        cfg = self.config
        sweep = self._sweep_blas if self.blas else self._sweep
        lam = lam * self.scale ** 2 if self.blas else lam  # unscaled rows on the numpy path
        x = _zeros(b, self.num_voxels, b.shape[1])
        v = zeros_like(b)
        for _ in range(cfg.iterations):
            x = sweep(x, b, v, lam, blocks)
            if cfg.nonneg:
                x = cast_like(project_nonneg(x.real), b)
            elif cfg.enforce_real:
                x = cast_like(x.real, b)
        if cfg.enforce_real or cfg.nonneg:
            return x.real.T
        return np.conj(x).T if self.blas else x.T

    def _sweep(self, x, b, v, lam: float, blocks: list):
        """One sweep over the row ``blocks`` in order (torch); updates ``v`` in place, returns the new x."""
        for i0, i1, a, ah, lower in blocks:
            rhs = b[i0:i1] - a @ x - lam * v[i0:i1]
            delta = solve_lower(lower, rhs)
            x = x + (ah[:, i0:i1] @ delta if ah is not None else (a.T @ delta.conj()).conj())
            v[i0:i1] += delta
        return x

    def _sweep_blas(self, x, b, v, lam: float, blocks: list):
        """:meth:`_sweep` for numpy through BLAS, on the conjugated iterates: with x̄, b̄, v̄ the
        updates read ``conj(rhs) = b̄_k - λv̄_k - Ā_k x̄`` and ``x̄ += A_kᵀ δ̄``, so both products use
        the Fortran view ``A_kᵀ`` of the matrix's C-ordered rows (gemm ``trans_a=2`` gives Ā_k)
        without a copy; ``lower`` is conj(tril(A_k A_kᴴ)) + λI. gemm/trsm, or gemv/trsv for one frame."""
        if b.shape[1] == 1:
            return self._sweep_blas_one(x[:, 0], b[:, 0], v[:, 0], lam, blocks)[:, None]
        gemm, trsm = self.blas[:2]
        x = np.asfortranarray(x)
        for i0, i1, at, _, lower in blocks:
            rhs = gemm(-1.0, at, x, beta=1.0, c=np.asfortranarray(b[i0:i1] - lam * v[i0:i1]), trans_a=2, overwrite_c=1)
            delta = trsm(1.0, lower, rhs, lower=1, overwrite_b=1)
            v[i0:i1] += delta
            x = gemm(1.0, at, delta, beta=1.0, c=x, overwrite_c=1)
        return x

    def _sweep_blas_one(self, x, b, v, lam: float, blocks: list):
        """One frame (conjugated as :meth:`_sweep_blas`): x (P,), b and v (R,) (``v`` a view updated
        in place); returns the new x."""
        gemv, trsv = self.blas[2:]
        x = np.array(x)
        for i0, i1, at, _, lower in blocks:
            rhs = gemv(-1.0, at, x, beta=1.0, y=b[i0:i1] - lam * v[i0:i1], trans=2, overwrite_y=1)
            delta = trsv(lower, rhs, lower=1, overwrite_x=1)
            v[i0:i1] += delta
            x = gemv(1.0, at, delta, beta=1.0, y=x, overwrite_y=1)
        return x


def visiting_rows(matrix: np.ndarray, order, cdtype) -> np.ndarray:
    """The rows (R, P) in ``cdtype``, C-ordered: ``matrix`` itself when it already is (no copy), a
    copy when the dtype differs or ``order`` (a permutation, None: natural order) shuffles them."""
    rows = matrix if order is None else matrix[order]
    return np.ascontiguousarray(rows, dtype=cdtype)


def conj_gram(a: np.ndarray) -> np.ndarray:
    """``conj(tril(a aᴴ))`` (B, B) of a row block ``a`` (B, P)."""
    return np.tril(np.conj(a) @ a.T)


def _blas_kernels(cdtype):
    """(gemm, trsm, gemv, trsv) of scipy's BLAS for the complex dtype ``cdtype``."""
    from scipy.linalg import blas
    prefix = "z" if np.dtype(cdtype) == np.complex128 else "c"
    return tuple(getattr(blas, prefix + name) for name in ("gemm", "trsm", "gemv", "trsv"))


def _zeros(b, voxels: int, frames: int):
    """Complex zeros (voxels, frames) like the data ``b``."""
    if is_numpy(b):
        return np.zeros((voxels, frames), dtype=b.dtype, order="F")
    return b.new_zeros((voxels, frames))
