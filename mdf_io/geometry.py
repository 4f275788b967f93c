"""Where a reconstruction's numbers come from and where they go: rows, grid and receiver.

:class:`RowIndex` names the origin of each row of a (selected) system matrix or measurement;
:class:`Geometry` is the frozen value every reconstruction path uses: the rows, the voxel grid
and field of view, and the receiver (bandwidth, sampling points). A
:class:`~mdf_io.SystemMatrix` has one (``sm.geometry``) and a learned method can rebuild one
from its weights, so a measurement is matched to a geometry, never to a file.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .errors import MDFMismatchError


def frequency_axis(num_sampling_points: int, bandwidth: float) -> np.ndarray:
    """Frequencies (Hz) of the full rfft spectrum, shape (V//2+1,): ``k/(K-1)*bandwidth``."""
    k_full = num_sampling_points // 2 + 1
    return np.arange(k_full) / max(k_full - 1, 1) * bandwidth


@dataclass(frozen=True)
class RowIndex:
    """Origin of each row: period, receive channel and frequency index (0-based), each (R,)."""

    period: np.ndarray
    channel: np.ndarray
    frequency_index: np.ndarray

    @classmethod
    def full(cls, periods: int, channels: int, frequencies: int) -> "RowIndex":
        """All J*C*K rows of a full spectrum, k fastest."""
        j, c, k = np.meshgrid(np.arange(periods), np.arange(channels), np.arange(frequencies),
                              indexing="ij")
        return cls(j.ravel(), c.ravel(), k.ravel())

    def __post_init__(self):
        arrays = [np.asarray(a, dtype=np.int64).ravel() for a in
                  (self.period, self.channel, self.frequency_index)]
        if len({a.size for a in arrays}) != 1:
            raise ValueError("RowIndex arrays must have equal length")
        object.__setattr__(self, "period", arrays[0])
        object.__setattr__(self, "channel", arrays[1])
        object.__setattr__(self, "frequency_index", arrays[2])

    def __len__(self) -> int:
        return int(self.period.size)

    @property
    def keys(self) -> np.ndarray:
        """One int64 key per row, unique for each (period, channel, frequency) triple."""
        return (self.period << 42) | (self.channel << 21) | self.frequency_index

    def take(self, indices) -> "RowIndex":
        """Rows at ``indices`` (int array or boolean mask)."""
        idx = np.asarray(indices)
        return RowIndex(self.period[idx], self.channel[idx], self.frequency_index[idx])

    def positions_of(self, other: "RowIndex", *, path=None, field="rows") -> np.ndarray:
        """Indices i such that ``self[i] == other[n]`` for each row n of ``other``.

        Raises :class:`MDFMismatchError` if some row of ``other`` is absent here.
        """
        mine = self.keys
        order = np.argsort(mine, kind="stable")
        sorted_keys = mine[order]
        wanted = other.keys
        pos = np.searchsorted(sorted_keys, wanted)
        pos = np.clip(pos, 0, max(len(sorted_keys) - 1, 0))
        ok = sorted_keys.size > 0 and np.all(sorted_keys[pos] == wanted)
        if not ok:
            missing = int(np.sum(sorted_keys[pos] != wanted)) if sorted_keys.size else len(other)
            raise MDFMismatchError(path, field, "every selected (period, channel, frequency) row",
                                   f"{missing} of {len(other)} rows missing")
        return order[pos]



@dataclass(frozen=True, eq=False)
class Geometry:
    """Rows, grid, field of view and receiver of a (frequency-selected) calibration.

    Attributes:
        rows: origin of each of the R rows.
        grid: (Nx, Ny, Nz) voxels; fov, center: (3,) metres.
        bandwidth: receive bandwidth (Hz); num_sampling_points: V of one period.
        selection: how the rows were selected (criteria, counts); informative.
        source: the calibration file the geometry belongs to, if any.
    """

    rows: RowIndex
    grid: tuple
    fov: tuple
    center: tuple
    bandwidth: float
    num_sampling_points: int
    selection: dict = field(default_factory=dict)
    source: Optional[str] = None

    def __post_init__(self):
        object.__setattr__(self, "grid", tuple(int(g) for g in self.grid))
        object.__setattr__(self, "fov", tuple(float(v) for v in np.asarray(self.fov, float).reshape(3)))
        object.__setattr__(self, "center", tuple(float(v) for v in np.asarray(self.center, float).reshape(3)))
        object.__setattr__(self, "bandwidth", float(self.bandwidth))
        object.__setattr__(self, "num_sampling_points", int(self.num_sampling_points))
        object.__setattr__(self, "selection", dict(self.selection or {}))

    @property
    def num_rows(self) -> int:
        return len(self.rows)

    @property
    def num_voxels(self) -> int:
        return int(np.prod(self.grid))

    @property
    def image_shape(self) -> tuple[int, ...]:
        """Shape of one image: (Ny, Nx) for 2D grids, (Nz, Ny, Nx) for 3D."""
        nx, ny, nz = self.grid
        return (ny, nx) if nz == 1 else (nz, ny, nx)

    def check_receiver(self, bandwidth: float, num_sampling_points: int, *, path=None) -> None:
        """Raise :class:`MDFMismatchError` (naming ``path``) unless the receiver fits."""
        if int(num_sampling_points) != self.num_sampling_points or not np.isclose(bandwidth, self.bandwidth):
            raise MDFMismatchError(
                path, "/acquisition/receiver",
                f"bandwidth {self.bandwidth} Hz and {self.num_sampling_points} samples"
                f" (from system matrix {self.source})",
                f"bandwidth {bandwidth} Hz and {num_sampling_points} samples")

    def to_dict(self) -> dict:
        """JSON-ready dict (stored with trained weights); inverse of :meth:`from_dict`."""
        return {"rows": {"period": self.rows.period.tolist(), "channel": self.rows.channel.tolist(),
                         "frequency_index": self.rows.frequency_index.tolist()},
                "grid": list(self.grid), "fov": list(self.fov), "center": list(self.center),
                "bandwidth": self.bandwidth, "num_sampling_points": self.num_sampling_points,
                "selection": self.selection, "source": self.source}

    @classmethod
    def from_dict(cls, d: dict) -> "Geometry":
        """Geometry from :meth:`to_dict`'s output (raises KeyError/TypeError/ValueError if malformed)."""
        r = d["rows"]
        rows = RowIndex(np.asarray(r["period"], np.int64), np.asarray(r["channel"], np.int64),
                        np.asarray(r["frequency_index"], np.int64))
        return cls(rows=rows, grid=tuple(d["grid"]), fov=tuple(d["fov"]), center=tuple(d["center"]),
                   bandwidth=float(d["bandwidth"]), num_sampling_points=int(d["num_sampling_points"]),
                   selection=dict(d.get("selection") or {}), source=d.get("source"))
