"""Row selection: which (period, channel, frequency) rows a file holds, their SNR, and which
rows a caller wants. All functions take an open :class:`~mdf_io.file.MDFFile`."""
from __future__ import annotations

from typing import Optional

import numpy as np

from . import _h5
from .errors import MDFFormatError
from .geometry import RowIndex

SNR = "/calibration/snr"


def available_rows(mdf) -> RowIndex:
    """Every (period, channel, frequency) row the file holds, k fastest (stored order)."""
    _, j, c, _ = mdf.layout.shape
    avail = mdf.available_frequency_indices
    full = RowIndex.full(j, c, avail.size)
    return RowIndex(full.period, full.channel, avail[full.frequency_index])


def restrict(rows: RowIndex, channels=None, frequency_indices=None) -> RowIndex:
    """``rows`` whose channel is in ``channels`` and frequency index in ``frequency_indices``
    (None: no restriction)."""
    keep = np.ones(len(rows), bool)
    if channels is not None:
        keep &= np.isin(rows.channel, np.asarray(channels))
    if frequency_indices is not None:
        keep &= np.isin(rows.frequency_index, np.asarray(frequency_indices))
    return rows.take(np.flatnonzero(keep))


def wanted_rows(mdf, rows: Optional[RowIndex] = None, channels=None, frequency_indices=None) -> RowIndex:
    """``rows`` (checked to be present), or the held rows restricted to channels/frequencies."""
    held = available_rows(mdf)
    if rows is not None:
        return held.take(held.positions_of(rows, path=mdf.path, field="/measurement/data"))
    return restrict(held, channels, frequency_indices)


def read_snr(mdf) -> Optional[np.ndarray]:
    """``/calibration/snr`` as (J, C, K_avail) float64 in stored frequency order, or None.

    A file may store it for the full spectrum (J, C, K_full) even with a frequency selection;
    it is then reduced to the stored frequencies.
    """
    f = mdf.h5
    if _h5.get(f, SNR) is None:
        return None
    lay = mdf.layout
    avail = mdf.available_frequency_indices
    j, c = lay.shape[1], lay.shape[2]
    k_full = mdf.num_frequencies_full
    ds = _h5.require(f, SNR)
    full = _h5.shape_of(f, SNR, ds) == (j, c, k_full) and avail.size != k_full
    arr = _h5.read_array(f, SNR, shape=(j, c, k_full if full else avail.size), kinds="iuf",
                         finite=False, max_elements=j * c * k_full).astype(np.float64)
    if full:
        arr = arr[:, :, avail]
    if np.any(np.isnan(arr)):
        raise MDFFormatError(mdf.path, SNR, "numbers (no NaN)", "NaN")
    return arr
