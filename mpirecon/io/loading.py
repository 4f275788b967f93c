"""Convenience loaders: a selected system matrix straight from a file, reading only kept rows."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from mdf_io import (Geometry, MDFFile, MDFFormatError, MDFMismatchError, Measurement, SystemMatrix, read_measurement,
                    read_system_matrix)

from mpirecon.errors import UsageError
from mpirecon.progress import Progress
from mpirecon.preprocess.selection import DEFAULT_SNR_THRESHOLD, SelectionCriteria, selected_rows_of_file


#: selected matrices smaller than this (bytes, complex128) are read without a progress bar
PROGRESS_MIN_BYTES = 256 * 2 ** 20


def load_system_matrix(path, snr_threshold: Optional[float] = DEFAULT_SNR_THRESHOLD,
                       min_frequency: Optional[float] = None, max_frequency: Optional[float] = None,
                       receive_channels: Optional[Sequence[int]] = None,
                       subtract_background: bool = True, num_used_freqs: Optional[int] = None,
                       slice: Optional[str] = None, progress: bool = False, dtype=np.complex128) -> SystemMatrix:
    """Read calibration ``path`` keeping only rows that pass the frequency selection.

    The selection is computed from ``/calibration/snr`` before any matrix data are read, so
    only the kept frequencies are loaded. Returns a (R_selected x P) :class:`SystemMatrix`
    with ``.selection`` recording the criteria. ``num_used_freqs``: of the rows passing the other
    criteria keep the N of highest SNR (MPIReco's numUsedFreqs). ``slice``: ``"z=9"`` (0-based,
    also x/y) keeps one voxel slice of a 3D calibration (:meth:`mdf_io.SystemMatrix.take_slice`),
    e.g. to apply a 2D method to 3D data as the DERnet paper did with OpenMPI's tenth z slice.
    ``progress``: a progress bar on stderr while the selected frequencies are read (in blocks),
    for selections of more than :data:`PROGRESS_MIN_BYTES`. ``dtype``: complex128, or complex64 for
    float32 solvers on large calibrations (half the memory).
    """
    crit = SelectionCriteria(snr_threshold, min_frequency, max_frequency,
                             None if receive_channels is None else tuple(int(c) for c in receive_channels),
                             None if num_used_freqs is None else int(num_used_freqs))
    with MDFFile(path) as mdf:
        rows = selected_rows_of_file(mdf, crit)
        total = mdf.layout.shape[1] * mdf.layout.shape[2] * mdf.available_frequency_indices.size
        progress = progress and len(rows) * mdf.layout.num_frames * 16 > PROGRESS_MIN_BYTES  # long reads only
        with Progress(1, "reading system matrix (frequencies)", enabled=progress) as bar:
            def report(done: int, total: int) -> None:
                bar.total = max(total, 1)
                bar.update(done - bar.done)
            sm = read_system_matrix(mdf, rows=rows, subtract_background=subtract_background,
                                    progress=report if progress else None, dtype=dtype)
    sm.selection = dict(crit.as_dict(), num_rows=len(rows), num_rows_total=int(total))
    if slice is not None:
        sm = sm.take_slice(*parse_slice(slice))
    return sm


def selected_problem_size(path, snr_threshold: Optional[float] = DEFAULT_SNR_THRESHOLD,
                          min_frequency: Optional[float] = None, max_frequency: Optional[float] = None,
                          receive_channels: Optional[Sequence[int]] = None, num_used_freqs: Optional[int] = None,
                          slice: Optional[str] = None) -> tuple[int, int]:
    """(R, P): the rows :func:`load_system_matrix` would keep with the same arguments and the voxels
    of the (sliced) grid, from the header and ``/calibration/snr`` alone (no matrix data read), so a
    method's memory can be known before the matrix is read (:mod:`mpirecon.memory`)."""
    crit = SelectionCriteria(snr_threshold, min_frequency, max_frequency,
                             None if receive_channels is None else tuple(int(c) for c in receive_channels),
                             None if num_used_freqs is None else int(num_used_freqs))
    with MDFFile(path) as mdf:
        rows = selected_rows_of_file(mdf, crit)
        grid = [int(n) for n in mdf.header.calibration.size]
    if slice is not None:
        axis, index = parse_slice(slice)
        n = grid["xyz".index(axis)]
        if not -n <= index < n:  # the error SystemMatrix.take_slice gives, before anything is read
            raise MDFMismatchError(path, f"slice {axis}={index}", f"an index in 0..{n - 1} (or -{n}..-1)", f"{index}")
        grid["xyz".index(axis)] = 1
    return len(rows), int(np.prod(grid))


def reconstructed_frame_count(path, *, frames=None, average=False, average_blocks=None) -> int:
    """How many frames ``load_measurement_for(path, ..., frames=, average=, average_blocks=)`` returns,
    from the header alone."""
    from mpirecon.io.frames import parse_frames
    with MDFFile(path) as mdf:
        count = int((~mdf.layout.is_background_frame).sum())
    chosen = parse_frames(frames, count, "--frames (foreground frames)", path)
    n = count if chosen is None else len(chosen)
    if average:
        return 1
    return max(n // int(average_blocks), 1) if average_blocks else max(n, 1)


def parse_slice(text: str) -> tuple[str, int]:
    """``"z=9"`` -> ("z", 9); :class:`UsageError` for anything else."""
    axis, _, index = str(text).partition("=")
    axis = axis.strip().lower()
    try:
        if axis not in ("x", "y", "z"):
            raise ValueError
        return axis, int(index)
    except ValueError:
        raise UsageError(f"--slice '{text}': expected AXIS=INDEX with AXIS x, y or z and a 0-based index, "
                         "e.g. z=9") from None


def load_measurement_for(path, target, *, frames=None, average=False, average_blocks=None,
                         subtract_background=True, background=None, background_frames=None) -> Measurement:
    """Read measurement ``path`` with exactly the rows of ``target`` (a SystemMatrix or an
    :class:`mdf_io.Geometry`, e.g. a learned method's), in the same order. Raises
    :class:`mdf_io.MDFFormatError` for a file without foreground frames (nothing to reconstruct).

    Args:
        frames: foreground frames: text such as ``"0:100:2,-1"``, an int or ints (see
            :func:`mpirecon.io.frames.parse_frames`; 0-based, negative from the end); None: all.
        average: average the selected frames into one.
        average_blocks: average consecutive blocks of this many selected frames (MPIReco's
            nAverages); the selection must be a multiple of it.
        background_frames: the file's background frames to use, same forms as ``frames``.
    Returns:
        :class:`mdf_io.Measurement` with data (frames, R) and ``frame_indices`` the foreground
        frame of each row (the first of its block; -1 after ``average``).
    """
    from mpirecon.io.frames import average_blocks as block_mean, parse_frames

    geometry = target if isinstance(target, Geometry) else target.geometry
    with MDFFile(path) as mdf:
        is_bg = mdf.layout.is_background_frame
        if is_bg.all():
            raise MDFFormatError(path, "/measurement/isBackgroundFrame", "at least one foreground frame",
                                 "only background frames (nothing to reconstruct)")
        fg = parse_frames(frames, int((~is_bg).sum()), "--frames (foreground frames)", path)
        bg = parse_frames(background_frames, int(is_bg.sum()), "--background-frames", path)
        meas = read_measurement(mdf, frames=fg, subtract_background=subtract_background, background=background,
                                rows=geometry.rows, background_frames=bg)
    if average_blocks is not None and not average:
        meas.data, meas.frame_indices = block_mean(meas.data, int(average_blocks), meas.frame_indices,
                                                      f"{path}: --average-blocks")
        meas.frames_averaged = int(average_blocks)
    if average and meas.data.shape[0] > 1:
        meas.frames_averaged = meas.data.shape[0]
        meas.data = meas.data.mean(axis=0, keepdims=True)
        meas.frame_indices = np.array([-1])
    return meas.matched_to(geometry)
