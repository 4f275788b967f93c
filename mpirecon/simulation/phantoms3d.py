"""3D phantoms (particle concentration volumes), seeded and vectorised per batch.

Every generator has the signature ``generator(rng, n, shape) -> (n, Nz, Ny, Nx) float64`` with
non-negative values and maximum about 1 (relative concentration), on voxel-centre coordinates
in [-1, 1] per axis. Families (the MPI scenes of preclinical 3D scanners):

* ``tubes``        — 1-2 catheters / tubes: curved (quadratic Bézier) centre lines, radius
                     0.06-0.16 of the half-FOV, uniform filling.
* ``blobs``        — smooth sums of 2-5 anisotropic Gaussians (boluses).
* ``dot_clusters`` — 3-8 small spheres around a random centre, each with its own concentration.
* ``organs``       — 1-2 ellipsoidal regions with a smooth concentration (a gradient times a slow
                     modulation) and a soft edge (liver, kidney).
* ``layered``      — an organ with a tube and dots on top (a scene of several compartments).
* ``composite``    — the broad prior: random compositions of the primitives above and of
                     regions of thresholded smooth random fields (any topology), random dynamic range.

Evaluation-only families (never in the default training prior; the 3D realistic protocol's
unseen shapes):

* ``vessel_trees`` — a trunk with 2-4 branches of decreasing radius (vascular trees).
* ``shells``       — hollow ellipsoids of random thickness (a 3D ring: labelled membranes).
"""
from __future__ import annotations

import numpy as np

#: centre-line samples per tube (distance to the curve = distance to the nearest sample)
CURVE_SAMPLES = 24


def coords3(shape) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Voxel-centre coordinates in [-1, 1]: (zz, yy, xx), each (Nz, Ny, Nx)."""
    axes = [(np.arange(s) + 0.5) / s * 2 - 1 for s in shape]
    return tuple(np.meshgrid(*axes, indexing="ij"))


def _points(shape) -> np.ndarray:
    """Voxel centres (P, 3) in [-1, 1], (z, y, x), P = Nz Ny Nx."""
    return np.stack([c.ravel() for c in coords3(shape)], axis=1)


def _soft(d, edge: float = 0.04):
    """1 inside (d < 0), 0 outside, with a logistic edge of width ``edge``."""
    return 1.0 / (1.0 + np.exp(np.clip(d / edge, -50, 50)))


def _bezier(rng, n: int, spread: float = 0.8, samples: int = CURVE_SAMPLES) -> np.ndarray:
    """n random quadratic Bézier curves through the volume, sampled: (n, samples, 3)."""
    p0, p1, p2 = (rng.uniform(-spread, spread, (n, 1, 3)) for _ in range(3))
    t = np.linspace(0, 1, samples)[None, :, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t ** 2 * p2


def _curve_distance(points: np.ndarray, curves: np.ndarray) -> np.ndarray:
    """Distance (n, P) from every voxel centre ``points`` (P, 3) to sampled curves (n, S, 3)."""
    out = np.full((curves.shape[0], points.shape[0]), np.inf)
    for s in range(curves.shape[1]):  # S samples; each step is one (n, P) array operation
        d = np.sqrt(np.sum((points[None] - curves[:, s, None, :]) ** 2, axis=-1))
        np.minimum(out, d, out=out)
    return out


def _tube_images(rng, n, shape, curves, radius) -> np.ndarray:
    """Filled tubes (n, P) around ``curves`` (n, S, 3) with radii (n, 1)."""
    return _soft(_curve_distance(_points(shape), curves) - radius)


def tubes(rng, n, shape) -> np.ndarray:
    """1-2 curved tubes (catheters) of uniform concentration."""
    p = int(np.prod(shape))
    out = np.zeros((n, p))
    count = rng.integers(1, 3, n)
    for k in range(2):
        on = count > k
        img = _tube_images(rng, n, shape, _bezier(rng, n), rng.uniform(0.06, 0.16, (n, 1)))
        out = np.maximum(out, on[:, None] * rng.uniform(0.5, 1.0, (n, 1)) * img)
    return out.reshape((n,) + tuple(shape))


def vessel_trees(rng, n, shape) -> np.ndarray:
    """A trunk (radius 0.09-0.15) with 2-4 branches (radius 0.05-0.09) leaving it at random points."""
    pts = _points(shape)
    trunk = _bezier(rng, n, spread=0.85)
    out = _soft(_curve_distance(pts, trunk) - rng.uniform(0.09, 0.15, (n, 1)))
    branches = rng.integers(2, 5, n)
    for k in range(4):
        start = trunk[np.arange(n), rng.integers(4, CURVE_SAMPLES - 4, n)]  # (n, 3) on the trunk
        mid = start + rng.uniform(-0.5, 0.5, (n, 3))
        end = np.clip(mid + rng.uniform(-0.5, 0.5, (n, 3)), -0.95, 0.95)
        t = np.linspace(0, 1, CURVE_SAMPLES)[None, :, None]
        curve = (1 - t) ** 2 * start[:, None] + 2 * (1 - t) * t * mid[:, None] + t ** 2 * end[:, None]
        img = _soft(_curve_distance(pts, curve) - rng.uniform(0.05, 0.09, (n, 1)))
        out = np.maximum(out, (branches > k)[:, None] * rng.uniform(0.6, 1.0, (n, 1)) * img)
    return out.reshape((n,) + tuple(shape))


def blobs(rng, n, shape) -> np.ndarray:
    """Sums of 2-5 anisotropic Gaussians (widths 0.1-0.4), normalised to maximum 1."""
    pts = _points(shape)
    out = np.zeros((n, pts.shape[0]))
    count = rng.integers(2, 6, n)
    for k in range(5):
        c = rng.uniform(-0.7, 0.7, (n, 1, 3))
        w = rng.uniform(0.1, 0.4, (n, 1, 3))
        g = np.exp(-0.5 * np.sum(((pts[None] - c) / w) ** 2, axis=-1))
        out += (count > k)[:, None] * rng.uniform(0.3, 1.0, (n, 1)) * g
    return _unit_max(out).reshape((n,) + tuple(shape))


def dot_clusters(rng, n, shape) -> np.ndarray:
    """3-8 spheres (radius 0.07-0.13) within 0.5 of a random centre, concentrations 0.3-1."""
    pts = _points(shape)
    out = np.zeros((n, pts.shape[0]))
    centre = rng.uniform(-0.45, 0.45, (n, 1, 3))
    count = rng.integers(3, 9, n)
    for k in range(8):
        c = centre + rng.uniform(-0.5, 0.5, (n, 1, 3))
        d = np.sqrt(np.sum((pts[None] - c) ** 2, axis=-1)) - rng.uniform(0.07, 0.13, (n, 1))
        out = np.maximum(out, (count > k)[:, None] * rng.uniform(0.3, 1.0, (n, 1)) * _soft(d, 0.02))
    return out.reshape((n,) + tuple(shape))


def _ellipsoid_distance(pts, rng, n, lo=0.25, hi=0.6):
    """Signed normalised distance (n, P) to random rotated ellipsoids (semi-axes in [lo, hi])."""
    c = rng.uniform(-0.35, 0.35, (n, 1, 3))
    radii = rng.uniform(lo, hi, (n, 1, 3))
    q, _ = np.linalg.qr(rng.normal(size=(n, 3, 3)))  # random rotations, one per image
    local = np.einsum("npk,nkj->npj", pts[None] - c, q)
    return np.sqrt(np.sum((local / radii) ** 2, axis=-1)) - 1.0


def organs(rng, n, shape) -> np.ndarray:
    """1-2 ellipsoids with a smooth concentration: a linear gradient (0.4-1 across the organ)
    times a slow sinusoidal modulation, and a soft edge."""
    pts = _points(shape)
    out = np.zeros((n, pts.shape[0]))
    count = rng.integers(1, 3, n)
    for k in range(2):
        inside = _soft(_ellipsoid_distance(pts, rng, n), 0.08)
        direction = rng.normal(size=(n, 1, 3))
        direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
        ramp = 0.7 + 0.3 * np.sum(pts[None] * direction, axis=-1)
        freq = rng.uniform(1.0, 3.0, (n, 1, 3))
        phase = rng.uniform(0, 2 * np.pi, (n, 1))
        wave = 0.85 + 0.15 * np.sin(np.sum(pts[None] * freq, axis=-1) + phase)
        out = np.maximum(out, (count > k)[:, None] * rng.uniform(0.4, 1.0, (n, 1)) * inside * ramp * wave)
    return _unit_max(out).reshape((n,) + tuple(shape))


def shells(rng, n, shape) -> np.ndarray:
    """Hollow ellipsoids: a wall of thickness 0.15-0.35 (relative to the semi-axes)."""
    pts = _points(shape)
    d = _ellipsoid_distance(pts, rng, n, 0.35, 0.75)
    wall = rng.uniform(0.15, 0.35, (n, 1))
    img = _soft(d, 0.04) * _soft(-(d + wall), 0.04)
    return (rng.uniform(0.5, 1.0, (n, 1)) * img).reshape((n,) + tuple(shape))


def layered(rng, n, shape) -> np.ndarray:
    """An organ (at 30-60 % of the peak) with a tube and a dot cluster on top (each at full strength)."""
    base = organs(rng, n, shape) * rng.uniform(0.3, 0.6, (n,) + (1,) * len(shape))
    return np.maximum(base, np.maximum(tubes(rng, n, shape), dot_clusters(rng, n, shape)))


def _smooth_fields(rng, n, shape) -> np.ndarray:
    """Smooth random fields (n, P) in [0, 1]: white noise blurred with a random correlation length
    (1-3 voxels), each scaled to [0, 1]."""
    from scipy import ndimage
    out = np.empty((n,) + tuple(shape))
    for i, width in enumerate(rng.uniform(1.0, 3.0, n)):  # scipy filters one volume at a time
        out[i] = ndimage.gaussian_filter(rng.standard_normal(tuple(shape)), width, mode="wrap")
    out = out.reshape(n, -1)
    lo, hi = out.min(axis=1, keepdims=True), out.max(axis=1, keepdims=True)
    return (out - lo) / np.maximum(hi - lo, 1e-12)


def composite(rng, n, shape) -> np.ndarray:
    """The broad 3D prior: 1-4 primitives per volume, drawn from Gaussian spots (:func:`blobs`),
    tubes, small spheres, soft or hard ellipsoids with smooth concentration (:func:`organs`), regions
    of a thresholded smooth random field (any topology) and raw smooth fields, at random intensities
    (up to 1:10), summed or overlaid. No vessel trees, no hollow ellipsoids."""
    p = int(np.prod(shape))
    kinds = (blobs, tubes, dot_clusters, organs)
    out = np.zeros((n, p))
    count = rng.integers(1, 5, n)
    for k in range(4):
        pick = rng.integers(0, len(kinds) + 2, n)
        layer = np.zeros((n, p))
        for j, gen in enumerate(kinds):
            idx = np.flatnonzero(pick == j)
            if idx.size:
                layer[idx] = gen(rng, idx.size, shape).reshape(idx.size, p)
        idx = np.flatnonzero(pick >= len(kinds))
        if idx.size:
            field = _smooth_fields(rng, idx.size, shape)
            level = rng.uniform(0.5, 0.8, (idx.size, 1))
            thresholded = _soft(level - field, 0.03) * (0.6 + 0.4 * _smooth_fields(rng, idx.size, shape))
            layer[idx] = np.where((pick[idx] == len(kinds))[:, None], thresholded, field ** 3)
        weight = (count > k)[:, None] * np.exp(rng.uniform(np.log(0.1), 0.0, (n, 1)))
        out = np.where(rng.random((n, 1)) < 0.5, out + weight * layer, np.maximum(out, weight * layer))
    return _unit_max(out).reshape((n,) + tuple(shape))


def _unit_max(x: np.ndarray) -> np.ndarray:
    """Each row of x (n, P) divided by its maximum (zero rows stay zero)."""
    m = x.max(axis=1, keepdims=True)
    return np.where(m > 0, x / np.where(m > 0, m, 1), 0.0)


FAMILIES_3D = {"tubes": tubes, "blobs": blobs, "dot_clusters": dot_clusters, "organs": organs,
               "layered": layered, "composite": composite, "vessel_trees": vessel_trees, "shells": shells}
#: the default 3D training prior
TRAINING_FAMILIES_3D = ("tubes", "blobs", "dot_clusters", "organs", "layered", "composite")
#: 3D families never used for training by default
HOLDOUT_FAMILIES_3D = ("vessel_trees", "shells")
