"""Forward physics of the FFP scanner: fields, Langevin magnetisation, induced voltage spectra."""
from __future__ import annotations

import numpy as np

from .scanner import MU0, ParticleParams, ScannerParams


def langevin(xi: np.ndarray) -> np.ndarray:
    """Langevin function L(ξ) = coth ξ - 1/ξ, with the series ξ/3 - ξ³/45 near 0."""
    xi = np.asarray(xi, dtype=np.float64)
    small = np.abs(xi) < 1e-3
    safe = np.where(small, 1.0, xi)
    out = 1.0 / np.tanh(safe) - 1.0 / safe
    return np.where(small, xi / 3.0 - xi ** 3 / 45.0, out)


def applied_field(scanner: ScannerParams, positions: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Total field (T) at ``positions`` (Q, 2) m and ``times`` (V,) s -> (Q, V, 2).

    Selection field -G ∘ r (FFP at the origin) plus drive field A sin(2π f t) per axis.
    """
    g = np.asarray(scanner.gradient)
    a = np.asarray(scanner.drive_amplitude)
    f = scanner.drive_frequencies
    drive = a[None, :] * np.sin(2 * np.pi * f[None, :] * times[:, None])  # (V, 2)
    return -g[None, None, :] * positions[:, None, :] + drive[None, :, :]


def mean_moment(particles: ParticleParams, field: np.ndarray) -> np.ndarray:
    """Equilibrium mean moment direction-weighted by L(β|B|), (..., 2), in units of m (A m²)."""
    norm = np.sqrt(np.sum(field ** 2, axis=-1, keepdims=True))
    lang = langevin(particles.beta * norm)
    unit = np.divide(field, norm, out=np.zeros_like(field), where=norm > 0)
    return particles.moment * lang * unit


def voxel_spectra(scanner: ScannerParams, particles: ParticleParams, *, chunk: int = 4096) -> np.ndarray:
    """Noise-free system-matrix spectra (C, K, P) complex: induced voltage per unit concentration.

    u_c(t) = -μ0 d/dt ⟨m_c(r, t)⟩ over each voxel (sub-sampled delta sample), Debye relaxation
    as the first-order low-pass 1/(1 + i 2π f τ), time derivative as i 2π f in the (exact,
    periodic) spectrum. Spectra are unnormalised rfft's, as MDF readers compute them.
    """
    v = scanner.num_sampling_points
    t = scanner.times()
    freqs = np.fft.rfftfreq(v, 1.0 / scanner.base_frequency)
    centres = scanner.voxel_centers()
    nx, ny = scanner.grid
    step = scanner.calibration_fov / np.asarray([nx, ny])
    s = scanner.subsamples
    offs = ((np.arange(s) + 0.5) / s - 0.5)
    oy, ox = np.meshgrid(offs * step[1], offs * step[0], indexing="ij")
    sub = np.stack([ox.ravel(), oy.ravel()], axis=1)  # (S, 2)
    transfer = -MU0 * 2j * np.pi * freqs / (1.0 + 2j * np.pi * freqs * particles.relaxation_time)
    p = centres.shape[0]
    out = np.empty((scanner.receive_channels, freqs.size, p), np.complex128)
    per_chunk = max(1, chunk // sub.shape[0])
    for start in range(0, p, per_chunk):  # chunks bound memory; each chunk is fully vectorised
        c = centres[start:start + per_chunk]
        pos = (c[:, None, :] + sub[None, :, :]).reshape(-1, 2)
        m = mean_moment(particles, applied_field(scanner, pos, t))  # (Q, V, 2)
        m = m.reshape(c.shape[0], sub.shape[0], v, 2).mean(axis=1)  # voxel average
        spec = np.fft.rfft(m, axis=1)  # (P', K, 2)
        spec = spec * transfer[None, :, None]
        out[:, :, start:start + c.shape[0]] = np.transpose(spec[..., : scanner.receive_channels], (2, 1, 0))
    return out
