"""Frequency (row) selection applied identically to system matrix and measurement."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional, Sequence

import numpy as np

from mdf_io import Measurement, RowIndex, SystemMatrix

from mpirecon.errors import ReconstructorError

#: Default SNR threshold: the DERnet paper kept system-matrix rows with SNR > 1.5.
DEFAULT_SNR_THRESHOLD = 1.5


@dataclass(frozen=True)
class SelectionCriteria:
    """What a selection keeps: SNR > threshold, frequencies in [min, max] Hz, channels, and of
    those at most ``num_used_freqs`` rows, the ones of highest SNR (MPIReco's numUsedFreqs)."""

    snr_threshold: Optional[float] = DEFAULT_SNR_THRESHOLD
    min_frequency: Optional[float] = None
    max_frequency: Optional[float] = None
    receive_channels: Optional[tuple[int, ...]] = None
    num_used_freqs: Optional[int] = None

    def mask(self, snr: np.ndarray, frequencies: np.ndarray, channels: np.ndarray) -> np.ndarray:
        """Boolean keep-mask over rows; inputs are (R,) arrays (SNR linear, Hz, 0-based)."""
        keep = np.ones(np.shape(frequencies), bool)
        if self.snr_threshold is not None:
            keep &= np.asarray(snr) > self.snr_threshold
        if self.min_frequency is not None:
            keep &= frequencies >= self.min_frequency
        if self.max_frequency is not None:
            keep &= frequencies <= self.max_frequency
        if self.receive_channels is not None:
            keep &= np.isin(channels, np.asarray(self.receive_channels))
        if self.num_used_freqs is not None:
            if self.num_used_freqs < 1:
                raise ValueError(f"--num-used-freqs: expected a positive number of rows, found {self.num_used_freqs}")
            candidates = np.flatnonzero(keep)
            order = np.argsort(-np.asarray(snr, np.float64)[candidates], kind="stable")
            keep = np.zeros_like(keep)
            keep[candidates[order[: self.num_used_freqs]]] = True
        return keep

    def as_dict(self) -> dict:
        d = asdict(self)
        d["receive_channels"] = None if self.receive_channels is None else list(self.receive_channels)
        return d


def select_frequencies(system_matrix: SystemMatrix, snr_threshold: Optional[float] = DEFAULT_SNR_THRESHOLD,
                       min_frequency: Optional[float] = None, max_frequency: Optional[float] = None,
                       receive_channels: Optional[Sequence[int]] = None,
                       num_used_freqs: Optional[int] = None) -> np.ndarray:
    """Row indices (int64, increasing) of ``system_matrix`` kept by the criteria.

    Args:
        system_matrix: the calibration; uses its per-row ``snr``, ``frequencies`` (Hz) and
            receive ``channel``.
        snr_threshold: keep rows with SNR strictly greater (None: no SNR criterion).
        min_frequency, max_frequency: inclusive band in Hz.
        receive_channels: 0-based receive channels to keep (None: all).
        num_used_freqs: of the rows passing the other criteria, keep the N of highest SNR.
    """
    crit = SelectionCriteria(snr_threshold, min_frequency, max_frequency,
                             None if receive_channels is None else tuple(int(c) for c in receive_channels),
                             num_used_freqs)
    keep = crit.mask(system_matrix.snr, system_matrix.frequencies, system_matrix.rows.channel)
    if not keep.any():
        raise ReconstructorError(f"frequency selection {crit.as_dict()} keeps no rows of the system matrix "
                         f"{system_matrix.source or ''} (SNR range {np.nanmin(system_matrix.snr):.3g}.."
                         f"{np.nanmax(system_matrix.snr):.3g})")
    return np.flatnonzero(keep)


def apply_selection(system_matrix: SystemMatrix, indices: np.ndarray, criteria: dict | None = None) -> SystemMatrix:
    """The system matrix restricted to rows ``indices``, with the selection recorded in
    ``.selection`` (criteria, number of rows, the row keys)."""
    record = dict(criteria or {})
    record["num_rows"] = int(len(indices))
    record["num_rows_total"] = int(system_matrix.num_rows)
    return system_matrix.take_rows(indices, selection=record)


def selected_system_matrix(system_matrix: SystemMatrix, snr_threshold=DEFAULT_SNR_THRESHOLD,
                           min_frequency=None, max_frequency=None, receive_channels=None,
                           num_used_freqs=None) -> SystemMatrix:
    """:func:`select_frequencies` + :func:`apply_selection` in one call."""
    idx = select_frequencies(system_matrix, snr_threshold, min_frequency, max_frequency, receive_channels,
                             num_used_freqs)
    crit = SelectionCriteria(snr_threshold, min_frequency, max_frequency,
                             None if receive_channels is None else tuple(receive_channels), num_used_freqs)
    return apply_selection(system_matrix, idx, crit.as_dict())


def match_measurement(measurement: Measurement, system_matrix: SystemMatrix) -> np.ndarray:
    """Measurement spectra (frames, R) whose columns correspond to the system matrix rows."""
    return measurement.matched_to(system_matrix).data


def selected_rows_of_file(mdf, criteria: SelectionCriteria) -> RowIndex:
    """Rows of an open calibration :class:`mdf_io.MDFFile` kept by ``criteria``, computed from
    the header and ``/calibration/snr`` only (the matrix itself is not read)."""
    rows = mdf.available_rows()
    snr = mdf.snr()
    snr_rows = np.full(len(rows), np.inf) if snr is None else snr.reshape(-1)
    keep = criteria.mask(snr_rows, mdf.frequencies[rows.frequency_index], rows.channel)
    if not keep.any():
        raise ReconstructorError(f"{mdf.path}: frequency selection {criteria.as_dict()} keeps no rows")
    return rows.take(np.flatnonzero(keep))
