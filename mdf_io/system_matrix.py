"""Reading a calibration file as a (row-selected) :class:`~mdf_io.containers.SystemMatrix`."""
from __future__ import annotations

from typing import Optional

import numpy as np

from .containers import SystemMatrix
from .errors import MDFFormatError, reading
from .file import opened
from .geometry import RowIndex
from .spectra import positions_in, read_compressed_rows, read_rows, read_rows_into


def read_system_matrix(source, *, rows: Optional[RowIndex] = None, channels=None,
                       frequency_indices=None, subtract_background: bool = True, progress=None,
                       dtype=np.complex128) -> SystemMatrix:
    """Read a calibration file as a :class:`SystemMatrix` (R x P complex128, or ``dtype``).

    Args:
        source: MDF v2 calibration file (``/calibration`` and ``/measurement`` groups): a path,
            or an already open :class:`~mdf_io.file.MDFFile` (left open), e.g. the one the
            rows were selected from, so the file is opened once.
        rows: read only these (period, channel, frequency) rows (e.g. after SNR selection);
            only the frequencies they need are loaded from disk.
        channels, frequency_indices: alternatively keep these receive channels (0-based) and
            full-spectrum frequency indices.
        subtract_background: if the file holds background frames and is not background
            corrected, subtract their mean from every voxel frame (MDF guidance).
        progress: ``progress(done, total)`` called as blocks of the selected frequencies are read
            (memory stays that of the selected matrix, whatever the file's size).
        dtype: complex128 (default) or complex64, e.g. for solvers working in float32 on a large
            calibration (half the memory; the mean background is computed in complex128).
    """
    with reading(getattr(source, "path", source)), opened(source) as mdf:
        path = mdf.path
        if mdf.kind != "calibration":
            raise MDFFormatError(path, "/calibration", "a calibration (system-matrix) file",
                                 f"a {mdf.kind} file")
        header, lay = mdf.header, mdf.layout
        cal = header.calibration
        grid = tuple(cal.size)  # product checked against the foreground frames by the layout
        wanted = mdf.wanted_rows(rows, channels, frequency_indices)
        if lay.compression is not None:  # expanded from its kept transform coefficients
            rows_full, background = read_compressed_rows(mdf, wanted, progress)
            matrix = np.ascontiguousarray(rows_full, dtype=dtype)  # (R, P)
        else:
            fg = np.flatnonzero(~lay.is_background_frame)
            bgf = np.flatnonzero(lay.is_background_frame)
            matrix = np.empty((len(wanted), fg.size), dtype)  # (R, P), filled block by block
            read_rows_into(mdf, fg, wanted, matrix.T, progress)
            background = read_rows(mdf, bgf, wanted)  # (E, R)
        corrected = lay.background_corrected
        if subtract_background and background.shape[0] and not corrected:
            matrix -= background.mean(axis=0)[:, None].astype(matrix.dtype)  # in place: minus the mean empty frame
            corrected = True
        snr_full = mdf.snr()
        if snr_full is None:
            snr = np.full(len(wanted), np.inf)
        else:
            snr = snr_full[wanted.period, wanted.channel, positions_in(mdf, wanted.frequency_index)]
        rx = header.acquisition.receiver
        return SystemMatrix(matrix=matrix, rows=wanted,
                            frequencies=mdf.frequencies[wanted.frequency_index], snr=snr,
                            grid=grid, fov=np.array(cal.field_of_view),
                            center=np.array(cal.field_of_view_center), bandwidth=rx.bandwidth,
                            num_sampling_points=rx.num_sampling_points, header=header,
                            background_corrected=corrected,
                            source=str(getattr(source, "path", source)),
                            transfer_function_corrected=lay.transfer_function_corrected,
                            transfer_function=mdf.transfer_function())
