"""Lazy reader of MDF v2 files (calibration, measurement and reconstruction).

:class:`MDFFile` keeps the HDF5 file open and reads only what is asked for: the header, the
SNR, or a subset of frames and frequencies of ``/measurement/data``. The functions
:func:`read_system_matrix`, :func:`read_measurement` and :func:`read_reconstruction` build
the typed objects of :mod:`mdf_io.containers`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from . import _h5
from .containers import Measurement, Reconstruction, RowIndex, SystemMatrix, frequency_axis
from .errors import MDFFormatError, MDFMismatchError, MDFNotSupportedError
from .metadata import (Acquisition, Calibration, DriveField, Experiment, GeneralInfo, MDFHeader,
                       Receiver, Scanner, Study, Tracer)

_FLAGS = ("isFourierTransformed", "isFastFrameAxis", "isBackgroundCorrected",
          "isFrequencySelection", "isFramePermutation", "isSpectralLeakageCorrected",
          "isTransferFunctionCorrected", "isSparsityTransformed")


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

    @property
    def num_frames(self) -> int:
        return self.shape[0]


class MDFFile:
    """An open MDF v2 file with lazy access. Use as a context manager or call :meth:`close`."""

    def __init__(self, path):
        self.path = Path(path)
        self._f = _h5.open_h5(self.path)
        self._header: Optional[MDFHeader] = None
        self._layout: Optional[DataLayout] = None
        version = _h5.read_str(self._f, "/version", "")
        if not version:
            self.close()
            raise MDFFormatError(self.path, "/version", "an MDF version string such as '2.1.0'",
                                 "nothing (not an MDF file?)")
        try:
            major = int(version.split(".")[0])
        except ValueError:
            major = -1
        if major != 2:
            self.close()
            raise MDFNotSupportedError(self.path, "/version", "MDF version 2.x", f"'{version}'")

    # -- context manager ------------------------------------------------------------------
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if getattr(self, "_f", None) is not None:
            self._f.close()
            self._f = None

    @property
    def h5(self):
        return self._f

    # -- metadata ---------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        """'calibration', 'measurement' or 'reconstruction'."""
        f = self._f
        if "measurement" in f and "calibration" in f:
            return "calibration"
        if "measurement" in f:
            return "measurement"
        if "reconstruction" in f:
            return "reconstruction"
        raise MDFFormatError(self.path, "/measurement", "a /measurement or /reconstruction group",
                             "neither")

    @property
    def header(self) -> MDFHeader:
        """All metadata as pydantic models (reads only small datasets)."""
        if self._header is None:
            self._header = self._read_header()
        return self._header

    def _read_header(self) -> MDFHeader:
        f = self._f
        s, i = _h5.read_str, _h5.read_int
        general = GeneralInfo(version=s(f, "/version", required=True),
                              uuid=s(f, "/uuid", required=True), time=s(f, "/time", required=True))
        study = Study(name=s(f, "/study/name"), number=i(f, "/study/number"),
                      uuid=s(f, "/study/uuid", general.uuid), description=s(f, "/study/description"))
        experiment = Experiment(
            name=s(f, "/experiment/name"), number=i(f, "/experiment/number"),
            uuid=s(f, "/experiment/uuid", general.uuid),
            description=s(f, "/experiment/description"), subject=s(f, "/experiment/subject"),
            is_simulation=_h5.read_bool(f, "/experiment/isSimulation"))
        scanner = Scanner(facility=s(f, "/scanner/facility"),
                          manufacturer=s(f, "/scanner/manufacturer"), name=s(f, "/scanner/name"),
                          operator=s(f, "/scanner/operator"), topology=s(f, "/scanner/topology", "FFP"))
        tracer = None
        if "tracer" in f:
            def vec(name, conv):
                v = _h5.read_value(f, "/tracer/" + name, None)
                return [] if v is None else [conv(x) for x in np.atleast_1d(v)]
            tracer = Tracer(name=vec("name", str), batch=vec("batch", str), vendor=vec("vendor", str),
                            volume=vec("volume", float), concentration=vec("concentration", float),
                            solute=vec("solute", str))
        acquisition = self._read_acquisition()
        calibration = None
        if "calibration" in f:
            size = _h5.read_array(f, "/calibration/size", shape=(3,), kinds="iu",
                                  required="measurement" in f)
            fov = _h5.read_array(f, "/calibration/fieldOfView", shape=(3,), required=False)
            ctr = _h5.read_array(f, "/calibration/fieldOfViewCenter", shape=(3,), required=False)
            dss = _h5.read_array(f, "/calibration/deltaSampleSize", shape=(3,), required=False)
            method = s(f, "/calibration/method", "robot")
            if method not in ("robot", "hybrid", "simulation"):
                raise MDFFormatError(self.path, "/calibration/method",
                                     "'robot', 'hybrid' or 'simulation'", repr(method))
            calibration = Calibration(
                method=method, size=tuple(int(v) for v in (size if size is not None else (1, 1, 1))),
                order=s(f, "/calibration/order", "xyz"),
                field_of_view=tuple(float(v) for v in (fov if fov is not None else (0, 0, 0))),
                field_of_view_center=tuple(float(v) for v in (ctr if ctr is not None else (0, 0, 0))),
                delta_sample_size=None if dss is None else tuple(float(v) for v in dss))
        return MDFHeader(general=general, study=study, experiment=experiment, scanner=scanner,
                         tracer=tracer, acquisition=acquisition, calibration=calibration)

    def _read_acquisition(self) -> Acquisition:
        f = self._f
        if "acquisition" not in f:
            if "measurement" in f:
                _h5.require(f, "/acquisition/receiver/bandwidth")
            return Acquisition()
        i, fl = _h5.read_int, _h5.read_float
        req = "measurement" in f
        rx = "/acquisition/receiver/"
        dcf = _h5.read_array(f, rx + "dataConversionFactor", required=False)
        ind = _h5.read_array(f, rx + "inductionFactor", required=False)
        receiver = Receiver(
            bandwidth=fl(f, rx + "bandwidth", required=req),
            num_channels=i(f, rx + "numChannels", 1, required=req),
            num_sampling_points=i(f, rx + "numSamplingPoints", 1, required=req),
            unit=_h5.read_str(f, rx + "unit", "V"),
            data_conversion_factor=None if dcf is None else np.atleast_2d(dcf).astype(float).tolist(),
            induction_factor=None if ind is None else np.atleast_1d(ind).astype(float).tolist())
        df = "/acquisition/drivefield/"
        drive = DriveField()
        if "acquisition/drivefield" in f:
            div = _h5.read_value(f, df + "divider")
            wav = _h5.read_value(f, df + "waveform")
            drive = DriveField(
                base_frequency=fl(f, df + "baseFrequency", drive.base_frequency),
                cycle=fl(f, df + "cycle", 0.0),
                divider=np.atleast_2d(div).astype(int).tolist() if div is not None else drive.divider,
                num_channels=i(f, df + "numChannels", drive.num_channels),
                phase=_as3d(_h5.read_value(f, df + "phase"), drive.phase),
                strength=_as3d(_h5.read_value(f, df + "strength"), drive.strength),
                waveform=np.atleast_2d(wav).astype(str).tolist() if wav is not None else drive.waveform)
        return Acquisition(num_averages=i(f, "/acquisition/numAverages", 1),
                           num_frames=i(f, "/acquisition/numFrames", 1, required=req),
                           num_periods_per_frame=i(f, "/acquisition/numPeriodsPerFrame", 1),
                           start_time=_h5.read_str(f, "/acquisition/startTime", ""),
                           drivefield=drive, receiver=receiver)

    # -- data layout --------------------------------------------------------------------------
    @property
    def layout(self) -> DataLayout:
        """Flags and shape of ``/measurement/data`` (validated against the header)."""
        if self._layout is None:
            self._layout = self._read_layout()
        return self._layout

    def _read_layout(self) -> DataLayout:
        f, path = self._f, self.path
        if "measurement" not in f:
            raise MDFFormatError(path, "/measurement", "a /measurement group", "nothing")
        flags = {name: _h5.read_bool(f, "/measurement/" + name, required=True) for name in _FLAGS}
        if flags["isSparsityTransformed"]:
            raise MDFNotSupportedError(path, "/measurement/isSparsityTransformed",
                                       "0 (uncompressed data)",
                                       "1: sparsity-transformed data are not supported")
        ds = _h5.require(f, "/measurement/data")
        acq = self.header.acquisition
        n, j, c = acq.num_frames, acq.num_periods_per_frame, acq.receiver.num_channels
        v = acq.receiver.num_sampling_points
        k_full = v // 2 + 1
        fourier = flags["isFourierTransformed"]
        fs = None
        if flags["isFrequencySelection"]:
            fs = _h5.read_array(f, "/measurement/frequencySelection", kinds="iu").ravel().astype(np.int64) - 1
            if fs.size and (fs.min() < 0 or fs.max() >= k_full):
                raise MDFFormatError(path, "/measurement/frequencySelection",
                                     f"1-based indices in 1..{k_full}",
                                     f"values in {fs.min() + 1}..{fs.max() + 1}")
        x = (fs.size if fs is not None else k_full) if fourier else v
        shape = ds.shape
        fast = flags["isFastFrameAxis"]
        expected = (j, c, x, n) if fast else (n, j, c, x)
        if not fourier and ds.ndim == 4 and shape[-1] != v:
            # processed time domain (W samples) is allowed: accept any W
            expected = (n, j, c, None) if not fast else (j, c, None, n)
        _h5.check_shape(path, "/measurement/data", shape, expected)
        kind = ds.dtype.kind
        if fourier and kind != "c" and not (ds.dtype.names and set(ds.dtype.names) >= {"r", "i"}):
            raise MDFFormatError(path, "/measurement/data",
                                 "complex values (compound r/i) for frequency-domain data",
                                 f"dtype {ds.dtype}")
        if not fourier and kind not in "iuf":
            raise MDFFormatError(path, "/measurement/data", "real or integer time-domain samples",
                                 f"dtype {ds.dtype}")
        perm = None
        if flags["isFramePermutation"]:
            perm = _h5.read_array(f, "/measurement/framePermutation", shape=(n,), kinds="iu").astype(np.int64) - 1
            if not np.array_equal(np.sort(perm), np.arange(n)):
                raise MDFFormatError(path, "/measurement/framePermutation",
                                     f"a permutation of 1..{n}", "repeated or out-of-range indices")
        bg = _h5.read_array(f, "/measurement/isBackgroundFrame", shape=(n,), kinds="iub",
                            required=True).astype(bool)
        return DataLayout(shape=(n, j, c, x), fourier=fourier, fast_frame_axis=fast,
                          background_corrected=flags["isBackgroundCorrected"],
                          frequency_selection=fs, frame_permutation=perm, is_background_frame=bg)

    @property
    def num_frequencies_full(self) -> int:
        return self.header.acquisition.receiver.num_frequencies

    @property
    def frequencies(self) -> np.ndarray:
        """Full frequency axis (Hz), (K_full,)."""
        rx = self.header.acquisition.receiver
        return frequency_axis(rx.num_sampling_points, rx.bandwidth)

    @property
    def available_frequency_indices(self) -> np.ndarray:
        """Full-spectrum indices of the frequencies this file holds."""
        lay = self.layout
        if lay.fourier and lay.frequency_selection is not None:
            return lay.frequency_selection
        return np.arange(self.num_frequencies_full)

    def snr(self) -> Optional[np.ndarray]:
        """``/calibration/snr`` as (J, C, K_avail) float64 (K_avail = available frequencies), or None."""
        if "calibration/snr" not in self._f:
            return None
        lay = self.layout
        k_avail = self.available_frequency_indices.size
        arr = _h5.read_array(self._f, "/calibration/snr", kinds="iuf", finite=False).astype(np.float64)
        j, c = lay.shape[1], lay.shape[2]
        if arr.shape == (j, c, self.num_frequencies_full) and k_avail != arr.shape[2]:
            arr = arr[:, :, self.available_frequency_indices]
        _h5.check_shape(self.path, "/calibration/snr", arr.shape, (j, c, k_avail))
        if np.any(np.isnan(arr)):
            raise MDFFormatError(self.path, "/calibration/snr", "numbers (no NaN)", "NaN")
        return arr

    def read_spectra(self, frames: Optional[Sequence[int]] = None,
                     frequency_indices: Optional[Sequence[int]] = None) -> np.ndarray:
        """Spectra of ``frames`` (acquisition order, 0-based; default all) at full-spectrum
        ``frequency_indices`` (default all available), complex128 (n, J, C, k).

        Time-domain data are converted (dataConversionFactor, then rfft over one period).
        Only the needed part of the dataset is read from disk.
        """
        lay = self.layout
        n = lay.num_frames
        frames = np.arange(n) if frames is None else np.asarray(frames, dtype=np.int64).ravel()
        if frames.size and (frames.min() < 0 or frames.max() >= n):
            raise MDFFormatError(self.path, "/measurement/data", f"frame indices in 0..{n - 1}",
                                 f"{frames.min()}..{frames.max()}")
        stored = frames
        if lay.frame_permutation is not None:
            inverse = np.empty(n, np.int64)
            inverse[lay.frame_permutation] = np.arange(n)
            stored = inverse[frames]
        avail = self.available_frequency_indices
        if frequency_indices is None:
            kpos = None
            kwant = avail
        else:
            kwant = np.asarray(frequency_indices, dtype=np.int64).ravel()
            lookup = np.full(self.num_frequencies_full, -1, np.int64)
            lookup[avail] = np.arange(avail.size)
            bad = (kwant < 0) | (kwant >= lookup.size)
            if np.any(bad) or np.any(lookup[np.clip(kwant, 0, lookup.size - 1)] < 0):
                raise MDFMismatchError(self.path, "/measurement/frequencySelection",
                                       "the requested frequency indices to be stored in the file",
                                       "some are missing")
            kpos = lookup[kwant]
        ds = self._f["/measurement/data"]
        if lay.fourier:
            raw = _read_subset(ds, stored, kpos, lay.fast_frame_axis)
            out = _complex(raw)
        else:
            raw = _read_subset(ds, stored, None, lay.fast_frame_axis).astype(np.float64)
            dcf = self.header.acquisition.receiver.data_conversion_factor
            if dcf is not None:
                dcf = np.asarray(dcf, np.float64)
                _h5.check_shape(self.path, "/acquisition/receiver/dataConversionFactor",
                                dcf.shape, (lay.shape[2], 2))
                raw = raw * dcf[None, None, :, 0, None] + dcf[None, None, :, 1, None]
            spectra = np.fft.rfft(raw, axis=-1)
            out = spectra if kpos is None else spectra[..., kwant]
        _h5.check_finite(self.path, "/measurement/data", out)
        return out

    def user_field(self, name: str, default=None):
        """A root user field (name starting with '_'), JSON-decoded when possible."""
        value = _h5.read_value(self._f, "/" + name.lstrip("/"), None)
        if value is None:
            return default
        try:
            return json.loads(value)
        except (TypeError, ValueError):
            return value

    def available_rows(self) -> RowIndex:
        """Every (period, channel, frequency) row the file holds, k fastest."""
        _, j, c, _ = self.layout.shape
        avail = self.available_frequency_indices
        full = RowIndex.full(j, c, avail.size)
        return RowIndex(full.period, full.channel, avail[full.frequency_index])

    def wanted_rows(self, rows: Optional[RowIndex] = None, channels=None, frequency_indices=None) -> RowIndex:
        """``rows`` (checked to be present), or the held rows restricted to channels/frequencies."""
        held = self.available_rows()
        if rows is not None:
            return held.take(held.positions_of(rows, path=self.path, field="/measurement/data"))
        return held.take(np.flatnonzero(_selected_rows(held, channels, frequency_indices)))

    # -- reconstruction ---------------------------------------------------------------------
    def read_reconstruction(self) -> Reconstruction:
        """The ``/reconstruction`` group as :class:`Reconstruction` (images Q x image shape)."""
        f = self._f
        data = _h5.read_array(f, "/reconstruction/data", kinds="iuf")
        if data.ndim != 3:
            raise MDFFormatError(self.path, "/reconstruction/data", "shape (Q, P, S)",
                                 f"shape {data.shape}")
        size = _h5.read_array(f, "/reconstruction/size", shape=(3,), kinds="iu", required=False)
        size = tuple(int(v) for v in size) if size is not None else (data.shape[1], 1, 1)
        if int(np.prod(size)) != data.shape[1]:
            raise MDFFormatError(self.path, "/reconstruction/size",
                                 f"3 integers with product {data.shape[1]} (P)", f"{size}")
        fov = _h5.read_array(f, "/reconstruction/fieldOfView", shape=(3,), required=False)
        ctr = _h5.read_array(f, "/reconstruction/fieldOfViewCenter", shape=(3,), required=False)
        nx, ny, nz = size
        shape = (ny, nx) if nz == 1 else (nz, ny, nx)
        images = data[:, :, 0].reshape((data.shape[0],) + shape)
        params = _h5.read_str(f, "/reconstruction/_parameters", "{}")
        return Reconstruction(images=images, grid=size,
                              fov=np.zeros(3) if fov is None else fov,
                              center=np.zeros(3) if ctr is None else ctr,
                              method=_h5.read_str(f, "/reconstruction/_method", ""),
                              parameters=json.loads(params), header=self._safe_header(),
                              source=str(self.path))

    def _safe_header(self) -> MDFHeader:
        try:
            return self.header
        except MDFFormatError:
            return MDFHeader()


def _as3d(value, default):
    if value is None:
        return default
    arr = np.asarray(value, dtype=float)
    while arr.ndim < 3:
        arr = arr[None]
    return arr.tolist()


def _complex(raw: np.ndarray) -> np.ndarray:
    if raw.dtype.names:
        return raw["r"].astype(np.float64) + 1j * raw["i"].astype(np.float64)
    return raw.astype(np.complex128)


def _read_subset(ds, stored_frames: np.ndarray, kpos: Optional[np.ndarray], fast: bool) -> np.ndarray:
    """Read stored frames and frequency positions, returning canonical (n, J, C, k).

    h5py accepts one increasing index list per read, so the more selective axis is read from
    disk with it and the other is indexed in memory.
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
        block = ds[:, :, uk, :] if fast else ds[:, :, :, uk]
        block = block[..., inv_k, :][..., unique_frames] if fast else block[unique_frames][..., inv_k]
    else:
        block = ds[..., unique_frames] if fast else ds[unique_frames]
        if kpos is not None:
            block = block[:, :, kpos, :] if fast else block[..., kpos]
    if fast:
        block = np.moveaxis(block, -1, 0)
    out = np.empty_like(block)
    out[frame_order] = block[inv_f]
    return out


def _selected_rows(rows: RowIndex, channels, frequency_indices) -> np.ndarray:
    keep = np.ones(len(rows), bool)
    if channels is not None:
        keep &= np.isin(rows.channel, np.asarray(channels))
    if frequency_indices is not None:
        keep &= np.isin(rows.frequency_index, np.asarray(frequency_indices))
    return keep


def read_system_matrix(path, *, rows: Optional[RowIndex] = None, channels=None,
                       frequency_indices=None, subtract_background: bool = True) -> SystemMatrix:
    """Read a calibration file as a :class:`SystemMatrix` (R x P complex128).

    Args:
        path: MDF v2 calibration file (``/calibration`` and ``/measurement`` groups).
        rows: read only these (period, channel, frequency) rows (e.g. after SNR selection);
            only the frequencies they need are loaded from disk.
        channels, frequency_indices: alternatively keep these receive channels (0-based) and
            full-spectrum frequency indices.
        subtract_background: if the file holds background frames and is not background
            corrected, subtract their mean from every voxel frame (MDF guidance).
    """
    with MDFFile(path) as mdf:
        if mdf.kind != "calibration":
            raise MDFFormatError(path, "/calibration", "a calibration (system-matrix) file",
                                 f"a {mdf.kind} file")
        header, lay = mdf.header, mdf.layout
        cal = header.calibration
        grid = tuple(cal.size)
        n_fg = int(np.sum(~lay.is_background_frame))
        if n_fg != int(np.prod(grid)):
            raise MDFFormatError(path, "/calibration/size",
                                 f"a grid with {n_fg} voxels (foreground frames)", f"{grid}")
        avail = mdf.available_frequency_indices
        wanted = mdf.wanted_rows(rows, channels, frequency_indices)
        k_needed = np.unique(wanted.frequency_index)
        fg = np.flatnonzero(~lay.is_background_frame)
        bgf = np.flatnonzero(lay.is_background_frame)
        spectra = mdf.read_spectra(np.concatenate([fg, bgf]), k_needed)  # (n, J, C, k)
        kmap = np.searchsorted(k_needed, wanted.frequency_index)
        flat = spectra[:, wanted.period, wanted.channel, kmap]  # (n, R)
        matrix = flat[: fg.size]
        corrected = lay.background_corrected
        if subtract_background and bgf.size and not corrected:
            matrix = matrix - flat[fg.size:].mean(axis=0, keepdims=True)
            corrected = True
        snr_full = mdf.snr()
        if snr_full is None:
            snr = np.full(len(wanted), np.inf)
        else:
            kpos = np.searchsorted(avail, wanted.frequency_index)
            snr = snr_full[wanted.period, wanted.channel, kpos]
        rx = header.acquisition.receiver
        return SystemMatrix(matrix=np.ascontiguousarray(matrix.T), rows=wanted,
                            frequencies=mdf.frequencies[wanted.frequency_index], snr=snr,
                            grid=grid, fov=np.array(cal.field_of_view),
                            center=np.array(cal.field_of_view_center), bandwidth=rx.bandwidth,
                            num_sampling_points=rx.num_sampling_points, header=header,
                            background_corrected=corrected, source=str(path))


def read_measurement(path, *, frames=None, average: bool = False, subtract_background: bool = True,
                     background=None, rows: Optional[RowIndex] = None, channels=None,
                     frequency_indices=None) -> Measurement:
    """Read a measurement file as a :class:`Measurement` (foreground spectra, frames x R).

    Args:
        path: MDF v2 measurement (or calibration) file; time-domain data are rfft'ed.
        frames: foreground frame numbers to keep (0-based, counting foreground frames only).
        average: average the kept foreground frames into one.
        subtract_background: subtract the mean background spectrum (from the file's background
            frames or from ``background``) unless the file is already corrected.
        background: a separate empty-scanner measurement (path or :class:`Measurement`).
        rows / channels / frequency_indices: restrict the columns (see :func:`read_system_matrix`).
    """
    with MDFFile(path) as mdf:
        header, lay = mdf.header, mdf.layout
        wanted = mdf.wanted_rows(rows, channels, frequency_indices)
        k_needed = np.unique(wanted.frequency_index)
        kmap = np.searchsorted(k_needed, wanted.frequency_index)
        fg_all = np.flatnonzero(~lay.is_background_frame)
        bg_all = np.flatnonzero(lay.is_background_frame)
        fg = fg_all if frames is None else fg_all[_check_frames(path, frames, fg_all.size)]
        data = mdf.read_spectra(fg, k_needed)[:, wanted.period, wanted.channel, kmap]
        bg = None
        if bg_all.size:
            bg = mdf.read_spectra(bg_all, k_needed)[:, wanted.period, wanted.channel, kmap]
        rx = header.acquisition.receiver
        freqs = mdf.frequencies[wanted.frequency_index]
    meas = Measurement(data=data, rows=wanted, frequencies=freqs, bandwidth=rx.bandwidth,
                       num_sampling_points=rx.num_sampling_points, background=bg,
                       background_subtracted=lay.background_corrected, frame_indices=fg,
                       header=header, source=str(path))
    if background is not None:
        if isinstance(background, Measurement):
            other = background.take_rows(background.rows.positions_of(
                wanted, path=background.source, field="/measurement/data"))
        else:
            other = read_measurement(background, rows=wanted, subtract_background=False)
        if other.num_sampling_points != meas.num_sampling_points or not np.isclose(
                other.bandwidth, meas.bandwidth):
            raise MDFMismatchError(other.source, "/acquisition/receiver",
                                   f"{meas.num_sampling_points} samples, {meas.bandwidth} Hz",
                                   f"{other.num_sampling_points} samples, {other.bandwidth} Hz")
        frames_bg = other.data if other.background is None else np.concatenate(
            [other.data, other.background])
        meas.background = frames_bg
    if subtract_background and meas.background is not None and not meas.background_subtracted:
        meas.data = meas.data - meas.background.mean(axis=0, keepdims=True)
        meas.background_subtracted = True
    if average and meas.data.shape[0] > 1:
        meas.data = meas.data.mean(axis=0, keepdims=True)
        meas.frame_indices = np.array([-1])
    return meas


def _check_frames(path, frames, n_fg) -> np.ndarray:
    idx = np.atleast_1d(np.asarray(frames, dtype=np.int64))
    if idx.size == 0 or idx.min() < -n_fg or idx.max() >= n_fg:
        raise MDFFormatError(path, "/measurement/data",
                             f"foreground frame numbers in 0..{n_fg - 1}", f"{idx.tolist()[:10]}")
    return idx


def read_reconstruction(path) -> Reconstruction:
    """Read the ``/reconstruction`` group of ``path``."""
    with MDFFile(path) as mdf:
        return mdf.read_reconstruction()
