"""The open MDF file: :class:`MDFFile` keeps the HDF5 file open and reads only what is asked
for (header, layout, SNR, a subset of the data). Opening refuses non-regular files and any
MDF version other than 2.x; every failure while reading is an :class:`~mdf_io.errors.MDFError`.
"""
from __future__ import annotations

import contextlib
import functools
import json
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np

from . import _h5, layout as _layout, rows as _rows, schema, spectra as _spectra
from .errors import MDFFormatError, MDFNotSupportedError, reading
from .geometry import RowIndex, frequency_axis
from .layout import DataLayout
from .metadata import MDFHeader


def _guarded(method):
    """Run ``method`` under the :func:`~mdf_io.errors.reading` safety net of the file."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with reading(self.path):
            return method(self, *args, **kwargs)
    return wrapper


class MDFFile:
    """An open MDF v2 file with lazy access. Use as a context manager or call :meth:`close`."""

    def __init__(self, path):
        self.path = Path(path)
        self._f = None
        self._header: Optional[MDFHeader] = None
        self._layout: Optional[DataLayout] = None
        self._f = _h5.open_h5(self.path)
        try:
            with reading(self.path, "/version"):
                self._check_version()
        except BaseException:
            self.close()
            raise

    def _check_version(self):
        version = _h5.read_str(self._f, "/version", "")
        if not version:
            raise MDFFormatError(self.path, "/version", "an MDF version string such as '2.1.0'",
                                 "nothing (not an MDF file?)")
        major = version.split(".")[0].strip()
        if not (major.isdigit() and int(major) == 2):
            raise MDFNotSupportedError(self.path, "/version", "MDF version 2.x", repr(version))

    # -- context manager ------------------------------------------------------------------
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Close the HDF5 file (idempotent)."""
        if getattr(self, "_f", None) is not None:
            with contextlib.suppress(Exception):
                self._f.close()
            self._f = None

    @property
    def h5(self):
        """The underlying read-only ``h5py.File``."""
        if self._f is None:
            raise MDFFormatError(self.path, None, "an open file", "a closed MDFFile")
        return self._f

    # -- metadata ---------------------------------------------------------------------------
    @property
    @_guarded
    def kind(self) -> str:
        """'calibration', 'measurement' or 'reconstruction'."""
        f = self.h5
        if _h5.group_exists(f, "/measurement"):
            return "calibration" if _h5.group_exists(f, "/calibration") else "measurement"
        if _h5.group_exists(f, "/reconstruction"):
            return "reconstruction"
        raise MDFFormatError(self.path, "/measurement", "a /measurement or /reconstruction group",
                             "neither")

    @property
    @_guarded
    def header(self) -> MDFHeader:
        """All metadata as pydantic models (reads only small datasets)."""
        if self._header is None:
            self._header = schema.read_header(self.h5)
        return self._header

    @property
    @_guarded
    def layout(self) -> DataLayout:
        """Flags and shape of ``/measurement/data`` (validated against the header)."""
        if self._layout is None:
            self._layout = _layout.read_layout(self.h5, self.header)
        return self._layout

    @property
    def num_frequencies_full(self) -> int:
        """K_full = V // 2 + 1 of the acquisition."""
        return self.header.acquisition.receiver.num_frequencies

    @property
    def frequencies(self) -> np.ndarray:
        """Full frequency axis (Hz), (K_full,)."""
        rx = self.header.acquisition.receiver
        return frequency_axis(rx.num_sampling_points, rx.bandwidth)

    @property
    def available_frequency_indices(self) -> np.ndarray:
        """Full-spectrum indices of the frequencies this file holds, in stored order."""
        lay = self.layout
        if lay.fourier and lay.frequency_selection is not None:
            return lay.frequency_selection
        return np.arange(self.num_frequencies_full)

    @_guarded
    def snr(self) -> Optional[np.ndarray]:
        """``/calibration/snr`` as (J, C, K_avail) float64 (K_avail = available frequencies), or None."""
        return _rows.read_snr(self)

    @_guarded
    def read_spectra(self, frames: Optional[Sequence[int]] = None,
                     frequency_indices: Optional[Sequence[int]] = None) -> np.ndarray:
        """Spectra of ``frames`` (acquisition order, 0-based; default all) at full-spectrum
        ``frequency_indices`` (default all available), complex128 (n, J, C, k).

        Time-domain data are converted (dataConversionFactor, then rfft over one period).
        Only the needed part of the dataset is read from disk.
        """
        return _spectra.read_spectra(self, frames, frequency_indices)

    @_guarded
    def read_rows(self, frames, rows: RowIndex, progress=None) -> np.ndarray:
        """Spectra of ``frames`` (acquisition order) at ``rows``: complex128 (n, R), read in blocks
        of frequencies; ``progress(done, total)`` after each block."""
        return _spectra.read_rows(self, frames, rows, progress)

    @_guarded
    def transfer_function(self) -> Optional[np.ndarray]:
        """``/acquisition/receiver/transferFunction`` as (C, K_full) complex128, or None."""
        from .transfer import read_transfer_function
        rx = self.header.acquisition.receiver
        return read_transfer_function(self.h5, num_channels=rx.num_channels, num_frequencies=rx.num_frequencies)

    @_guarded
    def user_field(self, name: str, default=None):
        """A root user field (name starting with '_'), JSON-decoded when possible."""
        value = _h5.read_value(self.h5, "/" + name.lstrip("/"), None)
        if value is None:
            return default
        try:
            return json.loads(value)
        except (TypeError, ValueError):
            return value

    # -- rows -------------------------------------------------------------------------------
    @_guarded
    def available_rows(self) -> RowIndex:
        """Every (period, channel, frequency) row the file holds, k fastest."""
        return _rows.available_rows(self)

    @_guarded
    def wanted_rows(self, rows: Optional[RowIndex] = None, channels=None, frequency_indices=None) -> RowIndex:
        """``rows`` (checked to be present), or the held rows restricted to channels/frequencies."""
        return _rows.wanted_rows(self, rows, channels, frequency_indices)


@contextlib.contextmanager
def opened(source) -> Iterator[MDFFile]:
    """Yield an :class:`MDFFile` for ``source``: a path (opened here and closed after) or an
    already open :class:`MDFFile` (used as is and left open)."""
    if isinstance(source, MDFFile):
        yield source
        return
    with MDFFile(source) as mdf:
        yield mdf
