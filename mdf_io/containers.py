"""Typed in-memory objects returned by the readers and accepted by the writers.

Conventions used throughout mpirecon:

* **Rows** are (period j, receive channel c, frequency index k) triples, flattened with k
  fastest: ``row = (j * C + c) * K + k`` for a full spectrum. :class:`RowIndex` keeps the three
  integer arrays so that a selected subset still knows where each row came from.
* **Frequencies** are in Hz: ``k / (K_full - 1) * bandwidth`` (MDF v2 stores no axis).
* **Voxels** follow ``/calibration/order = "xyz"``: x runs fastest. A voxel vector of length
  P = Nx*Ny*Nz reshapes (C order) to an image of shape ``(Nz, Ny, Nx)``; 2D grids (Nz == 1)
  give images ``(Ny, Nx)``.
* **Spectra** are the unnormalised ``numpy.fft.rfft`` of the time signal over one period.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Optional

import numpy as np

from .errors import MDFFormatError, MDFMismatchError
from .geometry import Geometry, RowIndex, frequency_axis
from .metadata import Calibration, MDFHeader


#: matrix entries quantised at once by :meth:`SystemMatrix.fingerprint` (its memory stays a few blocks)
FINGERPRINT_BLOCK_ENTRIES = 2 ** 20
#: random probes per side of :meth:`SystemMatrix.signature`
SIGNATURE_PROBES = 4
#: relative tolerance of :func:`signatures_match` (the same file read in complex64 and complex128,
#: background subtracted in each: 1.2e-6 at 19^3; a 0.1 % gain change: 1e-3)
SIGNATURE_RTOL = 1e-4


def signatures_match(a, b, rtol: float = SIGNATURE_RTOL) -> bool:
    """Whether two :meth:`SystemMatrix.signature` lists belong to the same matrix (relative
    Euclidean distance at most ``rtol``)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return a.shape == b.shape and bool(np.linalg.norm(a - b) <= rtol * max(np.linalg.norm(a), 1e-300))


@dataclass
class SystemMatrix:
    """A calibration: complex matrix ``matrix`` (R rows x P voxels) and its geometry.

    Attributes:
        matrix: complex array (R, P), rows as in :class:`RowIndex`, columns voxels (x fastest).
        rows: origin of each row.
        frequencies: frequency of each row in Hz, shape (R,).
        snr: signal-to-noise ratio of each row (linear, as in ``/calibration/snr``), (R,).
        grid: (Nx, Ny, Nz) voxels.
        fov: field of view (m), (3,); center: its centre (m), (3,).
        bandwidth: receive bandwidth (Hz); num_sampling_points: V of the acquisition.
        header: the file's metadata (or defaults for an array-built matrix).
        background_corrected: whether the background was subtracted (by us or already in the file).
        source: path of the file it was read from, if any.
        selection: description of the frequency selection applied (filled by mpirecon).
        cache: derived per-matrix data (e.g. mpirecon's operator); a new matrix starts empty.
    """

    matrix: np.ndarray
    rows: RowIndex
    frequencies: np.ndarray
    snr: np.ndarray
    grid: tuple[int, int, int]
    fov: np.ndarray
    center: np.ndarray
    bandwidth: float
    num_sampling_points: int
    header: MDFHeader = field(default_factory=MDFHeader)
    background_corrected: bool = True
    source: Optional[str] = None
    selection: dict = field(default_factory=dict)
    #: rows already divided by the receiver's transfer function (``isTransferFunctionCorrected``)
    transfer_function_corrected: bool = False
    #: the receiver's transfer function (C, K_full) complex, when the file holds one
    transfer_function: Optional[np.ndarray] = field(default=None, repr=False, compare=False)
    #: per-matrix derived data (operators, factorisations) cached by consumers; never copied
    cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        self.matrix = np.asarray(self.matrix)
        if self.matrix.ndim != 2:
            raise MDFFormatError(self.source, "matrix", "a 2D array (rows x voxels)",
                                 f"shape {self.matrix.shape}")
        self.grid = tuple(int(g) for g in self.grid)
        if len(self.grid) != 3 or int(np.prod(self.grid)) != self.matrix.shape[1]:
            raise MDFFormatError(self.source, "/calibration/size",
                                 f"3 integers whose product is {self.matrix.shape[1]} (voxels)",
                                 f"{self.grid}")
        r = self.matrix.shape[0]
        self.frequencies = np.asarray(self.frequencies, dtype=np.float64)
        self.snr = np.asarray(self.snr, dtype=np.float64)
        for name, arr in (("frequencies", self.frequencies), ("snr", self.snr)):
            if arr.shape != (r,):
                raise MDFFormatError(self.source, name, f"shape ({r},)", f"shape {arr.shape}")
        if len(self.rows) != r:
            raise MDFFormatError(self.source, "rows", f"{r} rows", f"{len(self.rows)}")
        self.fov = np.asarray(self.fov, dtype=np.float64).reshape(3)
        self.center = np.asarray(self.center, dtype=np.float64).reshape(3)

    @classmethod
    def from_arrays(cls, matrix, grid, *, fov=(0.0, 0.0, 0.0), center=(0.0, 0.0, 0.0),
                    frequencies=None, snr=None, channels=None, frequency_indices=None,
                    bandwidth=None, num_sampling_points=None, header: MDFHeader | None = None):
        """Build a system matrix from plain arrays (e.g. a .mat or .npy calibration).

        Args:
            matrix: complex (R, P) array, voxels x-fastest.
            grid: (Nx, Ny) or (Nx, Ny, Nz).
            fov, center: metres, length 2 or 3.
            frequencies: (R,) Hz, optional. snr: (R,), default all ones... of +inf (keep all).
            channels, frequency_indices: (R,) row origins; default one channel, k = 0..R-1.
        """
        matrix = np.asarray(matrix)
        if not np.iscomplexobj(matrix):
            matrix = matrix.astype(np.complex128)
        r = matrix.shape[0]
        grid = tuple(grid) + (1,) * (3 - len(tuple(grid)))
        fov = tuple(fov) + (0.0,) * (3 - len(tuple(fov)))
        center = tuple(center) + (0.0,) * (3 - len(tuple(center)))
        ch = np.zeros(r, np.int64) if channels is None else np.asarray(channels)
        ki = np.arange(r) if frequency_indices is None else np.asarray(frequency_indices)
        v = num_sampling_points if num_sampling_points is not None else 2 * (int(ki.max()) + 1)
        bw = float(bandwidth) if bandwidth is not None else float(v // 2)
        freqs = (np.asarray(frequencies, np.float64) if frequencies is not None
                 else frequency_axis(v, bw)[ki])
        header = header or MDFHeader()
        header = header.model_copy(deep=True)
        header.calibration = Calibration(size=grid, field_of_view=fov, field_of_view_center=center)
        header.acquisition.receiver.num_channels = int(ch.max()) + 1
        header.acquisition.receiver.num_sampling_points = int(v)
        header.acquisition.receiver.bandwidth = bw
        return cls(matrix=matrix, rows=RowIndex(np.zeros(r, np.int64), ch, ki),
                   frequencies=freqs, snr=np.full(r, np.inf) if snr is None else snr,
                   grid=grid, fov=np.array(fov), center=np.array(center), bandwidth=bw,
                   num_sampling_points=int(v), header=header)

    @property
    def num_rows(self) -> int:
        return self.matrix.shape[0]

    @property
    def num_voxels(self) -> int:
        return self.matrix.shape[1]

    @property
    def image_shape(self) -> tuple[int, ...]:
        """Shape of one image: (Ny, Nx) for 2D grids, (Nz, Ny, Nx) for 3D."""
        nx, ny, nz = self.grid
        return (ny, nx) if nz == 1 else (nz, ny, nx)

    def take_rows(self, indices, selection: dict | None = None) -> "SystemMatrix":
        """A new system matrix with only the rows ``indices`` (int array or boolean mask)."""
        idx = np.asarray(indices)
        return replace(self, matrix=self.matrix[idx], rows=self.rows.take(idx),
                       frequencies=self.frequencies[idx], snr=self.snr[idx],
                       selection=dict(selection or self.selection), cache={})

    def take_slice(self, axis: str, index: int) -> "SystemMatrix":
        """The calibration of one voxel slice: the columns with ``axis`` ("x", "y" or "z") at
        ``index`` (0-based, negative from the end). The grid's ``axis`` becomes 1 voxel, its FOV the
        voxel size and its centre the slice's (m); a z slice is a 2D calibration (how a 2D method
        such as DERnet is applied to 3D data). Recorded in ``selection["slice"]``."""
        a = "xyz".index(axis)
        n = self.grid[a]
        if not -n <= index < n:
            raise MDFMismatchError(self.source, f"slice {axis}={index}", f"an index in 0..{n - 1} (or -{n}..-1)",
                                   f"{index}")
        index %= n
        cube = self.matrix.reshape((self.num_rows,) + self.grid[::-1])  # (R, Nz, Ny, Nx)
        taken = np.take(cube, [index], axis=3 - a)
        grid = tuple(1 if i == a else g for i, g in enumerate(self.grid))
        fov, center = self.fov.copy(), self.center.copy()
        voxel = fov[a] / n
        center[a] = center[a] - fov[a] / 2 + (index + 0.5) * voxel
        fov[a] = voxel
        header = self.header.model_copy(deep=True)
        if header.calibration is not None:
            header.calibration = header.calibration.model_copy(update=dict(
                size=grid, field_of_view=tuple(fov), field_of_view_center=tuple(center)))
        return replace(self, matrix=np.ascontiguousarray(taken.reshape(self.num_rows, -1)), grid=grid, fov=fov,
                       center=center, header=header, selection=dict(self.selection, slice=f"{axis}={index}"),
                       cache={})

    @property
    def geometry(self) -> Geometry:
        """The :class:`~mdf_io.geometry.Geometry` (rows, grid, FOV, receiver, selection)."""
        return Geometry(rows=self.rows, grid=self.grid, fov=self.fov, center=self.center,
                        bandwidth=self.bandwidth, num_sampling_points=self.num_sampling_points,
                        selection=self.selection, source=self.source)

    def _row_blocks(self) -> list[slice]:
        """Row slices of about :data:`FINGERPRINT_BLOCK_ENTRIES` entries each: what the matrix's
        identities (:meth:`fingerprint`, :meth:`signature`) hold at once instead of a full-size copy."""
        rows = max(1, FINGERPRINT_BLOCK_ENTRIES // max(self.matrix.shape[1], 1))
        return [slice(i, i + rows) for i in range(0, self.matrix.shape[0], rows)]

    def signature(self) -> list[float]:
        """A precision-independent identity of the matrix (32 floats): the real and imaginary parts
        of ``Gᵀ M H`` with seeded Gaussian G (R, 4) and H (P, 4), float64, in row blocks. The same
        calibration read in complex64 or complex128 (or its background subtracted in either) gives
        signatures equal to about 1e-6 relative, where the quantised :meth:`fingerprint` can differ;
        compare with :func:`signatures_match`."""
        m = self.matrix
        g = np.random.default_rng(1).standard_normal((m.shape[0], SIGNATURE_PROBES))
        h = np.random.default_rng(2).standard_normal((m.shape[1], SIGNATURE_PROBES))
        s = np.zeros((SIGNATURE_PROBES, SIGNATURE_PROBES), np.complex128)
        for b in self._row_blocks():
            s += g[b].T @ (np.asarray(m[b], dtype=np.complex128) @ h)
        return [float(v) for v in np.concatenate([s.real.ravel(), s.imag.ravel()])]

    def fingerprint(self) -> str:
        """SHA-256 (hex) identifying a calibration + selection: the matrix quantised to 2^-20 of
        its largest magnitude, its scale to 6 significant digits, the rows and the grid. The
        quantisation makes the same matrix computed in a different summation order (e.g. read
        back from MDF) give the same fingerprint; a different matrix or gain does not."""
        m = self.matrix
        blocks = self._row_blocks()
        scale = max((float(np.max(np.abs(m[b]))) for b in blocks), default=0.0) if m.size else 0.0
        h = hashlib.sha256()
        for part in ("real", "imag"):  # all real parts, then all imaginary parts, row-major
            for b in blocks:
                q = np.round(getattr(np.asarray(m[b], dtype=np.complex128), part) / (scale or 1.0) * 2 ** 20)
                h.update(q.astype(np.int64).tobytes())
        h.update(f"{scale:.6e}".encode())
        h.update(self.rows.keys.tobytes())
        h.update(np.asarray(self.grid, np.int64).tobytes())
        return h.hexdigest()


@dataclass
class Measurement:
    """Measured spectra: ``data`` (frames, R) complex foreground, ``background`` (E, R) or None.

    ``rows`` and ``frequencies`` (Hz) describe the columns; ``frame_indices`` the acquisition
    frame number of each foreground frame (after selection/averaging, -1 for an average).
    """

    data: np.ndarray
    rows: RowIndex
    frequencies: np.ndarray
    bandwidth: float
    num_sampling_points: int
    background: Optional[np.ndarray] = None
    background_subtracted: bool = False
    frame_indices: Optional[np.ndarray] = None
    header: MDFHeader = field(default_factory=MDFHeader)
    source: Optional[str] = None
    #: spectra already divided by the receiver's transfer function (``isTransferFunctionCorrected``)
    transfer_function_corrected: bool = False
    #: the receiver's transfer function (C, K_full) complex, when the file holds one
    transfer_function: Optional[np.ndarray] = field(default=None, repr=False, compare=False)
    #: acquisition frames averaged into each row of ``data`` (``--average`` / ``--average-blocks``);
    #: the noise of a row is the single frame's over sqrt of it
    frames_averaged: int = 1

    def __post_init__(self):
        self.data = np.asarray(self.data)
        if self.data.ndim == 1:
            self.data = self.data[None, :]
        if self.data.ndim != 2 or self.data.shape[1] != len(self.rows):
            raise MDFFormatError(self.source, "data", f"(frames, {len(self.rows)}) spectra",
                                 f"shape {self.data.shape}")
        if self.frame_indices is None:
            self.frame_indices = np.arange(self.data.shape[0])

    @classmethod
    def from_arrays(cls, data, *, channels=None, frequency_indices=None, bandwidth=None,
                    num_sampling_points=None, background=None):
        """Measurement from complex spectra (frames, R) whose rows match a system matrix's."""
        data = np.atleast_2d(np.asarray(data))
        r = data.shape[1]
        ch = np.zeros(r, np.int64) if channels is None else np.asarray(channels)
        ki = np.arange(r) if frequency_indices is None else np.asarray(frequency_indices)
        v = num_sampling_points if num_sampling_points is not None else 2 * (int(ki.max()) + 1)
        bw = float(bandwidth) if bandwidth is not None else float(v // 2)
        return cls(data=data.astype(np.complex128, copy=False),
                   rows=RowIndex(np.zeros(r, np.int64), ch, ki),
                   frequencies=frequency_axis(v, bw)[ki], bandwidth=bw,
                   num_sampling_points=int(v), background=background)

    @property
    def num_frames(self) -> int:
        return self.data.shape[0]

    def take_rows(self, indices) -> "Measurement":
        """Only the columns (rows of the system matrix) at ``indices``."""
        idx = np.asarray(indices)
        bg = None if self.background is None else self.background[:, idx]
        return replace(self, data=self.data[:, idx], rows=self.rows.take(idx),
                       frequencies=self.frequencies[idx], background=bg)

    def matched_to(self, target) -> "Measurement":
        """Columns reordered/selected to correspond one-to-one to the rows of ``target`` (a
        :class:`~mdf_io.geometry.Geometry` or anything with a ``.geometry``, e.g. a SystemMatrix).

        Raises :class:`MDFMismatchError` if sampling, bandwidth or rows do not fit.
        """
        geometry = target if isinstance(target, Geometry) else target.geometry
        geometry.check_receiver(self.bandwidth, self.num_sampling_points, path=self.source)
        pos = self.rows.positions_of(geometry.rows, path=self.source,
                                     field="/measurement/data (channels/frequencies)")
        return self.take_rows(pos)


@dataclass
class Reconstruction:
    """Reconstructed images: ``images`` (Q frames, *image_shape*), real, with geometry."""

    images: np.ndarray
    grid: tuple[int, int, int]
    fov: np.ndarray
    center: np.ndarray
    method: str = ""
    parameters: dict = field(default_factory=dict)
    header: MDFHeader = field(default_factory=MDFHeader)
    source: Optional[str] = None

    @property
    def voxels(self) -> np.ndarray:
        """Images flattened to (Q, P), x fastest."""
        return np.asarray(self.images).reshape(np.asarray(self.images).shape[0], -1)
