"""Forward physics of the FFP scanner: fields, Langevin magnetisation, induced voltage spectra."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mpirecon.simulation.particles import MU0, ParticleParams, grid_points

if TYPE_CHECKING:
    from mpirecon.simulation.scanner import ScannerParams

#: memory for the time signals of one chunk of points (bytes); bounds the simulator's footprint
CHUNK_BYTES = 256 * 2 ** 20


def langevin(xi: np.ndarray) -> np.ndarray:
    """Langevin function L(ξ) = coth ξ - 1/ξ, with the series ξ/3 - ξ³/45 near 0."""
    xi = np.asarray(xi, dtype=np.float64)
    small = np.abs(xi) < 1e-3
    if not small.any():
        return 1.0 / np.tanh(xi) - 1.0 / xi
    safe = np.where(small, 1.0, xi)
    out = 1.0 / np.tanh(safe) - 1.0 / safe
    out[small] = xi[small] / 3.0 - xi[small] ** 3 / 45.0
    return out


def applied_field(scanner: ScannerParams, positions: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Total field (T) at ``positions`` (Q, d) m and ``times`` (V,) s -> (Q, V, d), d = 2 or 3.

    Selection field -G ∘ r (FFP at the origin) plus drive field A sin(2π f t) per axis.
    """
    return np.stack(field_components(scanner, positions, times), axis=-1)


def field_components(scanner: ScannerParams, positions: np.ndarray, times: np.ndarray) -> list[np.ndarray]:
    """The d components (Q, V) of :func:`applied_field`, each contiguous (faster than (Q, V, d))."""
    g = np.asarray(scanner.gradient)
    a = np.asarray(scanner.drive_amplitude)
    f = scanner.drive_frequencies
    return [-g[i] * positions[:, i:i + 1] + (a[i] * np.sin(2 * np.pi * f[i] * times))[None, :]
            for i in range(scanner.ndim)]


def mean_moment(particles: ParticleParams, field: np.ndarray) -> np.ndarray:
    """Equilibrium mean moment direction-weighted by L(β|B|), (..., d), in units of m (A m²)."""
    comps = [field[..., i] for i in range(field.shape[-1])]
    return np.stack(moment_components(particles, comps), axis=-1)


def moment_components(particles: ParticleParams, field: list[np.ndarray]) -> list[np.ndarray]:
    """:func:`mean_moment` on the field's components (list of d equal-shape arrays) -> d arrays."""
    sq = field[0] ** 2
    for comp in field[1:]:
        sq = sq + comp ** 2
    norm = np.sqrt(sq)
    scale = particles.moment * langevin(particles.beta * norm)
    if np.all(norm > 0):
        return [scale * (comp / norm) for comp in field]
    return [scale * np.divide(comp, norm, out=np.zeros_like(comp), where=norm > 0) for comp in field]


def voxel_spectra(scanner: ScannerParams, particles: ParticleParams, *, chunk_bytes: int = CHUNK_BYTES) -> np.ndarray:
    """Noise-free system-matrix spectra (C, K, P) complex: induced voltage per unit concentration.

    u_c(t) = -μ0 d/dt ⟨m_c(r, t)⟩ over each voxel (sub-sampled delta sample), Debye relaxation
    as the first-order low-pass 1/(1 + i 2π f τ), time derivative as i 2π f in the (exact,
    periodic) spectrum. Spectra are unnormalised rfft's, as MDF readers compute them. Only the
    K frequencies of ``scanner.kept_frequency_indices()`` are stored (all for the default), in
    ``scanner.spectrum_dtype``; voxels are computed in chunks of about ``chunk_bytes`` of time
    signals, so memory follows C·K·P, not the full spectrum.
    """
    v = scanner.num_sampling_points
    t = scanner.times()
    freqs = np.fft.rfftfreq(v, 1.0 / scanner.base_frequency)
    kept = scanner.kept_frequency_indices()
    full = kept.size == freqs.size
    centres = scanner.voxel_centers()
    d = scanner.ndim
    step = scanner.calibration_fov / np.asarray(scanner.grid)
    s = scanner.subsamples
    offs = ((np.arange(s) + 0.5) / s - 0.5)
    sub = grid_points([offs * step[a] for a in range(d)])  # (S, d)
    transfer = -MU0 * 2j * np.pi * freqs / (1.0 + 2j * np.pi * freqs * particles.relaxation_time)
    transfer = transfer if full else transfer[kept]
    p = centres.shape[0]
    out = np.empty((scanner.receive_channels, kept.size, p), scanner.spectrum_dtype)
    per_chunk = max(1, chunk_bytes // (sub.shape[0] * v * (d + 3) * 8))
    for start in range(0, p, per_chunk):  # chunks bound memory; each chunk is fully vectorised
        c = centres[start:start + per_chunk]
        pos = (c[:, None, :] + sub[None, :, :]).reshape(-1, d)
        moments = moment_components(particles, field_components(scanner, pos, t))  # d x (Q, V)
        for channel, m in enumerate(moments[: scanner.receive_channels]):
            m = m.reshape(c.shape[0], sub.shape[0], v).mean(axis=1)  # voxel average
            spec = np.fft.rfft(m, axis=1)  # (P', K)
            spec = spec if full else spec[:, kept]
            out[channel, :, start:start + c.shape[0]] = (spec * transfer[None, :]).T
    return out
