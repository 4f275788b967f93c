"""Safe weights files for learned reconstructors (DERnet, PP-MPI denoisers).

A file is a ``torch.save`` of a plain dict ``{"format", "format_version", "kind",
"state_dict", "metadata_json"}`` and is read with ``torch.load(weights_only=True)``, which
refuses arbitrary pickled objects: a crafted file cannot execute code. Metadata is JSON.
Files are written to a temporary file and renamed.
"""
from __future__ import annotations

import json
import os
import platform
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch

FORMAT = "mpirecon-weights"
FORMAT_VERSION = 1


class WeightsError(ValueError):
    """A weights file is missing, corrupt, unsafe, of the wrong kind, or does not fit the data."""


def environment() -> dict:
    """Versions recorded with results and weights."""
    import h5py
    import scipy

    from mpirecon import __version__
    return {"mpirecon": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "scipy": scipy.__version__, "h5py": h5py.__version__, "python": platform.python_version(),
            "machine": platform.machine(), "system": platform.system()}


def save_weights(path, kind: str, state_dict: dict, metadata: dict, *, overwrite: bool = True) -> None:
    """Write ``state_dict`` (tensors) and JSON ``metadata`` atomically to ``path``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise WeightsError(f"{path}: exists; refusing to overwrite")
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind,
               "state_dict": _detached(state_dict),
               "metadata_json": json.dumps(metadata, default=_json_default, sort_keys=True)}
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load_weights(path, kind: str) -> tuple[dict, dict]:
    """Read a weights file of ``kind`` -> (state_dict, metadata). Raises :class:`WeightsError`
    naming the file for missing, truncated, corrupt, unsafe or foreign files."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as exc:
        raise WeightsError(f"{path}: not a readable weights file (truncated or corrupt?): "
                           f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:200]}") from None
    except Exception as exc:  # pickle.UnpicklingError for unsafe content, and anything else
        raise WeightsError(f"{path}: refused to load (unsafe or unknown content): "
                           f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:200]}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise WeightsError(f"{path}: not an mpirecon weights file (field 'format' should be '{FORMAT}')")
    if payload.get("kind") != kind:
        raise WeightsError(f"{path}: holds '{payload.get('kind')}' weights, expected '{kind}'")
    if int(payload.get("format_version", -1)) > FORMAT_VERSION:
        raise WeightsError(f"{path}: format_version {payload.get('format_version')} is newer than "
                           f"this mpirecon understands ({FORMAT_VERSION})")
    try:
        metadata = json.loads(payload["metadata_json"])
        state = dict(payload["state_dict"])
    except (KeyError, TypeError, ValueError) as exc:
        raise WeightsError(f"{path}: metadata or state_dict missing/corrupt ({exc})") from None
    return state, metadata


def _detached(obj):
    """Tensors moved to the CPU, recursively through dicts/lists (optimizer states)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, dict):
        return {k: _detached(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_detached(v) for v in obj)
    return obj


def _json_default(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return str(obj)
