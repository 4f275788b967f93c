"""Complex Gaussian noise at a target SNR — one definition used everywhere in mpirecon.

**SNR definition.** For a clean signal b (R complex values) and noise n,
``SNR_dB = 10 log10( mean_r |b_r|² / mean_r |n_r|² )``: average signal power per row over the
expected noise power per row. Noise is circular complex Gaussian, ``n = σ/√2 (g₁ + i g₂)``, so
``E|n_r|² = σ²`` with ``σ² = mean|b|² / 10^(SNR_dB/10)``.
"""
from __future__ import annotations

import numpy as np


def noise_sigma(signal: np.ndarray, snr_db, axis=-1) -> np.ndarray:
    """σ (per sample along all but ``axis``) giving ``snr_db`` for ``signal`` (complex)."""
    power = np.mean(np.abs(signal) ** 2, axis=axis, keepdims=True)
    return np.sqrt(power / 10.0 ** (np.asarray(snr_db, dtype=np.float64) / 10.0).reshape(
        np.shape(snr_db) + (1,) * (np.ndim(power) - np.ndim(snr_db))))


def complex_noise(shape, sigma, rng: np.random.Generator) -> np.ndarray:
    """Circular complex Gaussian noise with E|n|² = σ² (σ broadcast to ``shape``)."""
    g = rng.standard_normal(tuple(shape) + (2,))
    return (np.asarray(sigma) / np.sqrt(2.0)) * (g[..., 0] + 1j * g[..., 1])


def add_noise(signal: np.ndarray, snr_db, rng: np.random.Generator) -> np.ndarray:
    """``signal`` (..., R) plus noise at ``snr_db`` per sample (scalar or one per leading index)."""
    sigma = noise_sigma(signal, snr_db)
    return signal + complex_noise(signal.shape, sigma, rng)


def measured_snr_db(clean: np.ndarray, noisy: np.ndarray, axis=-1) -> np.ndarray:
    """Achieved SNR (dB) of ``noisy`` relative to ``clean`` with the definition above."""
    n = noisy - clean
    return 10 * np.log10(np.mean(np.abs(clean) ** 2, axis=axis) / np.mean(np.abs(n) ** 2, axis=axis))
