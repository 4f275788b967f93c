"""Deep image prior (Dittmer et al. 2020; Knopp & Grosser 2022): an untrained generator fitted
to each frame.

For every frame, an untrained U-Net ``f_θ`` with a fixed, seeded random input z is fitted by Adam
to the frame's data (the DERnet paper's set-up: lr 1e-3, 4000 iterations)::

    min_θ ||A f_θ(z) - b / s||²,    image = s · f_θ(z) >= 0 (softplus head)

with the shared scaled stacked operator A (2R x P) and data b (see :mod:`mpirecon.physics.operator`),
divided by the frame's scale ``s = max|Aᵀb|`` so one learning rate fits any signal level. The
network's structure is the only prior; fitting too long fits the noise, so a frame stops by the
discrepancy principle as soon as ``||A x - b/s||² <= τ² m / s²``, where m is the expected misfit
of the stacked scaled data: by default the larger of the noise energy ``Σ_r σ_r² / a²`` (``a`` the
operator scale, σ the per-row noise of ``self.noise``) and the misfit generalised
cross-validation sees (:func:`mpirecon.optim.autoreg.residual_targets`, which also counts the model
error of a noisy calibration; GCV alone without a noise estimate). ``misfit="noise"`` uses the
noise energy alone; then without a noise estimate every frame runs all iterations (a warning
says so, and the result's ``extra`` records it).

``tv > 0`` adds an isotropic total-variation term to the fit (DIP-TV, as in Dittmer et al.
2020): ``½||A f_θ(z) - b/s||² + μ TV(f_θ(z))``, μ in the units of ADMM-TV's ``mu``; the stop
still compares the data misfit alone with its target.

Frames are fitted together, each with its own generator (:mod:`.dip_generator`: grouped
convolutions over one flat parameter tensor); a stopped frame leaves the batch. The extra of
a result holds the iterations each frame used.
"""
from __future__ import annotations

import contextlib
import warnings
from typing import Annotated, Literal, Union

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from mdf_io import SystemMatrix
from mpirecon.memory import MemoryEstimate, common_parts, real_size, stacked_operator_bytes
from mpirecon.optim.autoreg import admm_mu, is_auto, residual_targets
from mpirecon.physics.operator import operator_for
from mpirecon.progress import Progress
from mpirecon.reconstructor import Capabilities, Reconstructor, ReconstructorConfig, ReconstructorError

from .dip_generator import GeneratorBatch, MaskedAdam

#: iterations between progress reports
REPORT_EVERY = 100


class DIPConfig(ReconstructorConfig):
    iterations: int = Field(6000, ge=1, le=1_000_000, description="most Adam iterations per frame (paper: 4000; "
                            "why 6000: docs/training.md)")
    lr: float = Field(6e-2, gt=0, description="Adam learning rate (paper: 1e-3; why larger: docs/training.md)")
    channels: int = Field(16, ge=1, le=256, description="feature maps of every generator convolution")
    depth: int = Field(1, ge=0, le=5, description="down/up-sampling levels of the generator U-Net")
    seed: int = Field(0, description="seed of the generator's initial weights and its fixed input z")
    stopping: Literal["discrepancy", "none"] = Field(
        "discrepancy", description="'discrepancy': stop a frame when ||Ax-b||² <= tau² x noise energy "
                                   "(needs a noise estimate); 'none': always run all iterations")
    tau: float = Field(1.0, gt=0, description="discrepancy factor τ (stop at τ² times the expected noise energy)")
    misfit: Literal["noise", "noise+gcv"] = Field(
        "noise+gcv", description="the expected misfit the stop aims at: 'noise', the noise estimate alone; "
                                 "'noise+gcv', never below the misfit GCV sees (model error of a noisy "
                                 "calibration, which the noise level does not count; GCV alone without an estimate)")
    tv: Union[Annotated[float, Field(ge=0)], Literal["auto"]] = Field(
        1e-4, description="weight μ of an isotropic total-variation term added to the fit (DIP-TV: min ½||Ax - b/s||² "
                          "+ μ TV(x), the units of ADMM-TV's mu), or 'auto': ADMM-TV's automatic μ per frame "
                          "(mpirecon.optim.autoreg.admm_mu, from the noise estimate); 0: plain DIP. 1e-4 vs 0 on the "
                          "realistic validation split (12 phantoms per SNR, depth 2, 4000 iterations): "
                          "18.38/19.62/18.55/20.48 vs 17.45/19.32/18.26/19.79 dB at 20/25/30/35 dB; 3e-4 and 1e-3 "
                          "were worse; 'auto' 18.57/19.68/18.66/20.10")
    batch_frames: int = Field(64, ge=1, description="frames fitted together in one batch")
    progress: bool = Field(True, description="report progress on stderr")
    threads: int = Field(1, ge=0, description="torch CPU threads during the fit, restored afterwards (the small "
                                              "convolutions gain little from more, and lose much on a busy "
                                              "machine); 0 leaves torch's setting")
    dtype: str = Field("float32", pattern="^(float32|float64)$", description="working precision")


class DeepImagePrior(Reconstructor):
    """Deep image prior, one untrained generator per frame (see the module docstring)."""

    name = "dip"
    description = "deep image prior: untrained U-Net fitted per frame by Adam, discrepancy-principle stop (slow)"
    Config = DIPConfig
    capabilities = Capabilities(supports_gpu=True, in_default_bench=False, bench_test_samples=50, supports_3d=True)

    def _setup(self, system_matrix: SystemMatrix) -> None:
        shape = tuple(system_matrix.image_shape)  # (Ny, Nx), or (Nz, Ny, Nx): a 3D generator
        self.host = operator_for(system_matrix, "float64")  # data and frame scales in float64
        self.op = operator_for(system_matrix, self.config.dtype, self.config.device, backend="torch")
        self.net = GeneratorBatch(shape, self.config.channels, self.config.depth)

    @classmethod
    def memory_estimate(cls, config: DIPConfig, rows: int, voxels: int, frames: int):
        """Estimated peak (:class:`mpirecon.memory.MemoryEstimate`): the matrix and frames; the torch
        operator (2R, P) in the working precision; the float64 operator of the data and scales (a
        complex128 copy of the rows when the stacked one is too large, e.g. 37^3); the generators'
        activations kept for the backward pass (about 24 maps of ``channels`` per voxel and frame of
        a batch)."""
        prec = config.dtype
        parts = common_parts(rows, voxels, frames, prec)
        parts["operator"] = 2 * rows * voxels * real_size(prec)
        parts["float64 operator"] = stacked_operator_bytes(rows, voxels, "float64") or rows * voxels * 16
        batch = min(frames, config.batch_frames)
        parts["activations"] = batch * voxels * config.channels * 24 * real_size(prec)
        return MemoryEstimate(parts, prec, "torch")

    def stop_levels(self, b: np.ndarray, scales: np.ndarray):
        """Discrepancy targets (F,) for stacked scaled data ``b`` (2R, F) with per-frame scales
        ``scales`` (F,), in the units of the fitted data ``b / s``; None when every frame runs all
        iterations."""
        if self.config.stopping == "none":
            return None
        if self.config.misfit == "noise+gcv":  # mpirecon.optim.autoreg's rule, as CGNR's iterations=auto
            return self.config.tau ** 2 * residual_targets(self.host, b, self.noise) / scales ** 2
        if self.noise is None:
            warnings.warn(f"{self.name}: no noise estimate (pass noise= or background frames): discrepancy "
                          "stop off, every frame runs all iterations", stacklevel=3)
            return None
        energy = np.broadcast_to(self.noise.expected_residual(), scales.shape)  # Σ_r σ_r², per frame
        return self.config.tau ** 2 * energy / (self.host.scale ** 2 * scales ** 2)

    def _solve(self, spectra: np.ndarray) -> np.ndarray:
        cfg = self.config
        b = self.host.data(spectra)  # (2R, F) float64
        s = self.host.frame_scales(b)
        targets = self.stop_levels(b, s)
        frames = b.shape[1]
        tv = admm_mu(self.host, b, self.noise, "tv") if is_auto(cfg.tv) else np.full(frames, float(cfg.tv))
        out = np.empty((frames, self.op.num_voxels))
        used = np.empty(frames, dtype=int)
        with Progress(cfg.iterations * frames, f"{self.name} ({frames} frame(s))", enabled=cfg.progress) as bar:
            for start in range(0, frames, cfg.batch_frames):
                sl = slice(start, start + cfg.batch_frames)
                x, used[sl] = self.fit((b[:, sl] / s[sl]).T, None if targets is None else targets[sl], bar,
                                       tv=tv[sl])
                out[sl] = x * s[sl, None]
        self.solve_info = {"iterations": used.tolist(), "tv": tv.tolist(),
                           "stopping": cfg.stopping if targets is not None or cfg.stopping == "none"
                           else "none (no noise estimate)"}
        return out

    def fit(self, data: np.ndarray, targets, bar=None, tv=None) -> tuple[np.ndarray, np.ndarray]:
        """Fit one generator per frame.

        Args:
            data: (F, 2R) stacked scaled data of each frame (already divided by its scale).
            targets: (F,) discrepancy levels in the same units, or None (run all iterations).
            bar: a :class:`~mpirecon.progress.Progress` to advance, or None.
            tv: (F,) TV weight of each frame (None: the configured ``tv``, a number).
        Returns:
            images (F, P) float64 in the data's units, and the Adam steps each frame took (F,).
        """
        cfg = self.config
        a = self.op.A
        y = torch.as_tensor(np.ascontiguousarray(data), device=a.device, dtype=a.dtype)
        frames = y.shape[0]
        theta, z = self.net.initial(frames, cfg.seed, a.device, a.dtype)
        opt = MaskedAdam(theta, cfg.lr)
        tgt = None if targets is None else torch.as_tensor(np.asarray(targets), device=a.device, dtype=a.dtype)
        if tv is None and is_auto(cfg.tv):
            raise ReconstructorError(f"{self.name}: fit with tv='auto' needs the per-frame weights (tv=...)")
        tvw = torch.as_tensor(np.broadcast_to(cfg.tv if tv is None else tv, (frames,)).astype(float),
                              device=a.device, dtype=a.dtype)
        use_tv = bool((tvw > 0).any())
        active = torch.arange(frames, device=a.device)
        out = torch.empty((frames, a.shape[1]), device=a.device, dtype=a.dtype)
        used = np.full(frames, cfg.iterations)
        with _deterministic(a.device), _threads(cfg.threads):
            for it in range(cfg.iterations):
                x = self.net.forward(opt.theta, z)
                res = ((x @ a.T - y) ** 2).sum(dim=1)
                loss = res + 2 * tvw * _total_variation(x, self.net.image_shape) if use_tv else res
                keep = None
                if tgt is not None:
                    done = res.detach() <= tgt
                    if bool(done.any()):
                        out[active[done]] = x.detach()[done]
                        used[active[done].cpu().numpy()] = it
                        keep = ~done
                if keep is not None and not bool(keep.any()):
                    active = active[:0]
                    break
                (loss.sum() if keep is None else loss[keep].sum()).backward()
                if keep is not None:
                    opt.keep(keep)
                    active, z, y, tgt, tvw = active[keep], z[keep], y[keep], tgt[keep], tvw[keep]
                opt.step()
                if bar is not None and (it + 1) % REPORT_EVERY == 0:
                    bar.update(REPORT_EVERY * frames, active=int(active.numel()),
                               residual=float(res.detach().mean()))
            if active.numel():
                with torch.no_grad():
                    out[active] = self.net.forward(opt.theta, z)
        return out.cpu().numpy().astype(np.float64), used


def _total_variation(x, image_shape) -> torch.Tensor:
    """Isotropic total variation (F,) of images x (F, P) of ``image_shape`` (2D or 3D), forward
    differences along every axis, Neumann border. Built in the order the 2D formula always was
    (differences along y then x, squares summed x first), so 2D fits keep their float32 gradients
    to the bit (a DIP fit amplifies a rounding change over thousands of steps)."""
    img = x.reshape((x.shape[0],) + tuple(image_shape))
    padded = []
    for axis in range(1, img.dim()):  # (z,) y, x
        head = (slice(None),) * axis
        diff = img[head + (slice(1, None),)] - img[head + (slice(None, -1),)]
        padded.append(F.pad(diff, [0, 0] * (img.dim() - 1 - axis) + [0, 1]))  # F.pad lists the last axis first
    total = padded[-1] ** 2 + padded[-2] ** 2
    if len(padded) == 3:
        total = total + padded[0] ** 2
    return torch.sqrt(total + 1e-12).sum(dim=tuple(range(1, img.dim())))


@contextlib.contextmanager
def _threads(n: int):
    """``torch.set_num_threads(n)`` for the duration (n = 0: unchanged)."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def _deterministic(device):
    """Deterministic cuDNN convolutions for the duration (same seed -> same output on a GPU too)."""
    if torch.device(device).type != "cuda":
        yield
        return
    flags = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = flags
