"""Regularised Kaczmarz (ART) as in MPIReco.jl / RegularizedLeastSquares.jl, vectorised.

Sequential Kaczmarz on the Tikhonov-augmented system with rows a_i updates, for i = 1..R,
``beta_i = (b_i - a_i x - λ v_i) / (||a_i||² + λ)``, ``x += a_iᴴ beta_i``, ``v_i += beta_i``.
Collecting the updates of one sweep, ``delta`` solves the lower-triangular system
``(tril(A Aᴴ) + λ I) delta = b - A x - λ v`` — a Gauss-Seidel sweep on ``(A Aᴴ + λI) y = b`` with
``x = Aᴴ y`` — so one sweep is one triangular solve and two matrix products, batched over
frames, with exactly the iterates of the row loop. Constraints (real part, non-negativity)
are applied after each sweep, as RegularizedLeastSquares.jl does.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg as sla
from typing import Annotated, Literal, Union

from pydantic import Field

from mdf_io import SystemMatrix
from mpirecon.autoreg import is_auto, tikhonov_lambdas
from mpirecon.priors import project_nonneg
from mpirecon.reconstructor import Reconstructor, ReconstructorConfig


class KaczmarzConfig(ReconstructorConfig):
    lam: Union[Annotated[float, Field(ge=0)], Literal["auto"]] = Field(
        1e-2, description="Tikhonov lambda relative to ||A||_F^2/P, or 'auto' (discrepancy principle, one "
        "lambda per batch: the median of the frames')")
    iterations: int = Field(10, ge=1, le=100000, description="number of sweeps over all rows")
    shuffle: bool = Field(False, description="visit rows in a seeded random order")
    seed: int = Field(0, description="seed of the row order when shuffle is on")
    enforce_real: bool = Field(True, description="keep the real part after every sweep")
    nonneg: bool = Field(True, description="project onto x >= 0 after every sweep (implies real)")


class Kaczmarz(Reconstructor):
    """Regularised Kaczmarz; see the module docstring for the vectorised sweep."""

    name = "kaczmarz"
    description = "regularised Kaczmarz / ART (Tikhonov), MPIReco.jl-style, vectorised sweeps"
    Config = KaczmarzConfig

    def _setup(self, system_matrix: SystemMatrix) -> None:
        cfg = self.config
        op = self.operator
        cdtype = np.complex64 if cfg.dtype == "float32" else np.complex128
        self.scale = op.scale
        r = system_matrix.num_rows
        self.order = (np.random.default_rng(cfg.seed).permutation(r) if cfg.shuffle else np.arange(r))

        def rows_and_gram():  # per (matrix, dtype, row order): shared by every lambda
            a = (system_matrix.matrix / self.scale)[self.order].astype(cdtype)
            ah = np.ascontiguousarray(a.conj().T)
            return a, ah, a @ ah

        self.A, self.AH, self.gram = op.memo(("kaczmarz", cdtype, cfg.seed if cfg.shuffle else None), rows_and_gram)
        if not is_auto(cfg.lam):
            self.lower = np.tril(self.gram) + cfg.lam * np.eye(r, dtype=cdtype)

    def _solve(self, spectra: np.ndarray) -> np.ndarray:
        cfg = self.config
        lam = cfg.lam
        if is_auto(lam):  # one λ per batch (the triangular factor depends on it)
            lam = float(np.median(tikhonov_lambdas(self.operator, self.operator.data(spectra), self.noise)))
            self.last_auto = {"lam": lam}
            self.lower = np.tril(self.gram) + lam * np.eye(self.gram.shape[0], dtype=self.gram.dtype)
        b = (np.asarray(spectra)[:, self.order].T / self.scale).astype(self.A.dtype)  # (R, F)
        x = np.zeros((self.A.shape[1], b.shape[1]), dtype=self.A.dtype)
        v = np.zeros_like(b)
        for _ in range(cfg.iterations):
            rhs = b - self.A @ x - lam * v
            delta = sla.solve_triangular(self.lower, rhs, lower=True, check_finite=False)
            x = x + self.AH @ delta
            v += delta
            if cfg.nonneg:
                x = project_nonneg(x.real).astype(self.A.dtype)
            elif cfg.enforce_real:
                x = x.real.astype(self.A.dtype)
        out = x.real.T if (cfg.enforce_real or cfg.nonneg) else x.T
        return out
