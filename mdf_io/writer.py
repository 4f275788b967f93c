"""Writers of MDF v2 files. Every writer is atomic (:mod:`mdf_io.atomic`: temporary file, then
an exclusive link or rename) and refuses to replace an existing file unless ``overwrite=True``.
The metadata groups are written from the table in :mod:`mdf_io.schema`."""
from __future__ import annotations

import json
from typing import Optional

import numpy as np

from . import _h5, schema
from .containers import Measurement, Reconstruction, RowIndex, SystemMatrix
from .errors import MDFWriteError
from .metadata import Calibration, MDFHeader
from .sparsity import TRANSFORMS, Compression, compress_rows, write_compression
from .transfer import TF, write_transfer_function


def write_mdf(path, header: MDFHeader, data: np.ndarray, *, fourier: bool,
              is_background_frame=None, fast_frame_axis: bool = False,
              frequency_selection=None, frame_permutation=None, background_corrected: bool = False,
              snr=None, overwrite: bool = False, compression: Optional[str] = None,
              user_fields: Optional[dict] = None, transfer_function=None,
              transfer_function_corrected: bool = False, sparsity: Optional[Compression] = None):
    """Write a measurement or calibration file from canonical data.

    Args:
        path: output file; written atomically.
        header: metadata; ``acquisition.num_frames`` is set from ``data``. A header with
            ``calibration`` set makes a calibration (system-matrix) file.
        data: (N, J, C, V) real/integer time samples (``fourier=False``) or (N, J, C, K)
            complex spectra (``fourier=True``), frames in acquisition order.
        is_background_frame: (N,) bool, default all False.
        fast_frame_axis: store as (J, C, K, N) (the usual system-matrix layout).
        frequency_selection: 0-based full-spectrum index of each of the K stored frequencies
            (stored 1-based in the file).
        frame_permutation: 0-based acquisition frame of each stored frame; the data are stored
            in that order (stored frame i = acquisition frame ``frame_permutation[i]``).
        snr: (J, C, K) for ``/calibration/snr``.
        user_fields: extra root datasets ``{"_name": str}`` (MDF user fields start with '_').
        transfer_function: (C, K_full) complex for ``/acquisition/receiver/transferFunction``.
        transfer_function_corrected: ``/measurement/isTransferFunctionCorrected``: the data are
            already divided by the transfer function.
        sparsity: a compressed calibration (:mod:`mdf_io.sparsity`): ``data`` holds the B kept
            coefficients of every row then the E background frames, and ``is_background_frame``
            describes the acquisition (O voxel frames, then E background frames).
    """
    data = np.asarray(data)
    if data.ndim != 4:
        raise MDFWriteError(path, "/measurement/data", "a 4D array (N, J, C, V|K)", f"shape {data.shape}")
    if fourier and not np.iscomplexobj(data):
        data = data.astype(np.complex128)
    if not fourier and np.iscomplexobj(data):
        raise MDFWriteError(path, "/measurement/data", "real time-domain samples", "complex values")
    if data.dtype.kind in "fc" and not np.all(np.isfinite(data)):
        raise MDFWriteError(path, "/measurement/data", "finite values", "NaN or Inf")
    n, j, c, x = data.shape
    if sparsity is not None:  # the stored frames are coefficients; the header counts acquisition frames
        if is_background_frame is None or frame_permutation is not None or not (fourier and fast_frame_axis):
            raise MDFWriteError(path, "/measurement/isSparsityTransformed", "frequency-domain data, frames last, "
                                "is_background_frame of the acquisition, no frame permutation", "something else")
        n = len(is_background_frame)
    header = header.model_copy(deep=True)
    header.acquisition.num_frames = n
    header.acquisition.num_periods_per_frame = j
    header.acquisition.receiver.num_channels = c
    k_full = header.acquisition.receiver.num_frequencies
    if fourier:
        expected_k = k_full if frequency_selection is None else len(frequency_selection)
        if x != expected_k:
            raise MDFWriteError(path, "/measurement/data", f"{expected_k} frequencies", f"{x}")
    elif x != header.acquisition.receiver.num_sampling_points:
        raise MDFWriteError(path, "/measurement/data",
                            f"{header.acquisition.receiver.num_sampling_points} time samples", f"{x}")
    bg = np.zeros(n, bool) if is_background_frame is None else np.asarray(is_background_frame, bool)
    if bg.shape != (n,):
        raise MDFWriteError(path, "/measurement/isBackgroundFrame", f"shape ({n},)", f"{bg.shape}")
    stored = data
    if frame_permutation is not None:
        perm = np.asarray(frame_permutation, np.int64)
        if not np.array_equal(np.sort(perm), np.arange(n)):
            raise MDFWriteError(path, "/measurement/framePermutation", f"a permutation of 0..{n - 1}",
                                "something else")
        stored = data[perm]
    if fast_frame_axis:
        stored = np.moveaxis(stored, 0, -1)
    with _h5.atomic_h5(path, overwrite=overwrite) as f:
        schema.write_header(f, header)
        if header.calibration is not None and snr is not None:
            f["calibration"].create_dataset("snr", data=np.asarray(snr, np.float64))
        _write_user_fields(f, path, user_fields)
        if transfer_function is not None:
            tf = np.atleast_2d(np.asarray(transfer_function))
            if tf.shape != (c, k_full):
                raise MDFWriteError(path, TF, f"shape ({c}, {k_full}) (C x K)", f"shape {tf.shape}")
            write_transfer_function(f, tf)
        mg = f.create_group("measurement")
        mg.create_dataset("data", data=np.ascontiguousarray(stored), compression=compression,
                          chunks=True if compression else None)
        _h5.write_bool(mg, "isFourierTransformed", fourier)
        _h5.write_bool(mg, "isFastFrameAxis", fast_frame_axis)
        _h5.write_bool(mg, "isBackgroundCorrected", background_corrected)
        _h5.write_bool(mg, "isFrequencySelection", frequency_selection is not None)
        _h5.write_bool(mg, "isFramePermutation", frame_permutation is not None)
        _h5.write_bool(mg, "isSpectralLeakageCorrected", False)
        _h5.write_bool(mg, "isTransferFunctionCorrected", bool(transfer_function_corrected))
        write_compression(mg, sparsity)
        mg.create_dataset("isBackgroundFrame", data=bg.astype(np.int8))
        if frequency_selection is not None:
            mg.create_dataset("frequencySelection", data=np.asarray(frequency_selection, np.int64) + 1)
        if frame_permutation is not None:
            mg.create_dataset("framePermutation", data=np.asarray(frame_permutation, np.int64) + 1)


def _write_user_fields(f, path, user_fields):
    for name, value in (user_fields or {}).items():
        if not name.startswith("_"):
            raise MDFWriteError(path, name, "a user field name starting with '_'", repr(name))
        _h5.write_str(f, name, value if isinstance(value, str) else json.dumps(value, default=json_default))


def _rows_as_block(path, rows: RowIndex, num_frequencies_full: int):
    """Check that rows form a full J x C x Ksel product; return (J, C, ksel, order)."""
    periods = np.unique(rows.period)
    channels = np.unique(rows.channel)
    ksel = np.unique(rows.frequency_index)
    j, c = periods.size, channels.size
    if (not np.array_equal(periods, np.arange(j)) or not np.array_equal(channels, np.arange(c))
            or len(rows) != j * c * ksel.size):
        raise MDFWriteError(path, "/measurement/data",
                            "rows forming a complete periods x channels x frequencies block "
                            "(write the matrix before per-row SNR selection)",
                            f"{len(rows)} rows over {j} periods, {c} channels, {ksel.size} frequencies")
    full = RowIndex.full(j, c, ksel.size)
    full = RowIndex(full.period, full.channel, ksel[full.frequency_index])
    order = rows.positions_of(full, path=path)
    fs = None if ksel.size == num_frequencies_full else ksel
    return j, c, ksel, order, fs


def write_system_matrix(path, sm: SystemMatrix, *, background=None, overwrite: bool = False,
                        fast_frame_axis: bool = True, method: Optional[str] = None,
                        background_corrected: Optional[bool] = None,
                        user_fields: Optional[dict] = None, sparsity: Optional[tuple[str, int]] = None):
    """Write ``sm`` as an MDF v2 calibration file (frames = voxels, then background frames).

    Args:
        sparsity: ``(transformation, B)``, e.g. ``("DCT-IV", 500)``: store each row's B largest
            coefficients of that orthonormal DCT over the grid (:mod:`mdf_io.sparsity`; B = the
            voxel count keeps all, an exact round trip).
        background: optional (E, R) empty-scanner spectra appended as background frames.
        method: ``/calibration/method``; default the header's.
        background_corrected: flag for the file; default ``sm.background_corrected``.
        user_fields: extra root datasets (names start with '_'), e.g. simulation parameters.
    """
    header = sm.header.model_copy(deep=True)
    rx = header.acquisition.receiver
    rx.bandwidth = float(sm.bandwidth)
    rx.num_sampling_points = int(sm.num_sampling_points)
    cal = header.calibration or Calibration()
    header.calibration = cal.model_copy(update=dict(
        size=tuple(sm.grid), field_of_view=tuple(sm.fov.tolist()),
        field_of_view_center=tuple(sm.center.tolist()), method=method or cal.method))
    j, c, ksel, order, fs = _rows_as_block(path, sm.rows, rx.num_frequencies)
    frames = sm.matrix[order].T  # (P, R) in block order
    comp = None
    if sparsity is not None:
        name, keep = sparsity
        if name not in TRANSFORMS:
            raise MDFWriteError(path, "/measurement/sparsityTransformation", f"one of {', '.join(TRANSFORMS)}",
                                repr(name))
        coeff, idx = compress_rows(sm.matrix[order], sm.grid, name, keep)
        frames = coeff.T  # (B, R): the kept coefficients take the voxel frames' place
        comp = Compression(transformation=name, indices=idx.reshape(j, c, ksel.size, -1))
    bg = None
    if background is not None:
        bg = np.atleast_2d(np.asarray(background))[:, order]
        frames = np.concatenate([frames, bg])
    data = frames.reshape(frames.shape[0], j, c, ksel.size)
    n_bg = 0 if bg is None else bg.shape[0]
    is_bg = np.zeros(sm.num_voxels + n_bg, bool)
    is_bg[sm.num_voxels:] = True
    snr = sm.snr[order].reshape(j, c, ksel.size)
    snr = np.where(np.isfinite(snr), snr, np.finfo(np.float64).max)
    write_mdf(path, header, data, fourier=True, is_background_frame=is_bg,
              fast_frame_axis=fast_frame_axis, frequency_selection=fs,
              background_corrected=sm.background_corrected if background_corrected is None
              else background_corrected, snr=snr, overwrite=overwrite, user_fields=user_fields,
              transfer_function=sm.transfer_function, transfer_function_corrected=sm.transfer_function_corrected,
              sparsity=comp)


def write_measurement(path, meas: Measurement, *, overwrite: bool = False):
    """Write ``meas`` (foreground + background frames) as a frequency-domain MDF measurement."""
    header = meas.header.model_copy(deep=True)
    header.calibration = None
    rx = header.acquisition.receiver
    rx.bandwidth = float(meas.bandwidth)
    rx.num_sampling_points = int(meas.num_sampling_points)
    j, c, ksel, order, fs = _rows_as_block(path, meas.rows, rx.num_frequencies)
    frames = meas.data[:, order]
    n_fg = frames.shape[0]
    if meas.background is not None:
        frames = np.concatenate([frames, meas.background[:, order]])
    is_bg = np.zeros(frames.shape[0], bool)
    is_bg[n_fg:] = True
    write_mdf(path, header, frames.reshape(frames.shape[0], j, c, ksel.size), fourier=True,
              is_background_frame=is_bg, frequency_selection=fs,
              background_corrected=meas.background_subtracted, overwrite=overwrite,
              transfer_function=meas.transfer_function,
              transfer_function_corrected=meas.transfer_function_corrected)


def write_reconstruction(path, recon: Reconstruction, *, overwrite: bool = False):
    """Write ``recon`` as an MDF v2 file with a ``/reconstruction`` group (Q x P x 1).

    The method name and its parameters go to the user fields ``/reconstruction/_method`` and
    ``/reconstruction/_parameters`` (JSON).
    """
    images = _checked_images(path, recon.images, recon.grid)
    with _h5.atomic_h5(path, overwrite=overwrite) as f:
        data = _reconstruction_group(f, recon, images.shape[0])
        data[...] = images.reshape(data.shape)
        _h5.write_str(f["reconstruction"], "_parameters",
                      json.dumps(recon.parameters, default=json_default, sort_keys=True))


def _checked_images(path, images, grid) -> np.ndarray:
    images = np.asarray(images, dtype=np.float64)
    if not np.all(np.isfinite(images)):
        raise MDFWriteError(path, "/reconstruction/data", "finite values", "NaN or Inf")
    q, p = images.shape[0], int(np.prod(grid))
    if images.size != q * p:
        raise MDFWriteError(path, "/reconstruction/data", f"{q} x {p} voxels", f"shape {images.shape}")
    return images


def _reconstruction_group(f, recon: Reconstruction, frames: int):
    """Header and ``/reconstruction`` of ``recon`` in the open file ``f``; returns the empty
    (frames, P, 1) float64 dataset ``/reconstruction/data``."""
    p = int(np.prod(recon.grid))
    schema.write_header(f, recon.header, calibration=False)
    rg = f.create_group("reconstruction")
    data = rg.create_dataset("data", shape=(frames, p, 1), dtype=np.float64,
                             chunks=(max(1, min(frames, 2 ** 20 // (8 * p) or 1)), p, 1))
    rg.create_dataset("size", data=np.asarray(recon.grid, np.int64))
    _h5.write_str(rg, "order", "xyz")
    rg.create_dataset("fieldOfView", data=np.asarray(recon.fov, np.float64))
    rg.create_dataset("fieldOfViewCenter", data=np.asarray(recon.center, np.float64))
    rg.create_dataset("isOverscanRegion", data=np.zeros(p, np.int8))
    _h5.write_str(rg, "_method", recon.method)
    return data


class ReconstructionStream:
    """Write a reconstruction of ``frames`` frames block by block into the (temporary, existing)
    file ``path``: the header and geometry of ``recon`` (its images are not read) at once, the
    frames with :meth:`write`, the parameters (which may grow while the frames are solved) with
    :meth:`close`. Memory stays that of one block. Use inside :func:`mdf_io.atomic.atomic_output`
    so the final file appears complete or not at all."""

    def __init__(self, path, recon: Reconstruction, frames: int):
        import h5py
        self.path, self.recon, self.frames, self.done = path, recon, int(frames), 0
        self._file = h5py.File(path, "w")
        try:
            self._data = _reconstruction_group(self._file, recon, self.frames)
        except BaseException:
            self._file.close()
            raise

    def write(self, images: np.ndarray) -> None:
        """Append ``images`` (n, *image_shape*) after the frames written so far."""
        images = _checked_images(self.path, images, self.recon.grid)
        n = images.shape[0]
        if self.done + n > self.frames:
            raise MDFWriteError(self.path, "/reconstruction/data", f"{self.frames} frames",
                                f"{self.done + n} frames written")
        self._data[self.done:self.done + n] = images.reshape(n, -1, 1)
        self.done += n

    def close(self, parameters: Optional[dict] = None) -> None:
        """Record ``parameters`` (default: the reconstruction's) and close; refuses a file with
        frames missing."""
        try:
            if self.done != self.frames:
                raise MDFWriteError(self.path, "/reconstruction/data", f"{self.frames} frames",
                                    f"{self.done} written")
            params = self.recon.parameters if parameters is None else parameters
            _h5.write_str(self._file["reconstruction"], "_parameters",
                          json.dumps(params, default=json_default, sort_keys=True))
        finally:
            self._file.close()


def json_default(obj):
    """``json.dumps`` fallback: arrays as lists, numpy scalars as Python numbers, else ``str``."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return str(obj)
