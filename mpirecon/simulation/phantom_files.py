"""Phantoms from outside the generators: an image file resized to the grid, and a 2D phantom
extruded into a 3D volume (``mpirecon simulate measurement --phantom FILE``)."""
from __future__ import annotations

import numpy as np

from mpirecon.errors import ReconstructorError


def load_phantom_image(path, shape) -> np.ndarray:
    """Read a phantom from .npy (2D array) or an image file (PNG etc., grey levels), resized to
    ``shape`` (Ny, Nx) with anti-aliasing and scaled to max 1. Row 0 is the bottom (y up)."""
    from pathlib import Path

    from skimage import io as skio
    from skimage.transform import resize

    p = Path(path)
    try:
        if p.suffix == ".npy":
            img = np.load(p, allow_pickle=False)
        else:
            img = skio.imread(p)
            if img.ndim == 3:
                img = img[..., :3].mean(axis=-1)
            img = img[::-1]  # image files have row 0 at the top
        img = np.asarray(img, dtype=np.float64)
    except Exception as exc:  # noqa: BLE001 - any reader failure: not a usable image
        raise ReconstructorError(f"{p}: not a readable phantom image (.npy or an image file): "
                                 f"{exc.__class__.__name__}: {exc}") from None
    if img.ndim != 2 or not np.all(np.isfinite(img)):
        raise ReconstructorError(f"{p}: phantom must be a finite 2D array, got shape {img.shape}")
    img = resize(img, tuple(shape), anti_aliasing=True)
    img = np.clip(img, 0, None)
    return img / img.max() if img.max() > 0 else img


def extrude(image: np.ndarray, nz: int) -> np.ndarray:
    """A 3D phantom (Nz, Ny, Nx) from a 2D one (Ny, Nx): the image in the central slab of about
    half the z extent (at least one slice), zero elsewhere, so it is visible in every view."""
    lo = nz // 4
    hi = max(nz - nz // 4, lo + 1)
    out = np.zeros((nz,) + image.shape, dtype=np.float64)
    out[lo:hi] = image
    return out
