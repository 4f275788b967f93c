"""Measurement assembly: foreground frames, background subtraction and frame averaging."""
from __future__ import annotations

from typing import Optional

import numpy as np

from .containers import Measurement
from .errors import MDFFormatError, MDFMismatchError, reading
from .file import opened
from .geometry import RowIndex


def minus_background(frames: np.ndarray, background: np.ndarray) -> np.ndarray:
    """``frames`` (n, R) minus the mean of ``background`` (E, R) frames."""
    return frames - background.mean(axis=0, keepdims=True)


def read_measurement(source, *, frames=None, average: bool = False, subtract_background: bool = True,
                     background=None, rows: Optional[RowIndex] = None, channels=None,
                     frequency_indices=None, background_frames=None) -> Measurement:
    """Read a measurement file as a :class:`Measurement` (foreground spectra, frames x R).

    Args:
        source: MDF v2 measurement (or calibration) file, a path or an open
            :class:`~mdf_io.file.MDFFile` (left open); time-domain data are rfft'ed.
        frames: foreground frame numbers to keep (0-based, counting foreground frames only).
        average: average the kept foreground frames into one.
        subtract_background: subtract the mean background spectrum (from the file's background
            frames or from ``background``) unless the file is already corrected.
        background: a separate empty-scanner measurement (path or :class:`Measurement`).
        background_frames: background frame numbers to use (0-based, counting the file's
            background frames only; default all).
        rows / channels / frequency_indices: restrict the columns (see
            :func:`~mdf_io.system_matrix.read_system_matrix`).
    """
    with reading(getattr(source, "path", source)), opened(source) as mdf:
        header, lay = mdf.header, mdf.layout
        wanted = mdf.wanted_rows(rows, channels, frequency_indices)
        fg_all = np.flatnonzero(~lay.is_background_frame)
        bg_all = np.flatnonzero(lay.is_background_frame)
        if background_frames is not None:
            bg_all = bg_all[_check_frames(mdf.path, background_frames, bg_all.size, "background")]
        fg = fg_all if frames is None else fg_all[_check_frames(mdf.path, frames, fg_all.size)]
        data = mdf.read_rows(fg, wanted)
        bg = mdf.read_rows(bg_all, wanted) if bg_all.size else None
        rx = header.acquisition.receiver
        meas = Measurement(data=data, rows=wanted, frequencies=mdf.frequencies[wanted.frequency_index],
                           bandwidth=rx.bandwidth, num_sampling_points=rx.num_sampling_points,
                           background=bg, background_subtracted=lay.background_corrected,
                           frame_indices=fg, header=header,
                           source=str(getattr(source, "path", source)),
                           transfer_function_corrected=lay.transfer_function_corrected,
                           transfer_function=mdf.transfer_function())
    if background is not None:
        meas.background = _separate_background(background, meas)
    if subtract_background and meas.background is not None and not meas.background_subtracted:
        meas.data = minus_background(meas.data, meas.background)
        meas.background_subtracted = True
    if average and meas.data.shape[0] > 1:
        meas.data = meas.data.mean(axis=0, keepdims=True)
        meas.frame_indices = np.array([-1])
    return meas


def _separate_background(background, meas: Measurement) -> np.ndarray:
    """All frames (E, R) of an empty-scanner measurement, columns matched to ``meas``."""
    if isinstance(background, Measurement):
        other = background.take_rows(background.rows.positions_of(
            meas.rows, path=background.source, field="/measurement/data"))
    else:
        other = read_measurement(background, rows=meas.rows, subtract_background=False)
    if other.num_sampling_points != meas.num_sampling_points or not np.isclose(
            other.bandwidth, meas.bandwidth):
        raise MDFMismatchError(other.source, "/acquisition/receiver",
                               f"{meas.num_sampling_points} samples, {meas.bandwidth} Hz",
                               f"{other.num_sampling_points} samples, {other.bandwidth} Hz")
    return other.data if other.background is None else np.concatenate([other.data, other.background])


def _check_frames(path, frames, n_fg, kind: str = "foreground") -> np.ndarray:
    idx = np.atleast_1d(np.asarray(frames, dtype=np.int64))
    if idx.size == 0 or idx.min() < -n_fg or idx.max() >= n_fg:
        raise MDFFormatError(path, "/measurement/data",
                             f"{kind} frame numbers in 0..{n_fg - 1}", f"{idx.tolist()[:10]}")
    return idx
