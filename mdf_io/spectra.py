"""Spectra from ``/measurement/data``: only the frames and frequencies asked for are read.

Time-domain data are converted (``dataConversionFactor``, then rfft over one period); stored
frequency-domain data are returned as complex128. All functions take an open
:class:`~mdf_io.file.MDFFile`.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np

from . import _h5
from .errors import MDFFormatError, MDFMismatchError, MDFNotSupportedError
from .geometry import RowIndex
from .layout import DATA

#: progress callback: (items done, items in all)
Progress = Callable[[int, int], None]


def positions_in(mdf, frequency_indices) -> np.ndarray:
    """Stored position of each full-spectrum frequency index; :class:`MDFMismatchError` if
    some are not stored. Works for a frequency selection in any order."""
    avail = mdf.available_frequency_indices
    kwant = np.asarray(frequency_indices, dtype=np.int64).ravel()
    order = np.argsort(avail, kind="stable")
    pos = np.clip(np.searchsorted(avail[order], kwant), 0, max(avail.size - 1, 0))
    if avail.size == 0 or np.any(avail[order][pos] != kwant):
        raise MDFMismatchError(mdf.path, "/measurement/frequencySelection",
                               "the requested frequency indices to be stored in the file",
                               "some are missing")
    return order[pos]


def read_spectra(mdf, frames: Optional[Sequence[int]] = None,
                 frequency_indices: Optional[Sequence[int]] = None, progress: Optional[Progress] = None) -> np.ndarray:
    """Spectra of ``frames`` (acquisition order, 0-based; default all) at full-spectrum
    ``frequency_indices`` (default all available), complex128 (n, J, C, k). ``progress(done,
    total)`` is called after each block of frequencies read (see :func:`_read_subset`)."""
    return as_complex128(_stored_spectra(mdf, frames, frequency_indices, progress))


def _stored_spectra(mdf, frames, frequency_indices, progress) -> np.ndarray:
    """:func:`read_spectra` in the file's own precision (stored frequency-domain data: their
    dtype, real/imaginary compounds included; time-domain data: complex128), checked finite."""
    lay = mdf.layout
    if lay.compression is not None:
        raise MDFNotSupportedError(mdf.path, "/measurement/isSparsityTransformed",
                                   "frames to read one by one", "a sparsity-transformed calibration (read it "
                                   "with read_system_matrix, which expands its coefficients)")
    n = lay.num_frames
    frames = np.arange(n) if frames is None else np.asarray(frames, dtype=np.int64).ravel()
    if frames.size and (frames.min() < 0 or frames.max() >= n):
        raise MDFFormatError(mdf.path, DATA, f"frame indices in 0..{n - 1}",
                             f"{frames.min()}..{frames.max()}")
    stored = frames
    if lay.frame_permutation is not None:
        inverse = np.empty(n, np.int64)
        inverse[lay.frame_permutation] = np.arange(n)
        stored = inverse[frames]
    kpos = None if frequency_indices is None else positions_in(mdf, frequency_indices)
    f = mdf.h5
    ds = _h5.require(f, DATA)
    if lay.fourier:
        out = _read_subset(f, ds, stored, kpos, lay.fast_frame_axis, progress)
    else:
        raw = _read_subset(f, ds, stored, None, lay.fast_frame_axis).astype(np.float64)
        dcf = mdf.header.acquisition.receiver.data_conversion_factor
        if dcf is not None:
            dcf = np.asarray(dcf, np.float64)
            _h5.check_shape(mdf.path, "/acquisition/receiver/dataConversionFactor",
                            dcf.shape, (lay.shape[2], 2))
            raw = raw * dcf[None, None, :, 0, None] + dcf[None, None, :, 1, None]
        spectra = np.fft.rfft(raw, axis=-1)
        out = spectra if kpos is None else spectra[..., np.asarray(frequency_indices, np.int64).ravel()]
    _h5.check_finite(mdf.path, DATA, out if not out.dtype.names else out["r"])
    if out.dtype.names:
        _h5.check_finite(mdf.path, DATA, out["i"])
    return out


def read_rows(mdf, frames, rows: RowIndex, progress: Optional[Progress] = None) -> np.ndarray:
    """Spectra of ``frames`` (acquisition order) at ``rows``: complex128 (n, R), reading only
    the frequencies the rows need."""
    frames = np.asarray(frames, dtype=np.int64).ravel()
    unique, inverse = np.unique(frames, return_inverse=True)
    if unique.size < frames.size:  # a frame asked for twice (e.g. --frames 0,0): read once, repeat in memory
        return read_rows(mdf, unique, rows, progress)[inverse.ravel()]
    return read_rows_into(mdf, frames, rows, np.empty((frames.size, len(rows)), np.complex128), progress)


def read_rows_into(mdf, frames, rows: RowIndex, out: np.ndarray, progress: Optional[Progress] = None) -> np.ndarray:
    """:func:`read_rows` written into ``out`` (n, R), complex128 or complex64 (e.g. the transposed
    view of an (R, n) matrix), one chunk-aligned block of frequencies at a time: memory is ``out`` and one
    block (about :data:`READ_BLOCK_BYTES`), whatever the file's size, channels or precision."""
    if out.shape[0] == 0:
        return out
    k_needed = np.unique(rows.frequency_index)
    kmap = np.searchsorted(k_needed, rows.frequency_index)
    lay = mdf.layout
    if not lay.fourier:  # time-domain data: the FFT needs whole frames, no frequency blocks
        out[...] = as_complex128(_stored_spectra(mdf, frames, k_needed, None)[:, rows.period, rows.channel, kmap])
        return out
    kpos = positions_in(mdf, k_needed)
    order = np.argsort(kpos, kind="stable")
    slot = np.full(k_needed.size, -1)
    done = 0
    for group in _frequency_blocks(_h5.require(mdf.h5, DATA), kpos[order], lay.fast_frame_axis):
        members = order[done:done + group.size]  # indices into k_needed, in stored order
        done += group.size
        slot[:] = -1
        slot[members] = np.arange(members.size)
        sel = np.flatnonzero(slot[kmap] >= 0)
        part = _stored_spectra(mdf, frames, k_needed[members], None)
        out[:, sel] = as_complex128(part[:, rows.period[sel], rows.channel[sel], slot[kmap[sel]]])  # block-sized
        if progress is not None:
            progress(done, k_needed.size)
    return out


def as_complex128(raw: np.ndarray) -> np.ndarray:
    """Stored spectra (complex, or a real/imaginary compound) as complex128."""
    out = np.empty(raw.shape, np.complex128)
    if raw.dtype.names:
        out.real, out.imag = raw["r"], raw["i"]
    else:
        out[...] = raw
    return out


def _read_subset(f, ds, stored_frames: np.ndarray, kpos: Optional[np.ndarray], fast: bool,
                 progress: Optional[Progress] = None) -> np.ndarray:
    """Read stored frames and frequency positions, returning canonical (n, J, C, k).

    h5py accepts one increasing index list per read, so the more selective axis is read from
    disk with it and the other is indexed in memory. Selected frequencies are read in blocks
    (:func:`_frequency_blocks`: whole HDF5 chunks along K, about :data:`READ_BLOCK_BYTES` each),
    so memory stays the size of the selection and ``progress(done, total)`` can report.
    """
    n_total = ds.shape[-1] if fast else ds.shape[0]
    frame_order = np.argsort(stored_frames)
    sorted_frames = stored_frames[frame_order]
    unique_frames, inv_f = np.unique(sorted_frames, return_inverse=True)
    frame_fraction = unique_frames.size / max(n_total, 1)
    k_total = ds.shape[2]
    k_fraction = 1.0 if kpos is None else np.unique(kpos).size / max(k_total, 1)
    if kpos is not None and k_fraction < frame_fraction:
        uk, inv_k = np.unique(kpos, return_inverse=True)
        j, c = ds.shape[:2] if fast else ds.shape[1:3]
        block = (np.empty((j, c, uk.size, unique_frames.size), ds.dtype) if fast
                 else np.empty((unique_frames.size, j, c, uk.size), ds.dtype))  # the selection, filled block by block
        done = 0
        for group in _frequency_blocks(ds, uk, fast):
            part = _h5.read(f, DATA, ds, np.s_[:, :, group, :] if fast else np.s_[:, :, :, group])
            if fast:
                block[:, :, done:done + group.size] = part[..., unique_frames]
            else:
                block[..., done:done + group.size] = part[unique_frames]
            done += group.size
            if progress is not None:
                progress(done, uk.size)
        if kpos.size != uk.size or np.any(kpos != uk):  # repeated or unordered positions
            block = block[..., inv_k, :] if fast else block[..., inv_k]
    else:
        every = slice(None) if unique_frames.size == n_total else unique_frames  # a slice reads without a point list
        block = _h5.read(f, DATA, ds, np.s_[..., every] if fast else np.s_[every])
        if kpos is not None and not (kpos.size == k_total and np.all(kpos == np.arange(k_total))):
            block = block[:, :, kpos, :] if fast else block[..., kpos]
    if fast:
        block = np.moveaxis(block, -1, 0)
    if unique_frames.size == stored_frames.size and np.all(np.diff(stored_frames) > 0):
        return block  # frames already in order, each once: no reordering copy
    out = np.empty_like(block)
    out[frame_order] = block[inv_f]
    return out


#: target size of one read of selected frequencies (bytes)
READ_BLOCK_BYTES = 256 * 2 ** 20


def _frequency_blocks(ds, uk: np.ndarray, fast: bool) -> list:
    """Increasing frequency positions ``uk`` split into reads: positions in the same HDF5 chunk
    along K stay together (a chunk is read once), blocks of about :data:`READ_BLOCK_BYTES`."""
    k_axis = 2 if fast else 3
    per_k = ds.dtype.itemsize * int(np.prod(ds.shape)) // max(ds.shape[k_axis], 1)
    chunk = ds.chunks[k_axis] if ds.chunks else 1
    per_block = max(1, READ_BLOCK_BYTES // max(per_k, 1))
    blocks, start = [], 0
    while start < uk.size:
        stop = min(start + per_block, uk.size)
        while stop < uk.size and uk[stop] // chunk == uk[stop - 1] // chunk:  # do not split a chunk
            stop += 1
        blocks.append(uk[start:stop])
        start = stop
    return blocks


def read_compressed_rows(mdf, rows: RowIndex, progress: Optional[Progress] = None) -> tuple[np.ndarray, np.ndarray]:
    """A sparsity-transformed calibration's ``rows``: the expanded matrix rows (R, O) and the
    background frames (E, R), complex128, reading only the frequencies the rows need."""
    from .sparsity import expand_rows

    lay, comp = mdf.layout, mdf.layout.compression
    b = comp.num_coefficients
    stored = _h5.shape_of(mdf.h5, DATA, _h5.require(mdf.h5, DATA))[-1]
    k_needed = np.unique(rows.frequency_index)
    kpos = positions_in(mdf, k_needed)
    block = as_complex128(_read_subset(mdf.h5, _h5.require(mdf.h5, DATA), np.arange(stored), kpos, True, progress))
    _h5.check_finite(mdf.path, DATA, block)
    kmap = np.searchsorted(k_needed, rows.frequency_index)
    flat = block[:, rows.period, rows.channel, kmap]  # (B + E, R)
    indices = comp.indices[rows.period, rows.channel, kpos[kmap]]  # (R, B)
    voxels = int(np.sum(~lay.is_background_frame))
    grid = tuple(mdf.header.calibration.size)
    if int(np.prod(grid)) != voxels:
        raise MDFFormatError(mdf.path, "/calibration/size", f"a grid with {voxels} voxels", f"{grid}")
    return expand_rows(flat[:b].T, indices, grid, comp.transformation), flat[b:]
