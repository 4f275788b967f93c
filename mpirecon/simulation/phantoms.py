"""Phantoms (particle concentration images) on a voxel grid, seeded and vectorised per batch.

Every generator has the signature ``generator(rng, n, shape) -> (n, Ny, Nx) float64`` with
non-negative values, maximum about 1 (relative concentration). Families:

* ``digits``        — the DERnet paper's recipe (sec. 3.1(a)): digit image, central crop,
                      random rotation and placement, resized to the grid (shipped 8x8 digits,
                      see ``mpirecon/data/DIGITS_PROVENANCE.txt``).
* ``ellipses``      — 1-3 filled ellipses of random size, angle and intensity.
* ``rings``         — annuli.
* ``lines``         — thin straight lines of random width and orientation.
* ``vessels``       — smooth curved tubes (quadratic Bézier centre lines).
* ``dot_arrays``    — regular arrays of dots of varying spacing (resolution).
* ``dot_pairs``     — two dots at a random distance (resolution).
* ``concentration`` — dots of different concentrations.
* ``blobs``         — smooth sums of Gaussians.
* ``composite``     — the broad prior: random compositions of spots, ellipses, annuli, strokes,
                      arcs, smooth fields, piecewise-constant regions and textures, with random
                      dynamic range, backgrounds and blur (:mod:`.composite`).

Evaluation-only families (not in the default training prior, used for the realistic bench
protocol): ``polygons`` (random triangles, rectangles and crosses, like OpenMPI's shape
phantom) and ``spirals``.

Named fixed phantoms for demos (OpenMPI-style): ``shape``, ``resolution``, ``concentration``.
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Callable, Sequence

import numpy as np
from scipy import ndimage

from mpirecon.errors import ReconstructorError
from mpirecon.simulation.composite import _coords, _u, composite
from mpirecon.simulation.phantoms3d import FAMILIES_3D, HOLDOUT_FAMILIES_3D, TRAINING_FAMILIES_3D
from mpirecon.simulation.phantoms3d import blobs as blobs_3d

Generator = Callable[[np.random.Generator, int, tuple], np.ndarray]


@lru_cache(maxsize=1)
def digit_images() -> np.ndarray:
    """The shipped digit images, (1797, 8, 8) float64 in [0, 1]."""
    with resources.files("mpirecon.data").joinpath("digits8x8.npz").open("rb") as fh:
        data = np.load(fh)
        return data["images"].astype(np.float64) / 16.0


def _bilinear(images: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Sample images (n, H, W) at float row ``u`` / column ``v`` (n, Ny, Nx), zero outside."""
    n, h, w = images.shape
    u0 = np.floor(u).astype(np.int64)
    v0 = np.floor(v).astype(np.int64)
    du, dv = u - u0, v - v0
    out = np.zeros(u.shape)
    idx = np.arange(n)[:, None, None]
    for a, wa in ((0, 1 - du), (1, du)):
        for b, wb in ((0, 1 - dv), (1, dv)):
            uu, vv = u0 + a, v0 + b
            inside = (uu >= 0) & (uu < h) & (vv >= 0) & (vv < w)
            vals = images[idx, np.clip(uu, 0, h - 1), np.clip(vv, 0, w - 1)]
            out += np.where(inside, vals, 0.0) * wa * wb
    return out


def digits(rng, n, shape, *, pool: np.ndarray | None = None) -> np.ndarray:
    """Digits: crop (the 8x8 digits are already cropped), rotate, place and resize to ``shape``."""
    imgs = digit_images() if pool is None else pool
    pick = imgs[rng.integers(0, imgs.shape[0], n)]
    yy, xx = _coords(shape)
    size = _u(rng, n, 0.55, 0.95)  # digit side as a fraction of the FOV
    theta = _u(rng, n, -np.pi, np.pi)
    cy = _u(rng, n, -1, 1) * (1 - size)
    cx = _u(rng, n, -1, 1) * (1 - size)
    ry, rx = (yy - cy), (xx - cx)
    cos, sin = np.cos(theta), np.sin(theta)
    py = (cos * ry - sin * rx) / size  # in [-1, 1] over the digit
    px = (sin * ry + cos * rx) / size
    out = _bilinear(pick, (py + 1) / 2 * 8 - 0.5, (px + 1) / 2 * 8 - 0.5)
    return _normalise(out)


def ellipses(rng, n, shape) -> np.ndarray:
    """1-3 filled ellipses per image with random centre, semi-axes, angle and intensity."""
    yy, xx = _coords(shape)
    out = np.zeros((n,) + tuple(shape))
    count = rng.integers(1, 4, n)
    for i in range(3):
        active = (count > i)[:, None, None]
        cy, cx = _u(rng, n, -0.6, 0.6), _u(rng, n, -0.6, 0.6)
        a, b = _u(rng, n, 0.12, 0.5), _u(rng, n, 0.08, 0.35)
        th = _u(rng, n, 0, np.pi)
        dy, dx = yy - cy, xx - cx
        u = (np.cos(th) * dx + np.sin(th) * dy) / a
        v = (-np.sin(th) * dx + np.cos(th) * dy) / b
        out += active * _u(rng, n, 0.3, 1.0) * (u ** 2 + v ** 2 <= 1)
    return _normalise(out)


def rings(rng, n, shape) -> np.ndarray:
    """Annuli with random centre, radius and wall thickness."""
    yy, xx = _coords(shape)
    cy, cx = _u(rng, n, -0.4, 0.4), _u(rng, n, -0.4, 0.4)
    r = _u(rng, n, 0.25, 0.6)
    t = _u(rng, n, 0.1, 0.25)
    d = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
    return _normalise((np.abs(d - r) <= t / 2).astype(float) * _u(rng, n, 0.5, 1.0))


def _segment_distance(yy, xx, p0, p1):
    """Distance of pixels to segments p0-p1 (each (n,1,1,2))."""
    d = p1 - p0
    py, px = yy - p0[..., 0], xx - p0[..., 1]
    l2 = np.maximum(d[..., 0] ** 2 + d[..., 1] ** 2, 1e-12)
    t = np.clip((py * d[..., 0] + px * d[..., 1]) / l2, 0, 1)
    return np.sqrt((py - t * d[..., 0]) ** 2 + (px - t * d[..., 1]) ** 2)


def lines(rng, n, shape) -> np.ndarray:
    """1-2 thin straight lines of random orientation and width."""
    yy, xx = _coords(shape)
    out = np.zeros((n,) + tuple(shape))
    count = rng.integers(1, 3, n)
    for i in range(2):
        p0 = rng.uniform(-0.8, 0.8, (n, 1, 1, 2))
        p1 = rng.uniform(-0.8, 0.8, (n, 1, 1, 2))
        w = _u(rng, n, 0.04, 0.12)
        dist = _segment_distance(yy, xx, p0, p1)
        out += (count > i)[:, None, None] * (dist <= w) * _u(rng, n, 0.5, 1.0)
    return _normalise(out)


def vessels(rng, n, shape, samples: int = 24) -> np.ndarray:
    """Curved tubes along quadratic Bézier curves, Gaussian cross-section."""
    yy, xx = _coords(shape)
    p0, p1, p2 = (rng.uniform(-0.9, 0.9, (n, 1, 1, 2)) for _ in range(3))
    width = _u(rng, n, 0.05, 0.12)
    best = np.full((n,) + tuple(shape), np.inf)
    ts = np.linspace(0, 1, samples)
    pts = [((1 - t) ** 2) * p0 + 2 * (1 - t) * t * p1 + t ** 2 * p2 for t in ts]
    for a, b in zip(pts[:-1], pts[1:]):
        best = np.minimum(best, _segment_distance(yy, xx, a, b))
    return _normalise(np.exp(-(best / width) ** 2))


def _dots(yy, xx, cy, cx, radius):
    return ((yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2).astype(float)


def dot_arrays(rng, n, shape) -> np.ndarray:
    """k x k arrays (k = 2..4) of dots with random spacing (resolution pattern)."""
    yy, xx = _coords(shape)
    out = np.zeros((n,) + tuple(shape))
    k = rng.integers(2, 5, n)
    spacing = rng.uniform(0.25, 0.5, n)
    radius = spacing * rng.uniform(0.2, 0.35, n)
    oy, ox = rng.uniform(-0.2, 0.2, n), rng.uniform(-0.2, 0.2, n)
    for i in range(4):
        for j in range(4):
            active = (i < k) & (j < k)
            cy = oy + (i - (k - 1) / 2) * spacing
            cx = ox + (j - (k - 1) / 2) * spacing
            out += active[:, None, None] * _dots(yy, xx, cy[:, None, None], cx[:, None, None],
                                                 radius[:, None, None])
    return _normalise(out)


def dot_pairs(rng, n, shape) -> np.ndarray:
    """Two dots at a random distance and orientation."""
    yy, xx = _coords(shape)
    c = rng.uniform(-0.4, 0.4, (n, 2))
    dist = rng.uniform(0.2, 0.8, n)
    th = rng.uniform(0, np.pi, n)
    r = rng.uniform(0.07, 0.15, n)[:, None, None]
    d = np.stack([np.sin(th), np.cos(th)], 1) * dist[:, None] / 2
    out = _dots(yy, xx, (c[:, 0] + d[:, 0])[:, None, None], (c[:, 1] + d[:, 1])[:, None, None], r)
    out += _dots(yy, xx, (c[:, 0] - d[:, 0])[:, None, None], (c[:, 1] - d[:, 1])[:, None, None], r)
    return _normalise(np.minimum(out, 1.0))


def concentration(rng, n, shape) -> np.ndarray:
    """2-5 dots of different concentrations (0.1 .. 1)."""
    yy, xx = _coords(shape)
    out = np.zeros((n,) + tuple(shape))
    count = rng.integers(2, 6, n)
    for i in range(5):
        cy, cx = _u(rng, n, -0.7, 0.7), _u(rng, n, -0.7, 0.7)
        r = _u(rng, n, 0.08, 0.2)
        out = np.maximum(out, (count > i)[:, None, None] * _u(rng, n, 0.1, 1.0) * _dots(yy, xx, cy, cx, r))
    return out / np.maximum(out.max(axis=(1, 2), keepdims=True), 1e-12)


def blobs(rng, n, shape) -> np.ndarray:
    """Smooth sums of 1-4 Gaussian blobs."""
    yy, xx = _coords(shape)
    out = np.zeros((n,) + tuple(shape))
    count = rng.integers(1, 5, n)
    for i in range(4):
        cy, cx = _u(rng, n, -0.7, 0.7), _u(rng, n, -0.7, 0.7)
        s = _u(rng, n, 0.08, 0.3)
        out += (count > i)[:, None, None] * _u(rng, n, 0.3, 1.0) * np.exp(
            -((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s ** 2))
    return _normalise(out)


def polygons(rng, n, shape) -> np.ndarray:
    """A random filled triangle, rectangle or cross per image, randomly rotated and scaled."""
    yy, xx = _coords(shape)
    th = _u(rng, n, 0, np.pi)
    size = _u(rng, n, 0.35, 0.75)
    cy, cx = _u(rng, n, -0.25, 0.25), _u(rng, n, -0.25, 0.25)
    u = (np.cos(th) * (xx - cx) + np.sin(th) * (yy - cy)) / size
    v = (-np.sin(th) * (xx - cx) + np.cos(th) * (yy - cy)) / size
    kind = rng.integers(0, 3, n)[:, None, None]
    tri = (v >= -0.6) & (v <= 0.9 - 1.7 * np.abs(u))
    rect = (np.abs(u) <= 0.9) & (np.abs(v) <= 0.5)
    cross = ((np.abs(u) <= 0.25) & (np.abs(v) <= 0.9)) | ((np.abs(v) <= 0.25) & (np.abs(u) <= 0.9))
    out = np.where(kind == 0, tri, np.where(kind == 1, rect, cross)).astype(float)
    return _normalise(out * _u(rng, n, 0.5, 1.0))


def spirals(rng, n, shape, samples: int = 40) -> np.ndarray:
    """Archimedean spiral tubes with random turns, phase and width."""
    yy, xx = _coords(shape)
    turns = rng.uniform(1.0, 2.0, n)
    phase = rng.uniform(0, 2 * np.pi, n)
    rmax = rng.uniform(0.5, 0.85, n)
    width = _u(rng, n, 0.05, 0.1)
    best = np.full((n,) + tuple(shape), np.inf)
    ts = np.linspace(0.05, 1, samples)
    pts = []
    for t in ts:
        ang = phase + 2 * np.pi * turns * t
        r = rmax * t
        pts.append(np.stack([r * np.sin(ang), r * np.cos(ang)], -1)[:, None, None, :])
    for a, b in zip(pts[:-1], pts[1:]):
        best = np.minimum(best, _segment_distance(yy, xx, a, b))
    return _normalise(np.exp(-(best / width) ** 2))


def _normalise(x: np.ndarray) -> np.ndarray:
    m = x.max(axis=tuple(range(1, x.ndim)), keepdims=True)
    return np.where(m > 0, x / np.where(m > 0, m, 1), 0.0)


FAMILIES: dict[str, Generator] = {
    "digits": digits, "ellipses": ellipses, "rings": rings, "lines": lines, "vessels": vessels,
    "dot_arrays": dot_arrays, "dot_pairs": dot_pairs, "concentration": concentration, "blobs": blobs,
    "composite": composite, "polygons": polygons, "spirals": spirals,
}

#: the default training prior: digits plus every procedural family above except the hold-outs
TRAINING_FAMILIES = ("digits", "ellipses", "rings", "lines", "vessels", "dot_arrays", "dot_pairs",
                     "concentration", "blobs")
#: families never used for training by default: the realistic protocol's unseen phantoms
HOLDOUT_FAMILIES = ("polygons", "spirals")


def resolve_families(families: Sequence[str], ndim: int) -> tuple[tuple[str, ...], dict]:
    """(family names, their generators) for a ``ndim``-axis grid: on a 3D grid the 2D default
    training / hold-out priors stand for the 3D ones (:mod:`.phantoms3d`); unknown names raise."""
    families, table = tuple(families), FAMILIES
    if ndim == 3:
        families = {TRAINING_FAMILIES: TRAINING_FAMILIES_3D, HOLDOUT_FAMILIES: HOLDOUT_FAMILIES_3D}.get(families, families)
        table = FAMILIES_3D
    unknown = [f for f in families if f not in table]
    if unknown or not families:
        raise ReconstructorError(f"phantom families {list(families)}: unknown {unknown} on a {ndim}D grid; "
                                 f"available: {sorted(table)}")
    return families, table


def generate(family: str, n: int, shape: Sequence[int], seed: int | np.random.Generator = 0) -> np.ndarray:
    """``n`` phantoms of ``family`` on grid ``shape`` = (Ny, Nx) or (Nz, Ny, Nx): (n, *shape) float64."""
    shape = tuple(int(s) for s in shape)
    (family,), table = resolve_families((family,), len(shape))
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return _fill_empty(rng, table[family](rng, int(n), shape), shape)


def _fill_empty(rng, images: np.ndarray, shape) -> np.ndarray:
    """Replace images that came out empty (e.g. a line thinner than a voxel that hits no voxel
    centre on a coarse grid) by a blob, so every phantom holds particles."""
    empty = np.flatnonzero(images.reshape(images.shape[0], -1).max(axis=1) <= 0)
    if empty.size:
        images[empty] = (blobs if len(shape) == 2 else blobs_3d)(rng, empty.size, shape)
    return images


def mixture(n: int, shape: Sequence[int], families: Sequence[str], seed: int | np.random.Generator = 0, *,
            superpose: float = 0.2, blur: float = 0.3, labels: bool = False):
    """A mixed batch: each image from a random family; with probability ``superpose`` a second
    image of another family is added; with probability ``blur`` it is blurred (σ ≤ 1 voxel);
    a random overall intensity in [0.5, 1] (relative concentration).

    ``shape`` (Ny, Nx) or (Nz, Ny, Nx) (3D families, :func:`resolve_families`).
    Returns images (n, *shape), or with ``labels`` (images, family name of each image (n,))."""
    shape = tuple(int(s) for s in shape)
    families, table = resolve_families(families, len(shape))
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    fam = rng.integers(0, len(families), n)
    out = np.zeros((n,) + shape)
    for i, name in enumerate(families):
        idx = np.flatnonzero(fam == i)
        if idx.size:
            out[idx] = table[name](rng, idx.size, shape)
    extra = np.flatnonzero(rng.random(n) < superpose)
    if extra.size:
        fam2 = rng.integers(0, len(families), extra.size)
        for i, name in enumerate(families):
            idx = extra[fam2 == i]
            if idx.size:
                out[idx] = np.maximum(out[idx], 0.7 * table[name](rng, idx.size, shape))
    out = _fill_empty(rng, out, shape)
    blur_idx = np.flatnonzero(rng.random(n) < blur)
    if blur_idx.size:
        sig = rng.uniform(0.3, 1.0, blur_idx.size)
        for j, s in zip(blur_idx, sig):  # per image: scipy's filter takes one sigma at a time
            out[j] = ndimage.gaussian_filter(out[j], s)
        out[blur_idx] = _normalise(out[blur_idx])
    out = out * rng.uniform(0.5, 1.0, (n,) + (1,) * len(shape))
    return (out, np.asarray(families, dtype=object)[fam]) if labels else out


# -- fixed named phantoms (OpenMPI-style) ---------------------------------------------------

def shape_phantom(shape) -> np.ndarray:
    """A '+'-shaped cross with a bar, like OpenMPI's shape phantom slice."""
    yy, xx = _coords(shape)
    cross = ((np.abs(xx) <= 0.14) & (np.abs(yy) <= 0.6)) | ((np.abs(yy) <= 0.14) & (np.abs(xx) <= 0.6))
    return cross.astype(float)


def resolution_phantom(shape) -> np.ndarray:
    """Five tubes (dots) at decreasing distance from a reference dot (resolution)."""
    yy, xx = _coords(shape)
    out = np.zeros(tuple(shape))
    for ang, dist in zip(np.linspace(0.1, 2 * np.pi - 0.9, 5), (0.75, 0.62, 0.5, 0.4, 0.32)):
        out = np.maximum(out, _dots(yy, xx, dist * np.sin(ang), dist * np.cos(ang), 0.1))
    return np.maximum(out, _dots(yy, xx, 0.0, 0.0, 0.12))


def concentration_phantom(shape) -> np.ndarray:
    """Four dots at concentrations 1, 1/2, 1/4, 1/8 (linearity / sensitivity)."""
    yy, xx = _coords(shape)
    out = np.zeros(tuple(shape))
    for (cy, cx), c in zip(((-0.45, -0.45), (-0.45, 0.45), (0.45, -0.45), (0.45, 0.45)),
                           (1.0, 0.5, 0.25, 0.125)):
        out += c * _dots(yy, xx, cy, cx, 0.22)
    return out


NAMED_PHANTOMS = {"shape": shape_phantom, "resolution": resolution_phantom,
                  "concentration": concentration_phantom}


def openmpi_designs(n: int, shape, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images (n, Ny, Nx) of the three OpenMPI designs in turn (shape, resolution,
    concentration), each scaled to a random maximum in [0.5, 1], and their labels (n,)
    ``openmpi_<design>``: an evaluation family of fixed designs, never a training family."""
    names = list(NAMED_PHANTOMS)
    which = np.arange(n) % len(names)
    designs = np.stack([NAMED_PHANTOMS[k](tuple(shape)) for k in names])
    images = designs[which] * rng.uniform(0.5, 1.0, (n,) + (1,) * len(shape))
    return images, np.asarray([f"openmpi_{names[i]}" for i in which], dtype=object)


def named_phantom(name: str, shape) -> np.ndarray:
    """One of :data:`NAMED_PHANTOMS` on grid ``shape`` = (Ny, Nx)."""
    if name not in NAMED_PHANTOMS:
        raise ReconstructorError(f"unknown phantom '{name}'; named phantoms: {', '.join(NAMED_PHANTOMS)}")
    return NAMED_PHANTOMS[name](tuple(shape))
