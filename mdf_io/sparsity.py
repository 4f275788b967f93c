"""Sparsity-transformed (compressed) calibrations, MDF 2.1 ``isSparsityTransformed``.

Each row of the system matrix (one period, channel and frequency; a function over the voxel
grid) is transformed by an orthonormal DCT of type I-IV over the grid axes (z, y, x), and only
its B largest coefficients are stored, as MPIReco.jl users do to keep 3D matrices manageable:

* ``/measurement/data``: J x C x K x (B + E), frames last: the B kept coefficients of every row,
  then the E background frames (untransformed spectra);
* ``/measurement/subsamplingIndices``: J x C x K x B, the 1-based index (x fastest, in 1..O with
  O = prod(size)) of each kept coefficient;
* ``/measurement/sparsityTransformation``: "DCT-I", "DCT-II", "DCT-III" or "DCT-IV";
* ``/acquisition/numFrames`` and ``isBackgroundFrame`` describe the acquisition (O voxel frames,
  then E background frames), as in an uncompressed file.

Reading scatters the coefficients and applies the inverse transform, so every solver sees the
ordinary (R x P) matrix; with all O coefficients kept the round trip is exact.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import numpy as np
import scipy.fft

from . import _h5
from .errors import MDFFormatError, MDFNotSupportedError

TRANSFORMS = {"DCT-I": 1, "DCT-II": 2, "DCT-III": 3, "DCT-IV": 4}
INDICES = "/measurement/subsamplingIndices"
NAME = "/measurement/sparsityTransformation"


@dataclass(frozen=True)
class Compression:
    """A compressed calibration's transform name and kept coefficient indices (J, C, K, B),
    0-based into the O grid coefficients (x fastest)."""

    transformation: str
    indices: np.ndarray

    @property
    def num_coefficients(self) -> int:
        """B, the coefficients stored per row."""
        return self.indices.shape[-1]


def _axes_shape(grid) -> tuple[int, int, int]:
    nx, ny, nz = (int(g) for g in grid)
    return nz, ny, nx


def _axes(shape) -> tuple[int, ...]:
    """Transformed axes of a (R, Nz, Ny, Nx) block: those longer than one voxel (a 1-point
    orthonormal DCT is the identity; DCT-I has none)."""
    return tuple(i + 1 for i, n in enumerate(shape) if n > 1)


def compress_rows(matrix: np.ndarray, grid, transformation: str, keep: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``keep`` largest coefficients of every row of ``matrix`` (R, P) under ``transformation``:
    (coefficients (R, B) complex, 0-based indices (R, B) increasing)."""
    kind = TRANSFORMS[transformation]
    r = matrix.shape[0]
    cube = np.asarray(matrix).reshape((r,) + _axes_shape(grid))
    coeff = scipy.fft.dctn(cube, type=kind, norm="ortho", axes=_axes(cube.shape[1:])).reshape(r, -1)
    keep = int(min(max(keep, 1), coeff.shape[1]))
    idx = np.sort(np.argsort(-np.abs(coeff), axis=1, kind="stable")[:, :keep], axis=1)
    return np.take_along_axis(coeff, idx, axis=1), idx


def expand_rows(coefficients: np.ndarray, indices: np.ndarray, grid, transformation: str) -> np.ndarray:
    """Rows (R, P) complex from their kept ``coefficients`` (R, B) at 0-based ``indices`` (R, B):
    scatter into the O coefficients and apply the inverse orthonormal transform."""
    shape = _axes_shape(grid)
    r = coefficients.shape[0]
    full = np.zeros((r, int(np.prod(shape))), dtype=np.complex128)
    np.put_along_axis(full, indices, coefficients, axis=1)
    cube = scipy.fft.idctn(full.reshape((r,) + shape), type=TRANSFORMS[transformation], norm="ortho",
                           axes=_axes(shape))
    return cube.reshape(r, -1)


def read_compression(f, path, j: int, c: int, k: int, voxels: int) -> Compression:
    """The validated :class:`Compression` of an open file whose data have J, C, K = ``j, c, k``
    and ``voxels`` foreground frames."""
    name = _h5.read_str(f, NAME, None)
    if name not in TRANSFORMS:
        raise MDFNotSupportedError(path, NAME, f"one of {', '.join(TRANSFORMS)}", repr(name))
    shape = _h5.shape_of(f, INDICES, _h5.require(f, INDICES))
    if len(shape) != 4 or tuple(shape[:3]) != (j, c, k) or not 1 <= shape[3] <= voxels:
        raise MDFFormatError(path, INDICES, f"shape ({j}, {c}, {k}, B) with 1 <= B <= {voxels}", f"shape {shape}")
    idx = _h5.read_array(f, INDICES, shape=tuple(shape), kinds="iu", max_elements=int(np.prod(shape)))
    idx = idx.astype(np.int64) - 1
    if idx.size and (idx.min() < 0 or idx.max() >= voxels):
        raise MDFFormatError(path, INDICES, f"1-based coefficient indices in 1..{voxels}",
                             f"values in {idx.min() + 1}..{idx.max() + 1}")
    ordered = np.sort(idx, axis=-1)
    if shape[3] > 1 and np.any(ordered[..., 1:] == ordered[..., :-1]):
        raise MDFFormatError(path, INDICES, "distinct indices per row", "repeated indices")
    return Compression(transformation=name, indices=idx)


def write_compression(group, compression: Union[Compression, None]) -> None:
    """Write the flag and, for a :class:`Compression`, its name and 1-based indices to the
    ``/measurement`` group ``group``."""
    _h5.write_bool(group, "isSparsityTransformed", compression is not None)
    if compression is not None:
        _h5.write_str(group, "sparsityTransformation", compression.transformation)
        group.create_dataset("subsamplingIndices", data=compression.indices.astype(np.int64) + 1)
