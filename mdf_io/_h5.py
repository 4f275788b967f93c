"""Low-level HDF5 access with the safety checks every MDF read goes through, and writing helpers.

* :func:`open_h5` opens regular files only (a FIFO or a device would block), read-only.
* :func:`get` resolves a path link by link: external links, user-defined links and soft-link
  loops are refused, and so are datasets with external storage and virtual datasets, so a
  crafted file can never make us read another file.
* :func:`check_stored` compares a dataset's declared size with the data the file holds before
  anything is allocated; :func:`read` turns h5py/numpy read errors (e.g. a corrupt compressed
  chunk) into :class:`MDFFormatError`.
* ``read_str`` / ``read_int`` / ``read_float`` / ``read_bool`` / ``read_array`` read small,
  checked values; ``write_*`` and :func:`atomic_h5` write.
"""
from __future__ import annotations

import contextlib
import math
import os
import stat
from pathlib import Path

import h5py
import numpy as np

from ._heap import check_vlen_strings
from .atomic import atomic_output
from .errors import MDFFormatError, describe_exception

#: most elements a metadata dataset (flags, sizes, strings, small vectors) may have
MAX_METADATA_ELEMENTS = 1 << 20
#: deflate cannot compress better than about 1032:1, so filtered data decompress at most this much
MAX_COMPRESSION_RATIO = 1100
_SLACK_BYTES = 1 << 20
_MAX_LINK_HOPS = 16


def open_h5(path) -> h5py.File:
    """Open ``path`` read-only; refuse what is not an existing regular HDF5 file."""
    p = Path(path)
    try:
        mode = os.stat(p).st_mode
    except FileNotFoundError:
        raise MDFFormatError(p, None, "an existing MDF (HDF5) file", "no such file") from None
    except OSError as exc:
        raise MDFFormatError(p, None, "a readable MDF (HDF5) file", describe_exception(exc)) from None
    if not stat.S_ISREG(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else "a FIFO, socket or device (not a regular file)"
        raise MDFFormatError(p, None, "a regular MDF (HDF5) file", kind)
    try:
        return h5py.File(p, "r")
    except Exception as exc:  # noqa: BLE001 - h5py raises OSError, and others on garbage
        raise MDFFormatError(p, None, "a readable HDF5 file (MDF v2)",
                             f"unreadable or truncated file ({describe_exception(exc)})") from None


def _parts(name: str) -> list[str]:
    return [p for p in name.split("/") if p and p != "."]


def get(f: h5py.File, name: str):
    """Object at absolute ``name`` (Dataset or Group), or None when absent.

    Soft links are followed (at most 16 hops); external and user-defined links, a dataset
    where a group belongs, external storage and virtual datasets raise :class:`MDFFormatError`.
    """
    parts = _parts(name)
    node, where, hops = f["/"], [], 0
    while parts:
        comp = parts.pop(0)
        if not isinstance(node, h5py.Group):
            raise MDFFormatError(f.filename, "/" + "/".join(where), "a group", "a dataset")
        try:
            link = node.get(comp, getlink=True)
        except Exception as exc:  # noqa: BLE001
            raise MDFFormatError(f.filename, name, "a readable link", describe_exception(exc)) from None
        if link is None:
            return None
        if isinstance(link, h5py.SoftLink):
            hops += 1
            if hops > _MAX_LINK_HOPS:
                raise MDFFormatError(f.filename, name, "a path without soft-link loops",
                                     f"more than {_MAX_LINK_HOPS} soft links")
            if link.path.startswith("/"):
                node, where = f["/"], []
            parts = _parts(link.path) + parts
            continue
        here = "/" + "/".join(where + [comp])
        if isinstance(link, h5py.ExternalLink):
            raise MDFFormatError(f.filename, here, "an object stored in this file",
                                 f"an external link to '{link.filename}:{link.path}' (refused)")
        if not isinstance(link, h5py.HardLink):
            raise MDFFormatError(f.filename, here, "an object stored in this file",
                                 f"a {type(link).__name__} (refused)")
        try:
            node = node[comp]
        except Exception as exc:  # noqa: BLE001
            raise MDFFormatError(f.filename, here, "a readable object", describe_exception(exc)) from None
        where.append(comp)
    if isinstance(node, h5py.Dataset):
        _check_local(f, name, node)
    return node


def _check_local(f, name, ds: h5py.Dataset) -> None:
    if ds.external:
        raise MDFFormatError(f.filename, name, "data stored in this file",
                             f"external storage in '{ds.external[0][0]}' (refused)")
    if ds.is_virtual:
        raise MDFFormatError(f.filename, name, "data stored in this file",
                             "a virtual dataset mapping other files (refused)")


def exists(f: h5py.File, name: str) -> bool:
    """Whether ``name`` exists (links checked as in :func:`get`)."""
    return get(f, name) is not None


def group_exists(f: h5py.File, name: str) -> bool:
    """Whether ``name`` exists; a dataset where a group belongs is an error."""
    obj = get(f, name)
    if obj is not None and not isinstance(obj, h5py.Group):
        raise MDFFormatError(f.filename, name, "a group", "a dataset")
    return obj is not None


def require(f: h5py.File, name: str) -> h5py.Dataset:
    """Dataset ``name`` or an :class:`MDFFormatError` naming it."""
    obj = get(f, name)
    if obj is None:
        raise MDFFormatError(f.filename, name, "a dataset (required by MDF v2)", "nothing")
    if not isinstance(obj, h5py.Dataset):
        raise MDFFormatError(f.filename, name, "a dataset", "a group")
    return obj


def shape_of(f, name, ds: h5py.Dataset) -> tuple:
    """Shape of ``ds``; a null dataspace (no shape at all) is an error."""
    if ds.shape is None:
        raise MDFFormatError(f.filename, name, "a value", "an empty (null) dataset")
    return tuple(int(s) for s in ds.shape)


_PLAIN = (h5py.h5t.INTEGER, h5py.h5t.FLOAT)


def check_type(f, name, ds: h5py.Dataset) -> None:
    """Refuse HDF5 types no MDF field uses (before reading: a variable-length sequence or a
    reference where a string or number belongs can crash the HDF5 conversion code).

    Allowed: integers, floats, enums of integers (booleans), strings (ASCII/UTF-8) and
    compounds of integers/floats (complex numbers as r/i)."""
    try:
        ds.dtype  # h5py refuses e.g. 12-byte integers or odd float layouts here
        tid = ds.id.get_type()
        cls = tid.get_class()
        if cls == h5py.h5t.STRING:
            ok = tid.get_cset() in (h5py.h5t.CSET_ASCII, h5py.h5t.CSET_UTF8) and tid.get_strpad() in (
                h5py.h5t.STR_NULLTERM, h5py.h5t.STR_NULLPAD, h5py.h5t.STR_SPACEPAD)
        elif cls == h5py.h5t.ENUM:
            ok = tid.get_super().get_class() == h5py.h5t.INTEGER
        elif cls == h5py.h5t.COMPOUND:
            ok = all(tid.get_member_type(i).get_class() in _PLAIN for i in range(tid.get_nmembers()))
        else:
            ok = cls in _PLAIN
    except Exception as exc:  # noqa: BLE001
        raise MDFFormatError(f.filename, name, "a readable datatype", describe_exception(exc)) from None
    if not ok:
        raise MDFFormatError(f.filename, name, "numbers or text", f"an unsupported HDF5 datatype ({ds.dtype})")


def check_stored(f, name, ds: h5py.Dataset) -> None:
    """Refuse a dataset whose declared size is not backed by data in the file, before reading.

    Unfiltered data may not be larger than the file; filtered (compressed) data not larger than
    1100 times the file; every chunk must be stored (no reading of never-written fill values).
    """
    shape = shape_of(f, name, ds)
    nbytes = math.prod(shape) * ds.dtype.itemsize
    if nbytes == 0:
        return
    try:
        dcpl = ds.id.get_create_plist()
        filtered = dcpl.get_nfilters() > 0
        file_size = f.id.get_filesize()
        limit = file_size * (MAX_COMPRESSION_RATIO if filtered else 1) + _SLACK_BYTES
        if nbytes > limit:
            raise MDFFormatError(f.filename, name, f"a size backed by the file ({file_size} bytes)",
                                 f"shape {shape}: {nbytes} bytes")
        layout = dcpl.get_layout()
        if layout == h5py.h5d.CHUNKED:
            need = math.prod(-(-s // c) for s, c in zip(shape, ds.chunks))
            have = ds.id.get_num_chunks()
            if have < need:
                raise MDFFormatError(f.filename, name, f"all {need} data chunks stored",
                                     f"{have} (data never written)")
        elif layout == h5py.h5d.CONTIGUOUS and ds.id.get_storage_size() < nbytes:
            raise MDFFormatError(f.filename, name, f"{nbytes} bytes of data stored",
                                 f"{ds.id.get_storage_size()} bytes (data never written)")
    except MDFFormatError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise MDFFormatError(f.filename, name, "a readable dataset", describe_exception(exc)) from None


def read(f, name, ds: h5py.Dataset, index=()):
    """``ds[index]``, with read errors (corrupt chunk, bad type) as :class:`MDFFormatError`."""
    try:
        return ds[index]
    except Exception as exc:  # noqa: BLE001 - h5py raises OSError, TypeError, ValueError...
        raise MDFFormatError(f.filename, name, "a readable dataset", f"read error ({describe_exception(exc)})") from None


def _small(f, name, *, required: bool, max_elements: int):
    """Dataset ``name`` checked to be small and stored, or None when absent and not required."""
    obj = get(f, name)
    if obj is None:
        if required:
            require(f, name)
        return None
    if not isinstance(obj, h5py.Dataset):
        raise MDFFormatError(f.filename, name, "a dataset", "a group")
    size = math.prod(shape_of(f, name, obj))
    if size > max_elements:
        raise MDFFormatError(f.filename, name, f"at most {max_elements} values", f"{size} (shape {obj.shape})")
    check_type(f, name, obj)
    check_stored(f, name, obj)
    check_vlen_strings(f, name, obj)
    return obj


def read_value(f: h5py.File, name: str, default=None, *, required: bool = False,
               max_elements: int = MAX_METADATA_ELEMENTS):
    """Scalar or small array at ``name`` (strings decoded); ``default`` when absent."""
    ds = _small(f, name, required=required, max_elements=max_elements)
    if ds is None:
        return default
    return _decode(f, name, read(f, name, ds))


def _decode(f, name, value):
    try:
        if isinstance(value, bytes):
            return value.decode("utf-8")
        if isinstance(value, np.ndarray) and value.dtype.kind in "OS":
            return np.vectorize(lambda v: v.decode("utf-8") if isinstance(v, bytes) else str(v),
                                otypes=[object])(value)
    except UnicodeDecodeError as exc:
        raise MDFFormatError(f.filename, name, "UTF-8 text", f"undecodable bytes ({exc.reason})") from None
    if isinstance(value, np.generic):
        return value.item()
    return value


def _one(f, name, v, what: str):
    arr = np.asarray(v)
    if arr.size != 1:
        raise MDFFormatError(f.filename, name, what, f"{arr.size} values (shape {arr.shape})")
    return arr


def read_str(f, name, default="", *, required=False) -> str:
    """One string (a 1-element string array is accepted)."""
    v = read_value(f, name, None, required=required)
    if v is None:
        return default
    arr = _one(f, name, v, "one string")
    value = arr.ravel()[0]
    if not isinstance(value, str):
        raise MDFFormatError(f.filename, name, "a string", f"{type(value).__name__} ({arr.dtype})")
    return value


def read_int(f, name, default=0, *, required=False) -> int:
    """One integer (an integral float is accepted)."""
    v = read_value(f, name, None, required=required)
    if v is None:
        return default
    arr = _one(f, name, v, "one integer")
    kind = arr.dtype.kind
    if kind not in "iub" and not (kind == "f" and float(arr.ravel()[0]).is_integer()):
        raise MDFFormatError(f.filename, name, "one integer", f"{arr.dtype} value {_show(arr)}")
    return int(arr.ravel()[0])


def read_float(f, name, default=0.0, *, required=False) -> float:
    """One finite real number."""
    v = read_value(f, name, None, required=required)
    if v is None:
        return default
    arr = _one(f, name, v, "one number")
    if arr.dtype.kind not in "iuf" or not np.isfinite(float(arr.ravel()[0])):
        raise MDFFormatError(f.filename, name, "one finite number", f"{arr.dtype} value {_show(arr)}")
    return float(arr.ravel()[0])


def read_bool(f, name, default=False, *, required=False) -> bool:
    """An MDF boolean: Int8 0 or 1."""
    v = read_int(f, name, int(default), required=required)
    if v not in (0, 1):
        raise MDFFormatError(f.filename, name, "0 or 1 (an MDF boolean)", str(v))
    return bool(v)


def _show(arr) -> str:
    return repr(arr.ravel()[0]) if arr.size else "(empty)"


def read_array(f, name, *, shape=None, kinds="iuf", required=True, dtype=None, finite=True,
               max_elements: int = MAX_METADATA_ELEMENTS):
    """Array at ``name`` checked for ``shape`` (None entries are free) and dtype kind before it
    is read, and for finiteness after."""
    ds = _small(f, name, required=required, max_elements=max_elements)
    if ds is None:
        return None
    if ds.dtype.kind not in kinds:
        raise MDFFormatError(f.filename, name, f"numeric data (dtype kind in '{kinds}')", f"dtype {ds.dtype}")
    check_shape(f.filename, name, ds.shape, shape)
    arr = np.asarray(read(f, name, ds))
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
    """Raise unless every value of ``arr`` (float/complex) is finite."""
    if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
        raise MDFFormatError(path, name, "finite values", "NaN or Inf")


@contextlib.contextmanager
def atomic_h5(path, overwrite: bool = False):
    """Yield an open h5py file that appears at ``path`` only if the block succeeds (see
    :func:`mdf_io.atomic.atomic_output`: no clobbering, nothing partial left on errors or
    signals). Refuses an existing ``path`` unless ``overwrite``."""
    with atomic_output(path, overwrite=overwrite) as tmp:
        with h5py.File(tmp, "w") as f:
            yield f


def write_str(group, name, value: str):
    """A UTF-8 string dataset."""
    group.create_dataset(name, data=str(value), dtype=h5py.string_dtype("utf-8"))


def write_str_array(group, name, values):
    """An array of UTF-8 strings."""
    arr = np.asarray(values, dtype=object)
    group.create_dataset(name, data=arr, dtype=h5py.string_dtype("utf-8"))


def write_bool(group, name, value):
    """An MDF boolean (Int8)."""
    group.create_dataset(name, data=np.asarray(value, dtype=np.int8))
