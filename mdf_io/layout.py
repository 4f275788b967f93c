"""How ``/measurement/data`` is stored: flags, shape, frequency selection, frame permutation.

:func:`read_layout` validates the measurement group against the header before any data are
read: every declared size is compared with the actual dataset shapes, index arrays are read
only after their shape is known to fit, and the data are checked to be present in the file.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from . import _h5
from .errors import MDFFormatError, MDFNotSupportedError
from .sparsity import Compression, read_compression

FLAGS = ("isFourierTransformed", "isFastFrameAxis", "isBackgroundCorrected",
         "isFrequencySelection", "isFramePermutation", "isSpectralLeakageCorrected",
         "isTransferFunctionCorrected", "isSparsityTransformed")
DATA = "/measurement/data"


@dataclass(frozen=True)
class DataLayout:
    """How ``/measurement/data`` is stored (all indices 0-based)."""

    shape: tuple  # canonical (N, J, C, X): X = V samples (time) or K stored frequencies
    fourier: bool
    fast_frame_axis: bool
    background_corrected: bool
    frequency_selection: Optional[np.ndarray]  # full-spectrum index of each stored frequency
    frame_permutation: Optional[np.ndarray]  # acquisition frame of each stored frame
    is_background_frame: np.ndarray  # (N,) bool, acquisition order
    transfer_function_corrected: bool = False  # spectra already divided by the transfer function
    #: a sparsity-transformed calibration (:mod:`mdf_io.sparsity`): data frames are its B
    #: coefficients then the background frames; None for ordinary data
    compression: Optional[Compression] = None

    @property
    def num_frames(self) -> int:
        return self.shape[0]


def read_layout(f, header) -> DataLayout:
    """Validated :class:`DataLayout` of the open file ``f`` whose metadata are ``header``."""
    path = f.filename
    if not _h5.group_exists(f, "/measurement"):
        raise MDFFormatError(path, "/measurement", "a /measurement group", "nothing")
    flags = {name: _h5.read_bool(f, "/measurement/" + name, required=True) for name in FLAGS}
    compressed = flags["isSparsityTransformed"]
    if compressed and not (flags["isFourierTransformed"] and flags["isFastFrameAxis"] and header.calibration
                           and not flags["isFramePermutation"]):
        raise MDFNotSupportedError(path, "/measurement/isSparsityTransformed",
                                   "0, or 1 for a frequency-domain calibration with frames last and no "
                                   "frame permutation",
                                   "1 on other data")
    ds = _h5.require(f, DATA)
    acq = header.acquisition
    n, j, c = acq.num_frames, acq.num_periods_per_frame, acq.receiver.num_channels
    v = acq.receiver.num_sampling_points
    fourier, fast = flags["isFourierTransformed"], flags["isFastFrameAxis"]
    shape = _h5.shape_of(f, DATA, ds)
    fs = None
    if flags["isFrequencySelection"]:
        k_axis = shape[2] if fast and len(shape) == 4 else shape[-1] if shape else 0
        fs = _frequency_selection(f, v // 2 + 1, k_axis if fourier else None)
    x = (fs.size if fs is not None else v // 2 + 1) if fourier else v
    expected = (j, c, x, n) if fast else (n, j, c, x)
    compression = None
    if compressed:  # frames last: B coefficients of every row, then the background frames
        bg0 = _h5.read_array(f, "/measurement/isBackgroundFrame", shape=(n,), kinds="iub", max_elements=n)
        background = int(np.sum(bg0 != 0))
        compression = read_compression(f, path, j, c, x, n - background)
        expected = (j, c, x, compression.num_coefficients + background)
    if not fourier and len(shape) == 4 and shape[-2 if fast else -1] != v:
        if _matches_except_samples(shape, expected, fast):
            raise MDFNotSupportedError(path, DATA, f"{v} time samples per period (numSamplingPoints)",
                                       f"{shape[-2 if fast else -1]}: processed time-domain data "
                                       "are not supported")
    _check_declared(path, shape, expected, fast)
    _h5.check_type(f, DATA, ds)
    _check_dtype(path, ds, fourier)
    _h5.check_stored(f, DATA, ds)
    perm = None
    if flags["isFramePermutation"]:
        perm = _h5.read_array(f, "/measurement/framePermutation", shape=(n,), kinds="iu",
                              max_elements=n).astype(np.int64) - 1
        if not np.array_equal(np.sort(perm), np.arange(n)):
            raise MDFFormatError(path, "/measurement/framePermutation",
                                 f"a permutation of 1..{n}", "repeated or out-of-range indices")
    bg = _h5.read_array(f, "/measurement/isBackgroundFrame", shape=(n,), kinds="iub",
                        max_elements=n)
    if np.any((bg != 0) & (bg != 1)):
        raise MDFFormatError(path, "/measurement/isBackgroundFrame", "0 or 1 per frame",
                             f"values {np.unique(bg)[:5].tolist()}")
    if header.calibration is not None:
        _check_grid(path, header.calibration.size, int(np.sum(bg == 0)))
    return DataLayout(shape=(n, j, c, x), fourier=fourier, fast_frame_axis=fast,
                      background_corrected=flags["isBackgroundCorrected"],
                      frequency_selection=fs, frame_permutation=perm, is_background_frame=bg.astype(bool),
                      transfer_function_corrected=flags["isTransferFunctionCorrected"], compression=compression)


_AXES = ("/acquisition/numFrames", "/acquisition/numPeriodsPerFrame",
         "/acquisition/receiver/numChannels", None)


def _check_declared(path, shape, expected, fast: bool) -> None:
    """``/measurement/data`` has the declared shape; when only the frame, period or channel
    count differs the error names the header field that declares it."""
    if len(shape) == len(expected):
        wrong = [i for i, (s, e) in enumerate(zip(shape, expected)) if s != e]
        canonical = [(i + 1) % 4 if fast else i for i in wrong]  # fast: (J, C, X, N)
        if len(wrong) == 1 and _AXES[canonical[0]]:
            raise MDFFormatError(path, _AXES[canonical[0]], f"{shape[wrong[0]]} to match "
                                 f"/measurement/data (shape {shape})", f"{expected[wrong[0]]}")
    _h5.check_shape(path, DATA, shape, expected)


def _check_grid(path, size, n_foreground: int) -> None:
    if math.prod(size) != n_foreground:
        raise MDFFormatError(path, "/calibration/size",
                             f"a grid with {n_foreground} voxels (foreground frames)", f"{tuple(size)}")


def _matches_except_samples(shape, expected, fast: bool) -> bool:
    axis = 2 if fast else 3
    return all(s == e for i, (s, e) in enumerate(zip(shape, expected)) if i != axis)


def _frequency_selection(f, k_full: int, k_stored: Optional[int]) -> np.ndarray:
    """0-based full-spectrum indices, in stored order (any order; no duplicates)."""
    name = "/measurement/frequencySelection"
    limit = k_full if k_stored is None else k_stored
    fs = _h5.read_array(f, name, kinds="iu", max_elements=limit)
    if fs.ndim != 1 or fs.size == 0:
        raise MDFFormatError(f.filename, name, "a non-empty vector of frequency indices", f"shape {fs.shape}")
    if fs.dtype.kind == "u" and fs.max() > np.iinfo(np.int64).max:
        raise MDFFormatError(f.filename, name, f"1-based indices in 1..{k_full}", f"up to {fs.max()}")
    fs = fs.astype(np.int64) - 1
    if fs.min() < 0 or fs.max() >= k_full:
        raise MDFFormatError(f.filename, name, f"1-based indices in 1..{k_full}",
                             f"values in {fs.min() + 1}..{fs.max() + 1}")
    if np.unique(fs).size != fs.size:
        raise MDFFormatError(f.filename, name, "distinct frequency indices", "duplicates")
    return fs


def _check_dtype(path, ds, fourier: bool) -> None:
    dt = ds.dtype
    if fourier:
        ok = dt.kind == "c" or (dt.names is not None and {"r", "i"} <= set(dt.names)
                                and all(dt[k].kind in "iuf" and dt[k].shape == () for k in ("r", "i")))
        if not ok:
            raise MDFFormatError(path, DATA, "complex values (compound r/i) for frequency-domain data",
                                 f"dtype {dt}")
    elif dt.kind not in "iuf":
        raise MDFFormatError(path, DATA, "real or integer time-domain samples", f"dtype {dt}")
