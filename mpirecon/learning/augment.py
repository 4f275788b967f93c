"""Physics augmentation: training signals measured with other physics than the calibration's.

A network trained on ``b = A c + n`` learns the calibration's physics exactly; the particles a
user measures relax differently, the receive chain filters and delays, and the harmonics decay
differently with another size distribution. To first order each of these multiplies every row
of the system matrix by a smooth complex gain of its frequency: a Debye relaxation change is
exactly ``(1 + iωτ_cal) / (1 + iωτ_meas)``, a receive chain ``e^{-iωΔt} / (1 + if/f_c)``, a size
change mostly a tilt of the harmonic amplitudes ``e^{γ f / f_max}``. :func:`physics_gains` draws
such gains per sample from wide, physically plausible ranges (not from any test set); the
training pairs become ``g ⊙ (A c)`` with the target ``c`` unchanged, each signal rescaled to its
unshifted energy (a user calibrates concentration with a reference sample).
"""
from __future__ import annotations

import math

import torch

#: relaxation times drawn for the calibration sample and the measured particles (s): MPI tracers
#: span about 0-10 µs (Néel and Brown relaxation)
TAU_MAX = 8e-6
#: receive timing offsets (s), either sign
DELAY_MAX = 50e-9
#: receive low-pass cut-offs, log-uniform between these multiples of the highest row frequency
CUTOFF_RANGE = (0.5, 20.0)
#: harmonic tilt γ of e^{γ f / f_max}, either sign
TILT_MAX = 1.0


def physics_gains(frequencies: torch.Tensor, n: int, gen: torch.Generator, share: float = 1.0) -> torch.Tensor:
    """Complex gains (n, M) for rows at ``frequencies`` (M,) Hz: a random relaxation change,
    receive low-pass, delay and harmonic tilt per sample (see the module docstring), for a
    ``share`` of the samples (the others get 1), drawn from ``gen``."""
    f = frequencies.to(torch.float64)[None, :]
    fmax = float(f.max()) if f.numel() else 1.0
    fmax = fmax if fmax > 0 else 1.0
    u = torch.rand((n, 5), generator=gen, dtype=torch.float64)
    tau_cal, tau_meas = u[:, :1] * TAU_MAX, u[:, 1:2] * TAU_MAX
    lo, hi = math.log(CUTOFF_RANGE[0] * fmax), math.log(CUTOFF_RANGE[1] * fmax)
    cutoff = torch.exp(lo + (hi - lo) * u[:, 2:3])
    delay = (2 * u[:, 3:4] - 1) * DELAY_MAX
    tilt = (2 * u[:, 4:5] - 1) * TILT_MAX
    w = 2 * math.pi * f
    debye = torch.complex(torch.ones_like(w * tau_cal), w * tau_cal) / torch.complex(torch.ones_like(w * tau_meas),
                                                                                   w * tau_meas)
    receive = torch.polar(torch.exp(tilt * f / fmax), -w * delay) / torch.complex(torch.ones_like(f / cutoff), f / cutoff)
    gains = debye * receive
    keep = torch.rand((n, 1), generator=gen) >= share
    return torch.where(keep, torch.ones_like(gains), gains).to(torch.complex64)


def shifted(clean: torch.Tensor, frequencies: torch.Tensor, gen: torch.Generator, share: float) -> torch.Tensor:
    """``clean`` (B, M) complex signals with :func:`physics_gains` applied, each rescaled to its
    own energy (concentration stays calibrated)."""
    g = physics_gains(frequencies, clean.shape[0], gen, share)
    out = clean * g
    # energies in float64 and relative to each signal's peak: any unit of the matrix (1e-23 V
    # squared would underflow in float32)
    peak = clean.abs().amax(1, keepdim=True).to(torch.float64)
    peak = torch.where(peak > 0, peak, torch.ones_like(peak))
    before = (clean.to(torch.complex128) / peak).abs().pow(2).sum(1, keepdim=True)
    after = (out.to(torch.complex128) / peak).abs().pow(2).sum(1, keepdim=True)
    ratio = torch.where(after > 0, before / torch.where(after > 0, after, torch.ones_like(after)), torch.ones_like(after))
    return out * ratio.sqrt().to(out.real.dtype)
