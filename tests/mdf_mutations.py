"""Mutations for the MDF fuzz test: field mutations (FIELD_OPS) and whole-file damage, and
which mutations make a file invalid in a way the reader must notice."""
from __future__ import annotations

import random
from pathlib import Path

import h5py
import numpy as np

#: sizes the spec constrains (> 0, consistent with the data)
SIZE_FIELDS = {"/acquisition/numFrames", "/acquisition/numPeriodsPerFrame", "/acquisition/numAverages",
               "/acquisition/receiver/numChannels", "/acquisition/receiver/numSamplingPoints",
               "/acquisition/receiver/bandwidth", "/calibration/size", "/reconstruction/size",
               "/acquisition/drivefield/numChannels", "/acquisition/drivefield/baseFrequency"}
#: integer sizes (a huge value overflows products; huge floats such as 1e308 Hz are legal)
INT_SIZE_FIELDS = SIZE_FIELDS - {"/acquisition/receiver/bandwidth", "/acquisition/drivefield/baseFrequency"}
#: fields only some API functions read (default: all of them read the header and data)
READ_BY = {"/calibration/snr": {"read_system_matrix", "describe"}}
#: 1-based index vectors
INDEX_FIELDS = {"/measurement/frequencySelection", "/measurement/framePermutation"}
#: written but read by none of the API functions
UNREAD = {"/_note", "/reconstruction/order", "/reconstruction/isOverscanRegion"}


# -- mutations of one field ------------------------------------------------------------------------

def _replace(f, name, value, **kw):
    del f[name]
    f.create_dataset(name, data=value, **kw)


def _numeric(v) -> bool:
    return isinstance(v, (np.ndarray, np.generic)) and np.asarray(v).dtype.kind in "iufb"


def _mut_delete(f, name, v, ctx):
    del f[name]


def _mut_group(f, name, v, ctx):
    del f[name]
    f.create_group(name)


def _mut_dataset(f, name, v, ctx):  # for groups: a dataset where the group belongs
    del f[name]
    f[name] = np.int64(3)


def _mut_string(f, name, v, ctx):
    _replace(f, name, "garbage")


def _mut_complex(f, name, v, ctx):
    if _numeric(v):
        _replace(f, name, np.asarray(v).astype(np.complex128) + 1j)
    elif np.asarray(v).dtype.kind not in "cV":
        _replace(f, name, np.complex128(1 + 2j))
    else:
        return False


def _mut_float(f, name, v, ctx):
    if not _numeric(v) or np.asarray(v).dtype.kind == "f":
        _replace(f, name, np.float64(3.5) if not _numeric(v) else np.asarray(v) + 0.25)
    else:
        _replace(f, name, np.asarray(v).astype(np.float64) + 0.5)


def _mut_grow(f, name, v, ctx):
    arr = np.asarray(v)
    _replace(f, name, np.stack([arr, arr]))


def _mut_shrink(f, name, v, ctx):
    arr = np.asarray(v)
    if arr.ndim == 0 or arr.shape[-1] < 1:
        return False
    _replace(f, name, arr[..., :-1])


def _numeric_op(fn):
    def op(f, name, v, ctx):
        if not _numeric(v):
            return False
        _replace(f, name, fn(np.asarray(v)))
    return op


_mut_negative = _numeric_op(lambda a: -np.abs(a).astype(np.float64 if a.dtype.kind == "f" else np.int64) - 1)
_mut_zero = _numeric_op(np.zeros_like)
_mut_huge = _numeric_op(lambda a: np.full(a.shape, 1e308 if a.dtype.kind == "f" else 2 ** 62,
                                          np.float64 if a.dtype.kind == "f" else np.int64))
_mut_nan = _numeric_op(lambda a: np.full(a.shape, np.nan))
_mut_uint_max = _numeric_op(lambda a: np.full(a.shape, 2 ** 64 - 1, np.uint64))


def _index_op(fn):
    def op(f, name, v, ctx):
        if not _numeric(v) or np.ndim(v) != 1 or np.size(v) < 2:
            return False
        arr = np.array(v, dtype=np.int64)
        _replace(f, name, fn(arr))
    return op


def _dup(a):
    a[1] = a[0]
    return a


def _oob(a):
    a[0] = a.max() + 1000
    return a


def _zero_index(a):
    a[-1] = 0
    return a


def _mut_ext_link_etc(f, name, v, ctx):
    del f[name]
    f[name] = h5py.ExternalLink("/etc/hostname", "/x")


def _mut_ext_link_valid(f, name, v, ctx):
    del f[name]
    f[name] = h5py.ExternalLink(str(ctx["base"]), name)


def _mut_soft_loop(f, name, v, ctx):
    del f[name]
    f[name] = h5py.SoftLink(name + "_loop")
    f[name + "_loop"] = h5py.SoftLink(name)


def _mut_external_storage(f, name, v, ctx):
    arr = np.asarray(v)
    if not _numeric(v) or arr.size == 0:
        return False
    target = ctx["dir"] / "external.bin"
    target.write_bytes(np.ascontiguousarray(arr).tobytes())
    del f[name]
    f.create_dataset(name, shape=arr.shape, dtype=arr.dtype, external=[(str(target), 0, arr.nbytes)])


def _mut_huge_empty(f, name, v, ctx):
    dtype = f[name].dtype
    del f[name]
    f.create_dataset(name, shape=(2 ** 40,), dtype=dtype, chunks=(4096,))


def _mut_bad_utf8(f, name, v, ctx):
    if _numeric(v):
        return False
    _replace(f, name, np.bytes_(b"\xff\xfe\xc3\x28"))


def _mut_opaque(f, name, v, ctx):
    _replace(f, name, np.void(b"\x01\x02\x03"))


#: name -> (mutation, applies to groups, what makes the result invalid: None, "size", "int size",
#: "index", "read" (any field an API function reads))
FIELD_OPS = {
    "delete": (_mut_delete, True, None),
    "group": (_mut_group, False, None),
    "dataset": (_mut_dataset, True, None),
    "string": (_mut_string, False, None),
    "complex": (_mut_complex, False, None),
    "float": (_mut_float, False, None),
    "grow": (_mut_grow, False, None),
    "shrink": (_mut_shrink, False, None),
    "negative": (_mut_negative, False, "size"),
    "zero": (_mut_zero, False, "size"),
    "huge": (_mut_huge, False, "int size"),
    "nan": (_mut_nan, False, "size"),
    "uint_max": (_mut_uint_max, False, "int size"),
    "dup_index": (_index_op(_dup), False, "index"),
    "oob_index": (_index_op(_oob), False, "index"),
    "zero_index": (_index_op(_zero_index), False, "index"),
    "ext_link_etc": (_mut_ext_link_etc, True, "read"),
    "ext_link_valid": (_mut_ext_link_valid, True, "read"),
    "soft_loop": (_mut_soft_loop, True, "read"),
    "external_storage": (_mut_external_storage, False, "read"),
    "huge_empty": (_mut_huge_empty, False, "read"),
    "bad_utf8": (_mut_bad_utf8, False, None),
    "opaque": (_mut_opaque, False, None),
}


def breaks_spec(rule, name, reader: str) -> bool:
    """Whether a file mutated at ``name`` by a mutation with ``rule`` must be refused by the
    API function ``reader`` (it breaks the spec in a way that function must notice)."""
    if rule == "read" and name in READ_BY:
        return reader in READ_BY[name]
    if rule == "size":
        return name in SIZE_FIELDS
    if rule == "int size":
        return name in INT_SIZE_FIELDS
    if rule == "index":
        return name in INDEX_FIELDS
    return rule == "read" and name not in UNREAD


# -- whole-file damage -----------------------------------------------------------------------------

def truncate(path: Path, rng: random.Random):
    blob = path.read_bytes()
    path.write_bytes(blob[: rng.randrange(0, len(blob))])


def flip(path: Path, rng: random.Random):
    blob = bytearray(path.read_bytes())
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(blob))
        blob[i] ^= 1 << rng.randrange(8)
    path.write_bytes(bytes(blob))
