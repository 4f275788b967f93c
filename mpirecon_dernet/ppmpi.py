"""PP-MPI (Askin et al. 2022): plug-and-play ADMM with a learned image denoiser as the prior.

    x  = (AᵀA + ρI)⁻¹ (Aᵀb + ρ(z - u))      data consistency (shared ADMM factorisation)
    z  = max(D(x + u), 0)                    learned denoiser as proximal step, non-negativity
    u += x - z

The factorisation is :class:`mpirecon.admm.ADMMFactorization` (the same one the ADMM
baselines use), computed once per system matrix; iterations run in torch, batched over frames,
on the CPU or a GPU.
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Optional

import numpy as np
import torch
from pydantic import Field

from mdf_io import SystemMatrix
from mpirecon.admm import ADMMFactorization
from mpirecon.operator import RealOperator, frame_scales
from mpirecon.reconstructor import Capabilities, Reconstructor, ReconstructorConfig, ReconstructorError

from .denoiser import denoise, load_denoiser
from .weights import WeightsError


class PPMPIConfig(ReconstructorConfig):
    rho: float = Field(0.1, gt=0, description="ADMM penalty (relative to ||A||_F^2/P)")
    iterations: int = Field(30, ge=1, le=10000)
    nonneg: bool = Field(True)
    dtype: str = Field("float32", pattern="^(float32|float64)$")


class PPMPIReconstructor(Reconstructor):
    """Plug-and-play ADMM; ``weights`` = a denoiser file (default: the published PP-MPI RDN)."""

    name = "ppmpi"
    description = "PP-MPI plug-and-play ADMM with a learned RDN denoiser (published weights by default)"
    Config = PPMPIConfig
    capabilities = Capabilities(needs_weights=False, supports_gpu=True)

    def _load_weights(self, weights) -> None:
        try:
            self.denoiser = load_denoiser(weights)
        except WeightsError as exc:
            raise ReconstructorError(str(exc)) from None
        self.device = torch.device(self.config.device)
        self.tdtype = getattr(torch, self.config.dtype)
        self.denoiser.net.to(self.device, self.tdtype)

    def __init__(self, system_matrix: Optional[SystemMatrix] = None, *, weights=None, **params):
        super().__init__(None, weights=weights, **params)
        if weights is None:
            self._load_weights(None)
        if system_matrix is not None:
            self.bind(system_matrix)

    def _setup(self, system_matrix: SystemMatrix) -> None:
        self.op = RealOperator(system_matrix, "float64")
        fact = ADMMFactorization.build(self.op, self.config.rho, None)
        t = lambda a: torch.as_tensor(a, device=self.device, dtype=self.tdtype)  # noqa: E731
        self.factorization = ADMMFactorization(op=SimpleNamespace(A=t(fact.op.A)), rho=fact.rho, gradient=None,
                                               inverse=t(fact.inverse))
        self.image_shape = system_matrix.image_shape

    def _solve(self, spectra: np.ndarray) -> np.ndarray:
        b = self.op.data(spectra)
        s = frame_scales(self.op, b)
        bt = torch.as_tensor(b / s, device=self.device, dtype=self.tdtype)
        shape = self.image_shape
        nonneg = self.config.nonneg

        def prox(v: torch.Tensor) -> torch.Tensor:
            img = v.T.reshape((-1,) + tuple(shape))
            out = denoise(self.denoiser, img).reshape(img.shape[0], -1).T
            return out.clamp_min(0) if nonneg else out

        with torch.inference_mode():
            z = self.factorization.run(bt, prox, None, self.config.iterations)
        return (z.cpu().numpy().astype(np.float64) * s).T

