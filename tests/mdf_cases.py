"""Small MDF files for the robustness and fuzz tests, and checks shared by both."""
from __future__ import annotations

import hashlib
from pathlib import Path

import h5py
import numpy as np

from mdf_io import (Calibration, MDFError, MDFHeader, Reconstruction, Tracer, write_mdf,
                    write_reconstruction)

RNG_SEED = 11


def header(v=8, c=2, calib=None, tracer=False) -> MDFHeader:
    """A header for V samples, C channels, 1 kHz bandwidth (optionally a calibration)."""
    h = MDFHeader()
    rx = h.acquisition.receiver
    rx.num_sampling_points, rx.num_channels, rx.bandwidth = v, c, 1000.0
    h.calibration = calib
    if tracer:
        h.tracer = Tracer()
    return h


def calibration(path, *, fast=True, selection=(4, 0, 2), permutation=False, compression=None,
                nbg=2, grid=(3, 2, 1)) -> np.ndarray:
    """Frequency-domain calibration (J=1, C=2, V=8) with ``nbg`` background frames; returns the
    canonical data (N, J, C, K)."""
    rng = np.random.default_rng(RNG_SEED)
    n = int(np.prod(grid)) + nbg
    k = len(selection) if selection is not None else 5
    data = rng.normal(size=(n, 1, 2, k)) + 1j * rng.normal(size=(n, 1, 2, k))
    bg = np.arange(n) >= n - nbg
    perm = rng.permutation(n) if permutation else None
    write_mdf(path, header(calib=Calibration(size=grid), tracer=True), data, fourier=True,
              is_background_frame=bg, fast_frame_axis=fast,
              frequency_selection=None if selection is None else np.asarray(selection),
              frame_permutation=perm, snr=rng.uniform(1, 10, size=(1, 2, k)), compression=compression)
    return data


def measurement(path, *, fourier=False, fast=False, permutation=True, selection=None) -> np.ndarray:
    """Measurement: time domain int16 with dataConversionFactor, or frequency domain."""
    rng = np.random.default_rng(RNG_SEED + 1)
    h = header()
    n = 5
    if fourier:
        k = 5 if selection is None else len(selection)
        data = rng.normal(size=(n, 1, 2, k)) + 1j * rng.normal(size=(n, 1, 2, k))
    else:
        h.acquisition.receiver.data_conversion_factor = [[0.5, 0.1], [2.0, -0.1]]
        h.acquisition.receiver.induction_factor = [1.0, 1.0]
        data = (rng.normal(size=(n, 1, 2, 8)) * 100).astype(np.int16)
    write_mdf(path, h, data, fourier=fourier, is_background_frame=np.arange(n) >= 3,
              fast_frame_axis=fast, frame_permutation=rng.permutation(n) if permutation else None,
              frequency_selection=None if selection is None else np.asarray(selection),
              user_fields={"_note": {"a": 1}})
    return data


def reconstruction(path) -> None:
    """A reconstruction file (2 frames of a 3 x 2 grid)."""
    rng = np.random.default_rng(RNG_SEED + 2)
    write_reconstruction(path, Reconstruction(images=rng.random((2, 2, 3)), grid=(3, 2, 1),
                                              fov=np.array([0.03, 0.02, 0]), center=np.zeros(3),
                                              method="pinv", parameters={"lam": 0.1}, header=header()))


def set_dataset(path, name, value, **kwargs) -> None:
    """Replace (or create) dataset ``name`` of ``path`` by ``value``."""
    with h5py.File(path, "a") as f:
        if name in f or isinstance(f.get(name, getlink=True), (h5py.SoftLink, h5py.ExternalLink)):
            del f[name]
        if isinstance(value, (h5py.SoftLink, h5py.ExternalLink)):
            f[name] = value
        else:
            f.create_dataset(name, data=value, **kwargs)


def sha256(path) -> str:
    """Hex digest of the file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def check_error(err: BaseException, path) -> list[str]:
    """Problems with an error raised while reading ``path`` (empty list: a good error)."""
    problems = []
    if not isinstance(err, MDFError):
        return [f"{type(err).__name__} is not an MDFError: {err}"]
    msg = str(err)
    if "\n" in msg or "\r" in msg:
        problems.append(f"multi-line message: {msg!r}")
    if str(path) not in msg:
        problems.append(f"message does not name the file: {msg}")
    if err.unexpected:
        problems.append(f"only caught by the safety net: {msg}")
    return problems
