"""Low-level HDF5 helpers: checked dataset access and atomic file writing."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import h5py
import numpy as np

from .errors import MDFFormatError, MDFWriteError


def open_h5(path) -> h5py.File:
    """Open ``path`` read-only, turning h5py/OS errors into :class:`MDFFormatError`."""
    p = Path(path)
    if not p.exists():
        raise MDFFormatError(p, None, "an existing MDF (HDF5) file", "no such file")
    try:
        return h5py.File(p, "r")
    except OSError as exc:
        raise MDFFormatError(p, None, "a readable HDF5 file (MDF v2)",
                             f"unreadable or truncated file ({exc.__class__.__name__}: {exc})") from None


def require(f: h5py.File, name: str) -> h5py.Dataset:
    """Dataset ``name`` or an :class:`MDFFormatError` naming it."""
    obj = f.get(name)
    if obj is None or not isinstance(obj, h5py.Dataset):
        raise MDFFormatError(f.filename, name, "a dataset (required by MDF v2)", "nothing")
    return obj


def read_value(f: h5py.File, name: str, default=None, *, required: bool = False):
    """Scalar or small array at ``name`` (strings decoded); ``default`` when absent."""
    obj = f.get(name)
    if obj is None:
        if required:
            require(f, name)
        return default
    if not isinstance(obj, h5py.Dataset):
        raise MDFFormatError(f.filename, name, "a dataset", "a group")
    try:
        value = obj[()]
    except (OSError, ValueError) as exc:
        raise MDFFormatError(f.filename, name, "a readable dataset", f"read error: {exc}") from None
    return _decode(value)


def _decode(value):
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray) and value.dtype.kind in "OS":
        return np.vectorize(lambda v: v.decode("utf-8") if isinstance(v, bytes) else str(v),
                            otypes=[object])(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_str(f, name, default="", *, required=False) -> str:
    v = read_value(f, name, None, required=required)
    if v is None:
        return default
    if isinstance(v, np.ndarray):
        v = v.ravel()[0] if v.size else default
    return str(v)


def read_int(f, name, default=0, *, required=False) -> int:
    v = read_value(f, name, None, required=required)
    if v is None:
        return default
    arr = np.asarray(v)
    if arr.size != 1 or arr.dtype.kind not in "iub" and not (arr.dtype.kind == "f" and float(arr.ravel()[0]).is_integer()):
        raise MDFFormatError(f.filename, name, "one integer", f"{arr.dtype} of shape {arr.shape}")
    return int(arr.ravel()[0])


def read_float(f, name, default=0.0, *, required=False) -> float:
    v = read_value(f, name, None, required=required)
    if v is None:
        return default
    arr = np.asarray(v)
    if arr.size != 1 or arr.dtype.kind not in "iuf":
        raise MDFFormatError(f.filename, name, "one number", f"{arr.dtype} of shape {arr.shape}")
    return float(arr.ravel()[0])


def read_bool(f, name, default=False, *, required=False) -> bool:
    return bool(read_int(f, name, int(default), required=required))


def read_array(f, name, *, shape=None, kinds="iuf", required=True, dtype=None, finite=True):
    """Array at ``name`` checked for ``shape`` (None entries are free), dtype kind and finiteness."""
    obj = f.get(name)
    if obj is None:
        if required:
            require(f, name)
        return None
    arr = np.asarray(_decode(obj[()]))
    if arr.dtype.kind not in kinds:
        raise MDFFormatError(f.filename, name, f"numeric data (dtype kind in '{kinds}')",
                             f"dtype {arr.dtype}")
    check_shape(f.filename, name, arr.shape, shape)
    if finite and arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
        raise MDFFormatError(f.filename, name, "finite values", "NaN or Inf")
    return arr.astype(dtype) if dtype is not None else arr


def check_shape(path, name, found, expected):
    """Raise unless ``found`` matches ``expected`` (a tuple with None as wildcard)."""
    if expected is None:
        return
    ok = len(found) == len(expected) and all(e is None or e == s for s, e in zip(found, expected))
    if not ok:
        want = "(" + ", ".join("*" if e is None else str(e) for e in expected) + ")"
        raise MDFFormatError(path, name, f"shape {want}", f"shape {tuple(found)}")


def check_finite(path, name, arr):
    if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
        raise MDFFormatError(path, name, "finite values", "NaN or Inf")


@contextlib.contextmanager
def atomic_h5(path, overwrite: bool = False):
    """Yield an open h5py file that appears at ``path`` only if the block succeeds.

    Writes to a temporary file in the same directory and renames it; on any error the
    temporary file is removed and ``path`` is untouched. Refuses an existing ``path`` unless
    ``overwrite``.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise MDFWriteError(path, None, "a path that does not exist yet (or overwrite=True)",
                            "an existing file")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def write_str(group, name, value: str):
    group.create_dataset(name, data=str(value), dtype=h5py.string_dtype("utf-8"))


def write_str_array(group, name, values):
    arr = np.asarray(values, dtype=object)
    group.create_dataset(name, data=arr, dtype=h5py.string_dtype("utf-8"))


def write_bool(group, name, value):
    group.create_dataset(name, data=np.asarray(value, dtype=np.int8))
