"""Image quality metrics exactly as the DERnet paper's eq. (12)-(14), vectorised over batches.

All functions take prediction and ground truth batches of shape (F, *image_shape*) (a single
image is treated as a batch of one) and return one value per image, shape (F,).
"""
from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity


def _batch(pred, gt):
    p = np.asarray(pred, dtype=np.float64)
    g = np.asarray(gt, dtype=np.float64)
    if p.shape != g.shape:
        raise ValueError(f"prediction shape {p.shape} != ground-truth shape {g.shape}")
    if p.ndim == 2:
        p, g = p[None], g[None]
    return p.reshape(p.shape[0], -1), g.reshape(g.shape[0], -1), p, g


def nrmse(pred, gt) -> np.ndarray:
    """Eq. (12): ||pred - gt||_F / ||gt||_F per image."""
    p, g, _, _ = _batch(pred, gt)
    return np.linalg.norm(p - g, axis=1) / np.linalg.norm(g, axis=1)


def psnr(pred, gt) -> np.ndarray:
    """Eq. (13): 10 log10(max(gt)² / MSE) per image, peak = maximum of the ground truth (dB)."""
    p, g, _, _ = _batch(pred, gt)
    mse = np.mean((p - g) ** 2, axis=1)
    return 10 * np.log10(np.max(g, axis=1) ** 2 / np.maximum(mse, 1e-300))


def ssim(pred, gt) -> np.ndarray:
    """Eq. (14) via ``skimage.metrics.structural_similarity`` per image, with
    ``data_range = max(gt) - min(gt)`` of that image's ground truth (7x7 window, skimage's
    defaults otherwise; images smaller than 7 use the largest odd window that fits; NaN for
    images smaller than 3 x 3, where no window of more than one pixel fits)."""
    _, _, p, g = _batch(pred, gt)
    win = min(7, *[s if s % 2 else s - 1 for s in p.shape[1:]])
    out = np.full(p.shape[0], np.nan)
    if win < 3:
        return out
    for i in range(p.shape[0]):  # skimage computes one image at a time
        rng = float(g[i].max() - g[i].min()) or 1.0
        out[i] = structural_similarity(p[i], g[i], data_range=rng, win_size=win)
    return out


def summarize(values: np.ndarray) -> dict:
    """{'mean': ..., 'std': ...} of a metric over a test set."""
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(np.mean(v)), "std": float(np.std(v))}
