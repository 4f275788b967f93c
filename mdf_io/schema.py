"""The one table of MDF v2 metadata: HDF5 path <-> :class:`~mdf_io.metadata.MDFHeader` field.

:data:`SECTIONS` lists, per HDF5 group, each dataset with the model attribute it fills, its
kind (how it is stored), when it is required and the value a reader uses when it is absent.
:func:`read_header` and :func:`write_header` are generic loops over that table, so the reader
and the writer cannot disagree on names, types or units.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np
from pydantic import ValidationError

from . import _h5
from .errors import MDFFormatError
from .metadata import MDFHeader

#: the value a reader uses for an absent field is the pydantic model's own default
MODEL_DEFAULT = object()
#: largest number of samples per period accepted (the full frequency axis is allocated)
MAX_SAMPLING_POINTS = 1 << 24
#: largest size (frames, periods, channels, voxels per axis, averages) accepted
MAX_COUNT = 1 << 40


@dataclass(frozen=True)
class Field:
    """One dataset of a group.

    Attributes:
        name: dataset name in the group (MDF spelling).
        attr: attribute of the section's pydantic model.
        kind: storage: 'str', 'int', 'float', 'bool', 'str[]', 'float[]', 'float[][]',
            'int[][]', 'str[][]', 'float[][][]', 'float[][][][]', 'int3', 'float3'.
        required: 'always', 'measurement' (when the file has /measurement) or 'no'.
        default: value read for an absent field: a value, :data:`MODEL_DEFAULT`, or a callable
            of the values read so far (dict section attr -> dict).
        limit: (lo, hi): every value read must be > lo and <= hi (sizes, bandwidth).
    """

    name: str
    attr: str
    kind: str
    required: str = "no"
    default: Any = MODEL_DEFAULT
    limit: Optional[tuple] = None


@dataclass(frozen=True)
class Section:
    """A metadata group: its HDF5 path, the dotted :class:`MDFHeader` attribute it fills and
    what an absent group means: 'fields' (read every field's default), 'model' (the model's
    defaults) or 'none' (the attribute is None)."""

    group: str
    attr: str
    fields: tuple
    absent: str = "fields"


def _general_uuid(values: dict) -> str:
    return values["general"]["uuid"]


_SIZE = (0, MAX_COUNT)
_POSITIVE = (0, math.inf)

SECTIONS: tuple[Section, ...] = (
    Section("/", "general", (
        Field("version", "version", "str", "always"),
        Field("uuid", "uuid", "str", "always"),
        Field("time", "time", "str", "always"))),
    Section("/study", "study", (
        Field("name", "name", "str", default=""),
        Field("number", "number", "int", default=0),
        Field("uuid", "uuid", "str", default=_general_uuid),
        Field("description", "description", "str", default=""))),
    Section("/experiment", "experiment", (
        Field("name", "name", "str", default=""),
        Field("number", "number", "int", default=0),
        Field("uuid", "uuid", "str", default=_general_uuid),
        Field("description", "description", "str", default=""),
        Field("subject", "subject", "str", default=""),
        Field("isSimulation", "is_simulation", "bool", default=False))),
    Section("/scanner", "scanner", tuple(
        Field(n, n, "str", default="FFP" if n == "topology" else "")
        for n in ("facility", "manufacturer", "name", "operator", "topology"))),
    Section("/tracer", "tracer", (
        Field("name", "name", "str[]", default=[]),
        Field("batch", "batch", "str[]", default=[]),
        Field("vendor", "vendor", "str[]", default=[]),
        Field("volume", "volume", "float[]", default=[]),
        Field("concentration", "concentration", "float[]", default=[]),
        Field("solute", "solute", "str[]", default=[])), absent="none"),
    Section("/acquisition", "acquisition", (
        Field("numAverages", "num_averages", "int", default=1, limit=_SIZE),
        Field("numFrames", "num_frames", "int", "measurement", default=1, limit=_SIZE),
        Field("numPeriodsPerFrame", "num_periods_per_frame", "int", default=1, limit=_SIZE),
        Field("startTime", "start_time", "str", default=""),
        Field("gradient", "gradient", "float[][][][]", default=None)), absent="model"),
    Section("/acquisition/drivefield", "acquisition.drivefield", (
        Field("baseFrequency", "base_frequency", "float", limit=_POSITIVE),
        Field("cycle", "cycle", "float", default=0.0),
        Field("divider", "divider", "int[][]"),
        Field("numChannels", "num_channels", "int", limit=_SIZE),
        Field("phase", "phase", "float[][][]"),
        Field("strength", "strength", "float[][][]"),
        Field("waveform", "waveform", "str[][]")), absent="model"),
    Section("/acquisition/receiver", "acquisition.receiver", (
        Field("bandwidth", "bandwidth", "float", "measurement", default=0.0, limit=_POSITIVE),
        Field("numChannels", "num_channels", "int", "measurement", default=1, limit=_SIZE),
        Field("numSamplingPoints", "num_sampling_points", "int", "measurement", default=1,
              limit=(0, MAX_SAMPLING_POINTS)),
        Field("unit", "unit", "str", default="V"),
        Field("dataConversionFactor", "data_conversion_factor", "float[][]", default=None),
        Field("inductionFactor", "induction_factor", "float[]", default=None))),
    Section("/calibration", "calibration", (
        Field("method", "method", "str", default="robot"),
        Field("size", "size", "int3", "measurement", default=(1, 1, 1), limit=_SIZE),
        Field("order", "order", "str", default="xyz"),
        Field("fieldOfView", "field_of_view", "float3", default=(0.0, 0.0, 0.0)),
        Field("fieldOfViewCenter", "field_of_view_center", "float3", default=(0.0, 0.0, 0.0)),
        Field("deltaSampleSize", "delta_sample_size", "float3", default=None)), absent="none"),
)


def _path(section: Section, field: Field) -> str:
    return section.group.rstrip("/") + "/" + field.name


def _as_nd(value, ndim: int) -> np.ndarray:
    arr = np.asarray(value)
    while arr.ndim < ndim:
        arr = arr[None]
    return arr


def _read_numeric(f, path, ndim: int, kinds: str, conv) -> list:
    arr = _h5.read_array(f, path, kinds=kinds, required=False)
    if arr.ndim > ndim:
        raise MDFFormatError(f.filename, path, f"at most {ndim} dimensions", f"shape {arr.shape}")
    return _as_nd(arr, ndim).astype(conv).tolist()


def _read_strings(f, path, ndim: int) -> list:
    v = _h5.read_value(f, path, None)
    arr = np.asarray(v, dtype=object)
    if arr.ndim > ndim or not all(isinstance(s, str) for s in arr.ravel()):
        raise MDFFormatError(f.filename, path, f"strings in at most {ndim} dimensions",
                             f"{np.asarray(v).dtype} of shape {arr.shape}")
    return _as_nd(arr, ndim).tolist()


_READERS: dict[str, Callable] = {
    "str": lambda f, p: _h5.read_str(f, p),
    "int": lambda f, p: _h5.read_int(f, p),
    "float": lambda f, p: _h5.read_float(f, p),
    "bool": lambda f, p: _h5.read_bool(f, p),
    "str[]": lambda f, p: _read_strings(f, p, 1),
    "str[][]": lambda f, p: _read_strings(f, p, 2),
    "float[]": lambda f, p: _read_numeric(f, p, 1, "iuf", float),
    "float[][]": lambda f, p: _read_numeric(f, p, 2, "iuf", float),
    "float[][][]": lambda f, p: _read_numeric(f, p, 3, "iuf", float),
    "float[][][][]": lambda f, p: _read_numeric(f, p, 4, "iuf", float),
    "int[][]": lambda f, p: _read_numeric(f, p, 2, "iu", np.int64),
    "int3": lambda f, p: tuple(int(v) for v in _h5.read_array(f, p, shape=(3,), kinds="iu")),
    "float3": lambda f, p: tuple(float(v) for v in _h5.read_array(f, p, shape=(3,), kinds="iuf")),
}


def _check_limit(f, path, field: Field, value) -> None:
    if field.limit is None:
        return
    lo, hi = field.limit
    for v in np.atleast_1d(value):
        if not lo < v <= hi:
            raise MDFFormatError(f.filename, path, f"values > {lo} and <= {hi}", repr(v))


def _read_field(f, section: Section, field: Field, values: dict, has_measurement: bool):
    path = _path(section, field)
    if _h5.exists(f, path):
        value = _READERS[field.kind](f, path)
        _check_limit(f, path, field, value)
        return value
    if field.required == "always" or (field.required == "measurement" and has_measurement):
        _h5.require(f, path)
    if field.default is MODEL_DEFAULT:
        return _model_default(section, field)
    return field.default(values) if callable(field.default) else field.default


def _model_default(section: Section, field: Field):
    model = MDFHeader
    for name in section.attr.split("."):
        model = model.model_fields[name].annotation
        model = getattr(model, "__args__", (model,))[0]  # Optional[X] -> X
    return model.model_fields[field.attr].get_default(call_default_factory=True)


def read_header(f) -> MDFHeader:
    """All metadata of open file ``f`` as an :class:`MDFHeader` (reads small datasets only).

    Raises :class:`MDFFormatError` naming the HDF5 path of a missing, malformed or
    out-of-range field (a pydantic validation error included).
    """
    has_measurement = _h5.group_exists(f, "/measurement")
    values: dict[str, dict] = {}
    skipped: set[str] = set()
    for section in SECTIONS:
        if section.attr.rsplit(".", 1)[0] in skipped:
            continue
        if section.group != "/" and not _h5.group_exists(f, section.group):
            if section.absent == "none":
                values[section.attr] = None
                continue
            for field in section.fields:
                if field.required == "measurement" and has_measurement:
                    _h5.require(f, _path(section, field))
            if section.absent != "fields":
                skipped.add(section.attr)
                continue
        kw = values.setdefault(section.attr, {})
        for field in section.fields:
            kw[field.attr] = _read_field(f, section, field, values, has_measurement)
    return _build(f, values)


def _build(f, values: dict) -> MDFHeader:
    nested: dict = {}
    for attr, kw in values.items():
        node = nested
        *parents, last = attr.split(".")
        for name in parents:
            node = node.setdefault(name, {})
        node[last] = kw if kw is None else {**kw, **node.get(last, {})}
    try:
        return MDFHeader.model_validate(nested)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise MDFFormatError(f.filename, _hdf5_path(err["loc"]), err["msg"], repr(err.get("input"))) from None


def _hdf5_path(loc: tuple) -> str:
    """HDF5 path of a pydantic error location such as ('acquisition', 'receiver', 'bandwidth')."""
    names = [str(x) for x in loc if isinstance(x, str)]
    for section in SECTIONS:
        depth = len(section.attr.split("."))
        if names[:depth] == section.attr.split(".") and len(names) > depth:
            for field in section.fields:
                if field.attr == names[depth]:
                    return _path(section, field)
    return "/" + "/".join(names)


def _write_numeric(group, name, value, dtype):
    group.create_dataset(name, data=np.asarray(value, dtype))


_WRITERS: dict[str, Callable] = {
    "str": _h5.write_str,
    "int": lambda g, n, v: _write_numeric(g, n, v, np.int64),
    "float": lambda g, n, v: _write_numeric(g, n, v, np.float64),
    "bool": _h5.write_bool,
    "str[]": _h5.write_str_array,
    "str[][]": _h5.write_str_array,
    "float[]": lambda g, n, v: _write_numeric(g, n, v, np.float64),
    "float[][]": lambda g, n, v: _write_numeric(g, n, v, np.float64),
    "float[][][]": lambda g, n, v: _write_numeric(g, n, v, np.float64),
    "float[][][][]": lambda g, n, v: _write_numeric(g, n, v, np.float64),
    "int[][]": lambda g, n, v: _write_numeric(g, n, v, np.int64),
    "int3": lambda g, n, v: _write_numeric(g, n, v, np.int64),
    "float3": lambda g, n, v: _write_numeric(g, n, v, np.float64),
}


def write_header(f, header: MDFHeader, *, calibration: bool = True) -> None:
    """Write every metadata group of ``header`` to the open (writable) file ``f``.

    Optional groups (tracer, calibration) whose value is None, and optional fields that are
    None, are not written. ``calibration=False`` leaves out ``/calibration`` (e.g. for a
    reconstruction file).
    """
    for section in SECTIONS:
        model = header
        for name in section.attr.split("."):
            model = getattr(model, name)
        if model is None or (section.attr == "calibration" and not calibration):
            continue
        group = f if section.group == "/" else f.require_group(section.group)
        for field in section.fields:
            value = getattr(model, field.attr)
            if value is not None:
                _WRITERS[field.kind](group, field.name, value)
