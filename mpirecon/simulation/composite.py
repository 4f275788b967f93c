"""A broad phantom prior: random compositions of primitives, so a learned method does not
depend on the shapes it saw.

:func:`composite` draws, per image, 1-6 primitives from: anisotropic Gaussian spots, soft or
hard filled ellipses, annuli, straight strokes, curved strokes (quadratic Bézier arcs),
thresholded or raw smooth random fields, piecewise-constant (Voronoi) regions and textured
patches; intensities span a random dynamic range (up to 1:20); primitives are summed or
overlaid; some images get a non-sparse background (constant or gradient) and a random blur.
It never draws the evaluation-only families (polygons with straight edges and corners,
spirals). Everything is vectorised over the batch; images are (n, Ny, Nx) with maximum 1.
"""
from __future__ import annotations

import numpy as np

MAX_PRIMITIVES = 6


def _coords(shape):
    """Pixel-centre coordinates in [-1, 1]: (yy, xx), each (Ny, Nx)."""
    ny, nx = shape
    return np.meshgrid((np.arange(ny) + 0.5) / ny * 2 - 1, (np.arange(nx) + 0.5) / nx * 2 - 1, indexing="ij")


def _u(rng, n, lo, hi):
    """Uniform draws (n, 1, 1) in [lo, hi), broadcastable over an image batch."""
    return rng.uniform(lo, hi, size=(n, 1, 1))


def _rotated(rng, n, yy, xx, spread=0.8):
    """Coordinates (u, v) rotated by a random angle about a random centre, each (n, Ny, Nx)."""
    th = _u(rng, n, 0, np.pi)
    cy, cx = _u(rng, n, -spread, spread), _u(rng, n, -spread, spread)
    u = np.cos(th) * (xx - cx) + np.sin(th) * (yy - cy)
    v = -np.sin(th) * (xx - cx) + np.cos(th) * (yy - cy)
    return u, v


def _soft_step(d, edge):
    """1 inside (d < 0), 0 outside, with a logistic edge of width ``edge`` (> 0)."""
    return 1.0 / (1.0 + np.exp(np.clip(d / edge, -50, 50)))


def spots(rng, n, yy, xx):
    u, v = _rotated(rng, n, yy, xx)
    a, b = _u(rng, n, 0.04, 0.35), _u(rng, n, 0.04, 0.35)
    return np.exp(-0.5 * ((u / a) ** 2 + (v / b) ** 2))


def ellipses(rng, n, yy, xx):
    u, v = _rotated(rng, n, yy, xx, 0.6)
    a, b = _u(rng, n, 0.1, 0.6), _u(rng, n, 0.1, 0.6)
    r = np.sqrt((u / a) ** 2 + (v / b) ** 2)
    return _soft_step(r - 1.0, _u(rng, n, 0.02, 0.3))


def annuli(rng, n, yy, xx):
    u, v = _rotated(rng, n, yy, xx, 0.5)
    a = _u(rng, n, 0.2, 0.7)
    b = a * _u(rng, n, 0.6, 1.0)
    r = np.sqrt((u / a) ** 2 + (v / b) ** 2)
    return _soft_step(np.abs(r - 1.0) - _u(rng, n, 0.1, 0.35), _u(rng, n, 0.02, 0.15))


def _stroke(rng, n, yy, xx, points):
    """Soft tube of random width around the polyline ``points`` (list of (n,1,1,2) arrays)."""
    best = np.full(np.broadcast(yy, points[0][..., 0]).shape, np.inf)
    for p0, p1 in zip(points[:-1], points[1:]):
        d = p1 - p0
        t = ((yy - p0[..., 0]) * d[..., 0] + (xx - p0[..., 1]) * d[..., 1]) / np.maximum(
            (d ** 2).sum(-1), 1e-12)
        t = np.clip(t, 0, 1)
        best = np.minimum(best, np.hypot(yy - p0[..., 0] - t * d[..., 0], xx - p0[..., 1] - t * d[..., 1]))
    width = _u(rng, n, 0.04, 0.15)
    return _soft_step(best - width, _u(rng, n, 0.02, 0.08))


def strokes(rng, n, yy, xx):
    p0 = rng.uniform(-0.9, 0.9, (n, 1, 1, 2))
    p1 = rng.uniform(-0.9, 0.9, (n, 1, 1, 2))
    return _stroke(rng, n, yy, xx, [p0, p1])


def arcs(rng, n, yy, xx, samples: int = 12):
    p0, c, p1 = (rng.uniform(-0.9, 0.9, (n, 1, 1, 2)) for _ in range(3))
    ts = np.linspace(0, 1, samples)
    pts = [(1 - t) ** 2 * p0 + 2 * (1 - t) * t * c + t ** 2 * p1 for t in ts]
    return _stroke(rng, n, yy, xx, pts)


def smooth_field(rng, n, shape, corr):
    """Band-limited Gaussian random fields (n, Ny, Nx), correlation length ``corr`` (n,1,1) in
    [-1, 1] units, scaled to [0, 1]."""
    ny, nx = shape
    fy = np.fft.fftfreq(ny)[:, None] * ny / 2.0
    fx = np.fft.fftfreq(nx)[None, :] * nx / 2.0
    spec = np.exp(-2 * (np.pi * corr) ** 2 * (fy ** 2 + fx ** 2))
    white = rng.normal(size=(n,) + tuple(shape))
    f = np.fft.ifft2(np.fft.fft2(white) * spec).real
    lo = f.min(axis=(1, 2), keepdims=True)
    hi = f.max(axis=(1, 2), keepdims=True)
    return (f - lo) / np.maximum(hi - lo, 1e-12)


def fields(rng, n, yy, xx):
    f = smooth_field(rng, n, yy.shape, _u(rng, n, 0.1, 0.5))
    level = _u(rng, n, 0.3, 0.8)
    hard = rng.random((n, 1, 1)) < 0.5
    return np.where(hard, f > level, np.clip((f - level) / (1 - level), 0, 1)).astype(float)


def regions(rng, n, yy, xx, seeds: int = 6):
    """Piecewise-constant Voronoi cells with random values inside a soft random ellipse."""
    sy = rng.uniform(-1, 1, (n, seeds, 1, 1))
    sx = rng.uniform(-1, 1, (n, seeds, 1, 1))
    cell = np.argmin((yy - sy) ** 2 + (xx - sx) ** 2, axis=1)
    values = rng.uniform(0, 1, (n, seeds))
    pc = np.take_along_axis(values, cell.reshape(n, -1), axis=1).reshape(cell.shape)
    return pc * ellipses(rng, n, yy, xx)


def textures(rng, n, yy, xx):
    fine = smooth_field(rng, n, yy.shape, _u(rng, n, 0.03, 0.08))
    return fine * ellipses(rng, n, yy, xx)


PRIMITIVES = (spots, ellipses, annuli, strokes, arcs, fields, regions, textures)


def _blur(images, sigma):
    """Gaussian blur of images (n, Ny, Nx) with a per-image σ (n,) in voxels: one zero-padded FFT
    filter for the whole batch."""
    n, ny, nx = images.shape
    pad = np.pad(images, ((0, 0), (ny // 2, ny // 2), (nx // 2, nx // 2)), mode="constant")
    fy = np.fft.fftfreq(pad.shape[1])[:, None]
    fx = np.fft.fftfreq(pad.shape[2])[None, :]
    h = np.exp(-2 * np.pi ** 2 * sigma[:, None, None] ** 2 * (fy ** 2 + fx ** 2))
    out = np.fft.ifft2(np.fft.fft2(pad) * h).real
    return np.clip(out[:, ny // 2:ny // 2 + ny, nx // 2:nx // 2 + nx], 0, None)


def composite(rng, n, shape) -> np.ndarray:
    """``n`` composite phantoms on grid ``shape`` = (Ny, Nx): (n, Ny, Nx) float64, max 1."""
    shape = tuple(int(s) for s in shape)
    yy, xx = _coords(shape)
    count = rng.integers(1, MAX_PRIMITIVES + 1, n)
    dyn = rng.uniform(1.0, 20.0, n)  # dynamic range: weakest / strongest primitive intensity
    overlay = rng.random(n) < 0.4  # max instead of sum
    out = np.zeros((n,) + shape)
    kinds = rng.integers(0, len(PRIMITIVES), (n, MAX_PRIMITIVES))
    for k in range(MAX_PRIMITIVES):
        active = np.flatnonzero(count > k)
        for j, prim in enumerate(PRIMITIVES):
            idx = active[kinds[active, k] == j]
            if not idx.size:
                continue
            amp = np.exp(-rng.uniform(0, np.log(dyn[idx])))[:, None, None]
            layer = amp * prim(rng, idx.size, yy, xx)
            out[idx] = np.where(overlay[idx, None, None], np.maximum(out[idx], layer), out[idx] + layer)
    bg = np.flatnonzero(rng.random(n) < 0.25)
    if bg.size:
        peak = out[bg].max(axis=(1, 2), keepdims=True)
        level = _u(rng, bg.size, 0.02, 0.25) * peak
        gy, gx = _u(rng, bg.size, -1, 1), _u(rng, bg.size, -1, 1)
        ramp = np.clip(1 + 0.5 * (gy * yy + gx * xx), 0, None)
        out[bg] += level * np.where(rng.random((bg.size, 1, 1)) < 0.5, 1.0, ramp)
    blur = np.flatnonzero(rng.random(n) < 0.4)
    if blur.size:
        out[blur] = _blur(out[blur], rng.uniform(0.3, 1.2, blur.size))
    m = out.max(axis=(1, 2), keepdims=True)
    return np.where(m > 0, out / np.where(m > 0, m, 1), 0.0)
