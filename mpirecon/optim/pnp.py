"""Plug-and-play ADMM (PP-MPI, Askin et al. 2022) with a learned denoiser as the prior:

    x  = (AᵀA + ρI)⁻¹ (Aᵀb + ρ(z - u))      data consistency (the operator's cached x-update)
    z  = max(D(x + u, σ_k), 0)               denoiser as proximal step, non-negativity
    u += x - z

on the scaled operator (ρ relative to ||A||_F²/P), batched over frames, on the CPU or a GPU
(3D grids: a 3D denoiser on the volume, or a 2D one slice by slice along the three axes,
averaged, :func:`mpirecon.models.denoiser.denoise_volume`)
(torch backend). :func:`pnp_admm` runs it from zero (``ppmpi``) or warm-started at another
method's images (``init=``, DERnet's plug-and-play refinement, as deepinv's ``init``). A
noise-aware denoiser is told σ_k, a geometric schedule from ``sigma_start`` to ``sigma_end`` (strong
denoising first, as DPIR); ``sigma_end="auto"`` follows each frame's expected relative data error.
"""
from __future__ import annotations

from contextlib import nullcontext
from typing import Annotated, Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mpirecon.optim.admm import admm
from mpirecon.optim.autoreg import is_auto, residual_targets
from mpirecon.optim.priors import Denoiser, NonNegative
from mpirecon.threads import blas_single_threaded


class PnPIteration(BaseModel):
    """The parameters of :func:`pnp_admm` from a warm start (``init``)."""

    model_config = ConfigDict(extra="forbid")

    rho: float = Field(0.1, gt=0, description="ADMM penalty (relative to ||A||_F^2/P)")
    iterations: int = Field(30, ge=1, le=10000)
    sigma_end: Union[Annotated[float, Field(gt=0)], Literal["auto"]] = Field(
        "auto", description="... in the last iteration (geometric in between); 'auto': per frame, sigma_factor x "
        "the frame's relative data error (expected misfit from the noise estimate, never below GCV's, over ||b||)")
    sigma_factor: float = Field(1.0, gt=0, description="κ of sigma_end='auto'")
    nonneg: bool = Field(True, description="non-negativity constraint, enforced in every iteration")


class PnPSettings(PnPIteration):
    """The parameters of :func:`pnp_admm` from zero: a noise schedule that starts strong."""

    sigma_start: float = Field(0.1, gt=0, description="noise std (relative to the image maximum) a noise-aware "
                               "denoiser is told in the first iteration (at least sigma_end)")


def relative_error(host, b: np.ndarray, noise) -> np.ndarray:
    """Each frame's expected data misfit over its data norm (F,), for stacked scaled data ``b``
    (2R, F) of the numpy operator ``host``: ``sqrt(m) / ||b||``, m the noise energy of ``noise``
    (a NoiseEstimate or None), never below the misfit GCV sees (:func:`mpirecon.optim.autoreg.residual_targets`)."""
    norms = np.linalg.norm(b, axis=0)
    return np.sqrt(residual_targets(host, b, noise)) / np.where(norms > 0, norms, 1.0)


def noise_schedule(settings: PnPIteration, host, b: np.ndarray, noise, warm: bool = False) -> np.ndarray:
    """The noise std (relative to the image maximum) told to the denoiser in each iteration, per
    frame (iterations, F): geometric from ``max(sigma_start, sigma_end)`` to ``sigma_end``, flat at
    ``sigma_end`` when ``warm`` (a warm start is already close) or without ``sigma_start``."""
    if is_auto(settings.sigma_end):
        end = settings.sigma_factor * relative_error(host, b, noise)
    else:
        end = np.full(b.shape[1], float(settings.sigma_end))
    first = getattr(settings, "sigma_start", None)
    start = end if warm or first is None else np.maximum(first, end)
    return np.geomspace(start, end, settings.iterations)


def prepare_pnp(op, settings: PnPIteration, host=None) -> None:
    """The per-matrix set-up of :func:`pnp_admm` (cached on the operators): the x-update
    factorisation of ``op`` for ``rho`` (in the operator's unit, as the ADMM solvers) and, for
    ``sigma_end='auto'``, the spectrum of the numpy ``host`` operator that GCV's misfit uses."""
    op.x_update(settings.rho * op.unit)
    if host is not None and is_auto(settings.sigma_end):
        host.spectrum()


def pnp_admm(op, host, spectra: np.ndarray, denoiser, settings: PnPIteration, *, noise=None,
             init: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """Plug-and-play ADMM on spectra (F, R complex) -> (images (F, P) float64, info).

    Args:
        op: the operator the iteration runs on, its dtype the working precision: the torch-backend
            :class:`~mpirecon.physics.operator.SystemOperator` (CPU or GPU), or a numpy one such as the
            compressed operator of a large calibration (the denoiser then gets tensors of its columns).
        host: the numpy operator the data, scales and noise schedule come from: the float64 operator
            of the same matrix, or ``op`` itself for a compressed operator (its data are ``Qᵀ b``).
        denoiser: a :class:`~mpirecon.models.denoiser.LoadedDenoiser` on ``op``'s device and dtype.
        noise: the frames' :class:`~mpirecon.preprocess.noise.NoiseEstimate` (or None), for ``sigma_end='auto'``.
        init: start images (F, P) in the output's units (x fastest), e.g. another method's; None: zero.
    Returns:
        images, and ``{"sigma_end": [...]}`` the final noise level told per frame.

    With a torch operator on the CPU numpy only prepares the data, on one BLAS thread, so no spinning
    BLAS workers hold the cores the torch iterations need (:mod:`mpirecon.threads`; the per-matrix
    set-up belongs in :func:`prepare_pnp`, before).
    """
    one_pool = not op.on_cpu and op.device == "cpu"  # numpy iterations are BLAS work; a GPU shares no cores
    with blas_single_threaded() if one_pool else nullcontext():
        return _iterate(op, host, spectra, denoiser, settings, noise, init)


def _iterate(op, host, spectra, denoiser, settings, noise, init):
    """The body of :func:`pnp_admm` (same arguments and result)."""
    import torch
    from mpirecon.models.denoiser import denoise, denoise_volume

    b = host.data(spectra)
    s = host.frame_scales(b)
    shape = tuple(host.image_shape)
    schedule = noise_schedule(settings, host, b, noise, warm=init is not None)
    device = torch.device("cpu" if op.on_cpu else op.device)
    dtype = getattr(torch, op.dtype.name)
    levels = iter(torch.as_tensor(schedule, device=device, dtype=dtype))  # one row per prox call
    if denoiser.dims > len(shape):
        raise ValueError(f"a {denoiser.dims}D denoiser cannot denoise {len(shape)}D images {shape}")
    apply = denoise_volume if len(shape) > denoiser.dims else denoise  # a 2D denoiser on 3D: along each axis

    def denoise_columns(v):
        t = torch.as_tensor(v, device=device, dtype=dtype)  # a numpy operator's columns: as a tensor
        img = t.T.reshape((-1,) + shape)
        out = apply(denoiser, img, next(levels)).reshape(img.shape[0], -1).T
        return out.numpy() if op.on_cpu else out

    def on_op(array):
        return np.asarray(array, dtype=op.dtype) if op.on_cpu else torch.as_tensor(array, device=device, dtype=dtype)

    terms = [Denoiser(denoise_columns)] + ([NonNegative()] if settings.nonneg else [])
    x_init = None if init is None else on_op(np.asarray(init).T / s)
    with torch.inference_mode():
        z = admm(op, on_op(b / s), terms, settings.rho * op.unit, settings.iterations, x_init=x_init)
    return (op.host(z).astype(np.float64) * s).T, {"sigma_end": schedule[-1].tolist()}

