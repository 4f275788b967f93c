"""Does a measurement come from the scanner settings of its calibration?

A system matrix only reconstructs measurements taken with the same drive field (strength,
frequencies), receiver (bandwidth, sampling points, channels) and selection-field gradient.
:func:`scanner_mismatches` compares the two headers field by field; :func:`check_scanner`
refuses with the first difference named (both values), MPIReco-style.
"""
from __future__ import annotations

import numpy as np

from mdf_io import MDFHeader, MDFMismatchError

#: relative tolerance of the comparison of real-valued settings
RTOL = 1e-3


def _settings(h: MDFHeader) -> list:
    """(HDF5 path, value) of every compared setting of header ``h`` (None: not recorded)."""
    acq = h.acquisition
    df, rx = acq.drivefield, acq.receiver
    return [("/acquisition/drivefield/strength", df.strength), ("/acquisition/drivefield/baseFrequency", df.base_frequency),
            ("/acquisition/drivefield/divider", df.divider), ("/acquisition/receiver/bandwidth", rx.bandwidth),
            ("/acquisition/receiver/numSamplingPoints", rx.num_sampling_points),
            ("/acquisition/receiver/numChannels", rx.num_channels), ("/acquisition/gradient", acq.gradient)]


def _same(a, b) -> bool:
    if a is None or b is None:  # not recorded in one of the files: nothing to compare
        return True
    x, y = np.asarray(a, float), np.asarray(b, float)
    return x.shape == y.shape and bool(np.allclose(x, y, rtol=RTOL, atol=0.0))


def _text(value) -> str:
    arr = np.asarray(value, float)
    if arr.ndim == 0:
        return f"{float(arr):.6g}"
    return np.array2string(arr.squeeze(), precision=6, separator=", ").replace("\n", "")


def scanner_mismatches(measurement: MDFHeader, calibration: MDFHeader) -> list[tuple[str, str, str]]:
    """[(HDF5 path, calibration value, measurement value)] of the settings that differ: drive-field
    strength, base frequency and dividers, receiver bandwidth, sampling points and channels, and the
    gradient. A setting absent from either file is not compared."""
    return [(path, _text(c), _text(m)) for (path, m), (_, c) in zip(_settings(measurement), _settings(calibration))
            if not _same(m, c)]


def check_scanner(measurement: MDFHeader, calibration: MDFHeader, measurement_path, calibration_path) -> None:
    """Raise a one-line :class:`mdf_io.MDFMismatchError` naming the first differing setting with the
    calibration's value (expected) and the measurement's (found), plus how many more differ."""
    diffs = scanner_mismatches(measurement, calibration)
    if diffs:
        path, cal, meas = diffs[0]
        more = f" (and {len(diffs) - 1} more: {', '.join(d[0] for d in diffs[1:])})" if len(diffs) > 1 else ""
        raise MDFMismatchError(measurement_path, path, f"{cal} as in calibration {calibration_path}",
                               f"{meas}{more}; other scanner settings than the calibration "
                               "(--ignore-scanner-mismatch reconstructs anyway)")
