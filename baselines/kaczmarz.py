"""Regularised Kaczmarz (ART) as in MPIReco.jl / RegularizedLeastSquares.jl, vectorised.

Sequential Kaczmarz on the Tikhonov-augmented system with rows a_i updates, for i = 1..R,
``beta_i = (b_i - a_i x - λ v_i) / (||a_i||² + λ)``, ``x += a_iᴴ beta_i``, ``v_i += beta_i``.
Collecting the updates of a run of consecutive rows, ``delta`` solves the lower-triangular system
``(tril(A_k A_kᴴ) + λ I) delta = b_k - A_k x - λ v_k`` for that block of rows A_k — a
Gauss-Seidel sweep on ``(A Aᴴ + λI) y = b`` with ``x = Aᴴ y`` — so a block is one triangular
solve and two matrix products, batched over frames, with exactly the iterates of the row loop.

Dense strategy (R <= :data:`mpirecon.operator.KACZMARZ_WHOLE_MAX_ROWS`): one block of all R rows
(an R x R triangular matrix). Large strategy: blocks of ``block_rows`` rows in order, each with
its own B x B triangular matrix (R·B numbers in all, no R x R Gram): true row-action sweeps.
Constraints (real part, non-negativity) are applied after each sweep, as
RegularizedLeastSquares.jl does. numpy or torch (``device="cuda"`` / ``backend="torch"``).
``lam="auto"``: λ per frame from :mod:`mpirecon.autoreg` (frames sharing a λ swept together), so
a frame's image does not depend on its batch.
"""
from __future__ import annotations

from typing import Annotated, Literal, Union

import numpy as np
from pydantic import Field

from mdf_io import SystemMatrix
from mpirecon.autoreg import LAMBDA_HELP, is_auto, tikhonov_lambdas
from mpirecon.classical import ClassicalConfig, classical_operator
from mpirecon.linalg import cast_like, eye_like, is_numpy, solve_lower, tril, zeros_like
from mpirecon.operator import KACZMARZ_WHOLE_MAX_ROWS, choose_strategy, operator_for
from mpirecon.priors import project_nonneg
from mpirecon.reconstructor import Capabilities, Reconstructor


class KaczmarzConfig(ClassicalConfig):
    lam: Union[Annotated[float, Field(ge=0)], Literal["auto"]] = Field(
        1e-2, description=LAMBDA_HELP + "; per frame")
    iterations: int = Field(10, ge=1, le=100000, description="number of sweeps over all rows")
    shuffle: bool = Field(False, description="visit rows in a seeded random order")
    seed: int = Field(0, description="seed of the row order when shuffle is on")
    enforce_real: bool = Field(True, description="keep the real part after every sweep")
    nonneg: bool = Field(True, description="project onto x >= 0 after every sweep (implies real)")
    block_rows: int = Field(1024, ge=1, description="rows per block of the large strategy")


class Kaczmarz(Reconstructor):
    """Regularised Kaczmarz; see the module docstring for the vectorised sweep."""

    name = "kaczmarz"
    description = "regularised Kaczmarz / ART (Tikhonov), MPIReco.jl-style, vectorised sweeps"
    Config = KaczmarzConfig
    capabilities = Capabilities(supports_gpu=True)

    def _setup(self, system_matrix: SystemMatrix) -> None:
        cfg = self.config
        op = classical_operator(system_matrix, cfg)
        self.backend = op.backend
        self.host = op.host
        self.cdtype = cdtype = np.complex64 if cfg.dtype == "float32" else np.complex128
        self.scale = op.scale
        r = system_matrix.num_rows
        self.order = (np.random.default_rng(cfg.seed).permutation(r) if cfg.shuffle else np.arange(r))
        self.strategy = choose_strategy(cfg.strategy, r, KACZMARZ_WHOLE_MAX_ROWS)
        block = r if self.strategy == "dense" else min(cfg.block_rows, r)

        def rows_and_grams():  # per (matrix, dtype, row order, blocks): shared by every lambda
            a = (system_matrix.matrix / self.scale)[self.order].astype(cdtype)
            if self.strategy == "dense":
                ah = np.ascontiguousarray(a.conj().T)
                return op.backend(a), op.backend(ah), [op.backend(a @ ah)]
            grams = [op.backend(np.tril(a[i:i + block] @ a[i:i + block].conj().T)) for i in range(0, r, block)]
            return op.backend(a), None, grams

        key = ("kaczmarz", cdtype, cfg.seed if cfg.shuffle else None, self.strategy, block)
        self.A, self.AH, self.grams = op.memo(key, rows_and_grams)
        self.block = block
        self.blocks = None if is_auto(cfg.lam) else self._blocks(cfg.lam)

    def _blocks(self, lam: float) -> list:
        """(first row, end row, tril(A_k A_kᴴ) + λI) of every row block."""
        return [(i, i + g.shape[0], tril(g) + lam * eye_like(g, g.shape[0]))
                for i, g in zip(range(0, self.A.shape[0], self.block), self.grams)]

    def _solve(self, spectra: np.ndarray) -> np.ndarray:
        cfg = self.config
        b = self.backend((np.asarray(spectra)[:, self.order].T / self.scale).astype(self.cdtype))  # (R, F)
        if not is_auto(cfg.lam):
            return self.host(self._sweeps(b, cfg.lam, self.blocks))
        # λ per frame; the frames that share a λ (values of the λ grid) are swept together
        op64 = operator_for(self.system_matrix, "float64")
        lams = tikhonov_lambdas(op64, op64.data(spectra), self.noise)
        self.solve_info["auto"] = {"lam": lams.tolist()}
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
        x = _zeros(self.A, b.shape[1])
        v = zeros_like(b)
        for _ in range(cfg.iterations):
            x = self._sweep(x, b, v, lam, blocks)
            if cfg.nonneg:
                x = cast_like(project_nonneg(x.real), self.A)
            elif cfg.enforce_real:
                x = cast_like(x.real, self.A)
        return x.real.T if (cfg.enforce_real or cfg.nonneg) else x.T

    def _sweep(self, x, b, v, lam: float, blocks: list):
        """One sweep over the row ``blocks`` in order; updates ``v`` in place, returns the new x."""
        for i0, i1, lower in blocks:
            a = self.A[i0:i1]
            rhs = b[i0:i1] - a @ x - lam * v[i0:i1]
            delta = solve_lower(lower, rhs)
            x = x + (self.AH @ delta if self.AH is not None else (a.T @ delta.conj()).conj())
            v[i0:i1] += delta
        return x


def _zeros(a, frames: int):
    """Complex zeros (P, frames) like the rows ``a`` (R, P)."""
    if is_numpy(a):
        return np.zeros((a.shape[1], frames), dtype=a.dtype)
    return a.new_zeros((a.shape[1], frames))
