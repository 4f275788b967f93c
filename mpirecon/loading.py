"""Convenience loaders: a selected system matrix straight from a file, reading only kept rows."""
from __future__ import annotations

from typing import Optional, Sequence

from mdf_io import (Geometry, MDFFile, MDFFormatError, Measurement, SystemMatrix, read_measurement,
                    read_system_matrix)

from .selection import DEFAULT_SNR_THRESHOLD, SelectionCriteria, selected_rows_of_file


def load_system_matrix(path, snr_threshold: Optional[float] = DEFAULT_SNR_THRESHOLD,
                       min_frequency: Optional[float] = None, max_frequency: Optional[float] = None,
                       receive_channels: Optional[Sequence[int]] = None,
                       subtract_background: bool = True) -> SystemMatrix:
    """Read calibration ``path`` keeping only rows that pass the frequency selection.

    The selection is computed from ``/calibration/snr`` before any matrix data are read, so
    only the kept frequencies are loaded. Returns a (R_selected x P) :class:`SystemMatrix`
    with ``.selection`` recording the criteria.
    """
    crit = SelectionCriteria(snr_threshold, min_frequency, max_frequency,
                             None if receive_channels is None else tuple(int(c) for c in receive_channels))
    with MDFFile(path) as mdf:
        rows = selected_rows_of_file(mdf, crit)
        total = mdf.layout.shape[1] * mdf.layout.shape[2] * mdf.available_frequency_indices.size
        sm = read_system_matrix(mdf, rows=rows, subtract_background=subtract_background)
    sm.selection = dict(crit.as_dict(), num_rows=len(rows), num_rows_total=int(total))
    return sm


def load_measurement_for(path, target, *, frames=None, average=False,
                         subtract_background=True, background=None) -> Measurement:
    """Read measurement ``path`` with exactly the rows of ``target`` (a SystemMatrix or an
    :class:`mdf_io.Geometry`, e.g. a learned method's), in the same order. Raises
    :class:`mdf_io.MDFFormatError` for a file without foreground frames (nothing to reconstruct)."""
    geometry = target if isinstance(target, Geometry) else target.geometry
    meas = read_measurement(path, frames=frames, average=average,
                            subtract_background=subtract_background, background=background,
                            rows=geometry.rows)
    if meas.num_frames == 0:
        raise MDFFormatError(path, "/measurement/isBackgroundFrame", "at least one foreground frame",
                             "only background frames (nothing to reconstruct)")
    return meas.matched_to(geometry)
