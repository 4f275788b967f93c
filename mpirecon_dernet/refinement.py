"""DERnet's refinement of the network image against the data, as one typed value (``refine``):

* ``{"kind": "none"}`` (also ``false`` or ``"none"``): the network image alone, the paper's DERnet;
* ``{"kind": "proximal", ...}`` (also ``true`` or ``"proximal"``; the default): a few ADMM
  iterations of ``½||Ax - b||² + μ/2 ||x - x_net||² + τ TV(x)``, x >= 0 (:mod:`.refine`), μ per
  frame from the expected data error (noise, and with ``misfit`` the data's misfit to the model,
  times (misfit / noise)^``misfit_exponent``);
* ``{"kind": "pnp", ...}`` (also ``"pnp"``): the core's plug-and-play ADMM
  (:func:`mpirecon.optim.pnp.pnp_admm`) warm-started at the network image with a denoiser as the prior.

Each kind carries only its own parameters, so none is inert.
"""
from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mpirecon.optim.autoreg import admm_mu, is_auto, residual_targets
from mpirecon.preprocess.noise import CALIBRATION_SNR
from mpirecon.optim.pnp import PnPIteration, pnp_admm, prepare_pnp
from mpirecon.threads import blas_single_threaded

from .refine import DEFAULT_RHO, misfit_adaptive_mu, noise_adaptive_mu, prepare, refine


class NoRefinement(BaseModel):
    """The network image alone (the paper's DERnet)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["none"] = "none"


class ProximalRefinement(BaseModel):
    """ADMM on the data term, a pull towards the network image, TV and x >= 0 (:func:`.refine.refine`)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["proximal"] = "proximal"
    mu: float = Field(0.1, gt=0, description="pull towards the network image (relative to ||A||_F^2/P), used when "
                      "the measurement's noise is unknown")
    error: Optional[float] = Field(0.4, gt=0, description="expected RMS error of the network image relative to its "
                                   "maximum: with a measured noise estimate the pull follows each frame's noise "
                                   "(MAP weight); None: always mu (0.1 until round 3, session 7, chosen with the "
                                   "slower rho 1.0; 0.3 in session 7, without misfit_exponent)")
    misfit: bool = Field(True, description="with a measured noise estimate, count the data's misfit to the model "
                         "(the GCV residual ADMM's automatic weights use) in the expected data error, not the noise "
                         "alone: under model error (other particles or scanner drift) the pull towards the network "
                         "image grows; false: the noise alone (round 3, session 2)")
    misfit_exponent: float = Field(1.0, ge=0, le=4, description="with misfit: the pull grows further by "
                                   "(misfit / noise)^exponent per frame, so data the calibration explains far worse "
                                   "than their noise trust the network more (model error is structured, not white; "
                                   "refine.misfit_adaptive_mu); 0: the MAP weight alone (until round 3, session 8)")
    iterations: int = Field(100, ge=0, le=10000, description="ADMM iterations (from the exact unconstrained refinement)")
    rho: float = Field(DEFAULT_RHO, gt=0, description="ADMM penalty (relative to the mean eigenvalue of AᵀA, as the "
                       "ADMM baselines' rho); until round 3, session 7: 1.0, too slow for a weak pull")
    tv: Union[Annotated[float, Field(ge=0)], Literal["auto"]] = Field(
        "auto", description="weight of a TV term (units of ADMM-TV's mu; 0: none), or 'auto': ADMM-TV's automatic "
        "mu per frame (mpirecon.optim.autoreg.admm_mu, from the noise estimate)")


class PnPRefinement(PnPIteration):
    """Plug-and-play ADMM from the network image (:func:`mpirecon.optim.pnp.pnp_admm` with ``init``); the
    denoiser is told the final noise level from the first iteration."""

    kind: Literal["pnp"] = "pnp"
    denoiser: str = Field("shipped", description="'shipped', 'published' or a denoiser file (mpirecon.models.denoiser)")
    iterations: int = Field(60, ge=1, le=10000)
    sigma_factor: float = Field(1.4, gt=0, description="κ of sigma_end='auto'")


Refinement = Annotated[Union[NoRefinement, ProximalRefinement, PnPRefinement], Field(discriminator="kind")]
SHORTHANDS = {False: "none", True: "proximal"}


def refinement_value(value):
    """``refine`` as given -> the tagged dict pydantic validates: false/true/"none"/"proximal"/"pnp"
    become ``{"kind": ...}`` with that kind's defaults; a dict without ``kind`` is a proximal one."""
    if isinstance(value, bool):
        return {"kind": SHORTHANDS[value]}
    if isinstance(value, str):
        return {"kind": value.strip().lower()}
    if isinstance(value, dict) and "kind" not in value:
        return dict(value, kind="proximal")
    return value


class Refiner:
    """A refinement bound to one system matrix: its per-matrix set-up once, then :meth:`__call__`
    per batch. ``operators(dtype, device, backend)`` gives the shared operators of the matrix."""

    def __init__(self, refinement, operators, device: str, dtype: str):
        self.refinement = refinement
        if isinstance(refinement, ProximalRefinement):
            self.op = operators("float64", "cpu", None)
            prepare(self.op, tv=is_auto(refinement.tv) or refinement.tv > 0, rho=refinement.rho)
        elif isinstance(refinement, PnPRefinement):
            import torch
            from mpirecon.models.denoiser import load_denoiser
            self.host = operators("float64", "cpu", None)
            self.op = operators(dtype, device, "torch")
            self.denoiser = load_denoiser(refinement.denoiser)  # WeightsError naming the file
            self.denoiser.net.to(torch.device(device), getattr(torch, dtype))
            prepare_pnp(self.op, refinement, self.host)

    def __call__(self, spectra: np.ndarray, images: np.ndarray, noise) -> tuple[np.ndarray, dict]:
        """Refined images (F, P) of network ``images`` for ``spectra`` (F, R), and what to report."""
        ref = self.refinement
        if isinstance(ref, NoRefinement):
            return images, {"refinement": "none"}
        if isinstance(ref, PnPRefinement):
            out, info = pnp_admm(self.op, self.host, spectra, self.denoiser, ref, noise=noise, init=images)
            return out, dict(info, refinement="pnp", denoiser=str(self.denoiser.source))
        with blas_single_threaded():  # after the network's torch pass: one pool at a time (mpirecon.threads)
            return self._proximal(ref, spectra, images, noise), {"refinement": "proximal"}

    def _proximal(self, ref, spectra: np.ndarray, images: np.ndarray, noise) -> np.ndarray:
        """The proximal refinement (F, P) of network ``images`` for ``spectra`` (F, R)."""
        op, mu, b = self.op, ref.mu, self.op.data(spectra)
        measured = ref.error is not None and noise is not None and noise.source != CALIBRATION_SNR
        # the expected misfit per frame (GCV over the cached spectrum), computed once for the pull and TV
        targets = residual_targets(op, b, noise) if (measured and ref.misfit) or is_auto(ref.tv) else None
        if measured:
            # the measurement's own noise (background frames or given); the calibration's SNR
            # describes the calibration, not the measurement, so it falls back to mu
            mu = (misfit_adaptive_mu(op, spectra, images, noise, ref.error, targets, ref.misfit_exponent)
                  if ref.misfit else noise_adaptive_mu(op, spectra, images, noise.sigma, ref.error))
        tv = admm_mu(op, b, noise, "tv", targets) if is_auto(ref.tv) else ref.tv
        return refine(op, spectra, images, mu=mu, iterations=ref.iterations, tv=tv, rho=ref.rho)
