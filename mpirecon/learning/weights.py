"""Safe weights files for learned reconstructors (DERnet, PP-MPI denoisers, third-party methods).

A file is a ``torch.save`` of a plain dict ``{"format", "format_version", "kind",
"state_dict", "metadata_json"}`` and is read with ``torch.load(weights_only=True)``, which
refuses arbitrary pickled objects: a crafted file cannot execute code. Metadata is JSON.
Files are written atomically (:func:`mdf_io.atomic.atomic_output`); an existing file is replaced
only on request.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from mdf_io.atomic import atomic_output
from mdf_io.writer import json_default

from mpirecon.errors import WeightsError

FORMAT = "mpirecon-weights"
FORMAT_VERSION = 1


def save_weights(path, kind: str, state_dict: dict, metadata: dict, *, overwrite: bool = False) -> None:
    """Write ``state_dict`` (tensors, nested dicts/lists allowed) and JSON ``metadata`` atomically.

    Raises :class:`WeightsError` if ``path`` exists and ``overwrite`` is False (and
    :class:`mdf_io.MDFWriteError` if it cannot be written, or appeared meanwhile).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise WeightsError(f"{path}: exists; refusing to overwrite")
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind,
               "state_dict": _detached(state_dict),
               "metadata_json": json.dumps(metadata, default=json_default, sort_keys=True)}
    with atomic_output(path, overwrite=overwrite) as tmp:
        torch.save(payload, tmp)


def read_safely(path):
    """``torch.load(path, weights_only=True)`` on the CPU; any failure (missing, empty, truncated,
    garbage, unsafe pickle) becomes a one-line :class:`WeightsError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    if path.stat().st_size == 0:
        raise WeightsError(f"{path}: empty file, not a weights file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt zip, EOF, pickle.UnpicklingError for unsafe content, ...
        raise WeightsError(f"{path}: not a readable weights file (corrupt, truncated or unsafe content): "
                           f"{error_line(exc)}") from None


def load_weights(path, kind: str) -> tuple[dict, dict]:
    """Read a weights file of ``kind`` -> (state_dict, metadata dict). Raises :class:`WeightsError`
    naming the file for missing, empty, truncated, corrupt, unsafe or foreign files."""
    return unpack(read_safely(path), path, kind)


def unpack(payload, path, kind: str) -> tuple[dict, dict]:
    """(state_dict, metadata dict) of a payload already read from ``path`` by :func:`read_safely`;
    :class:`WeightsError` naming ``path`` unless it is an mpirecon weights file of ``kind``."""
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise WeightsError(f"{path}: not an mpirecon weights file (field 'format' should be '{FORMAT}')")
    if payload.get("kind") != kind:
        raise WeightsError(f"{path}: holds '{payload.get('kind')}' weights, expected '{kind}'")
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise WeightsError(f"{path}: format_version {version!r} is not one this mpirecon understands "
                           f"(<= {FORMAT_VERSION})")
    try:
        metadata = json.loads(payload["metadata_json"])
        state = dict(payload["state_dict"])
    except (KeyError, TypeError, ValueError) as exc:
        raise WeightsError(f"{path}: metadata or state_dict missing/corrupt ({error_line(exc)})") from None
    if not isinstance(metadata, dict):
        raise WeightsError(f"{path}: metadata is a {type(metadata).__name__}, expected a JSON object")
    return state, metadata


def error_line(exc: BaseException) -> str:
    """One line for error messages: ``Class: first line of the message`` (at most 200 characters; the message may be empty)."""
    lines = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {lines[0][:200]}" if lines else exc.__class__.__name__


def _detached(obj):
    """Tensors moved to the CPU, recursively through dicts/lists (optimizer states)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, dict):
        return {k: _detached(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_detached(v) for v in obj)
    return obj


def recorded_hyperparameters(cls, recorded: dict):
    """The dataclass ``cls`` (a model's hyperparameters) from the JSON ``recorded`` with weights:
    each field coerced to its annotation (int, float, bool, tuples of them; ``X | None`` keeps
    None); a field that older weights did not record takes its default. A missing required field
    or a value of the wrong kind raises (KeyError/TypeError/ValueError: a corrupt file)."""
    import dataclasses
    import typing
    hints = typing.get_type_hints(cls)
    return cls(**{f.name: _coerced(hints[f.name], recorded[f.name])
                  for f in dataclasses.fields(cls) if f.name in recorded or f.default is dataclasses.MISSING})


def _coerced(annotation, value):
    import types
    import typing
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        return _coerced(next(a for a in args if a is not type(None)), value)
    if origin is tuple:
        kinds = [args[0]] * len(value) if Ellipsis in args else list(args)
        if len(kinds) != len(value):
            raise ValueError(f"expected {len(kinds)} values, found {value!r}")
        return tuple(_coerced(kind, v) for kind, v in zip(kinds, value))
    return annotation(value)
