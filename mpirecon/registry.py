"""Discovery of reconstruction methods through the entry-point group ``mpirecon.reconstructors``.

Listing reads only package metadata (no plugin is imported, so torch is not loaded); a plugin
is imported when it is used. A plugin that fails to import is reported, not fatal.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from typing import Optional

from mpirecon.reconstructor import Reconstructor, ReconstructorError

ENTRY_POINT_GROUP = "mpirecon.reconstructors"


@dataclass(frozen=True)
class PluginInfo:
    """One registered method: its name, the ``module:Class`` target and its distribution."""

    name: str
    target: str
    distribution: Optional[str]


def _entry_points():
    return metadata.entry_points(group=ENTRY_POINT_GROUP)


def list_reconstructors() -> list[str]:
    """Names of every registered reconstructor, sorted (reads metadata only)."""
    return sorted({ep.name for ep in _entry_points()})


def plugin_infos() -> list[PluginInfo]:
    """:class:`PluginInfo` of every registered reconstructor, sorted by name."""
    out = {}
    for ep in _entry_points():
        dist = getattr(getattr(ep, "dist", None), "name", None)
        out.setdefault(ep.name, PluginInfo(ep.name, ep.value, dist))
    return [out[k] for k in sorted(out)]


def get_reconstructor_class(name: str) -> type[Reconstructor]:
    """Import and return the class registered as ``name``.

    Raises :class:`ReconstructorError` listing the available names if ``name`` is unknown,
    or naming the plugin and its import error if it is broken.
    """
    matches = [ep for ep in _entry_points() if ep.name == name]
    if not matches:
        raise ReconstructorError(f"unknown reconstructor '{name}'; available: "
                                 f"{', '.join(list_reconstructors()) or '(none installed)'}")
    ep = matches[0]
    try:
        cls = ep.load()
    except Exception as exc:  # a broken plugin must not break the others
        raise ReconstructorError(f"reconstructor '{name}' ({ep.value}) failed to load: "
                                 f"{exc.__class__.__name__}: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Reconstructor)):
        raise ReconstructorError(f"reconstructor '{name}' ({ep.value}) is not a mpirecon.Reconstructor subclass")
    return cls


def load_reconstructor(name: str, system_matrix=None, *, weights=None, **params) -> Reconstructor:
    """Construct the reconstructor registered as ``name`` with ``params`` (validated).

    ``system_matrix`` (a frequency-selected :class:`mdf_io.SystemMatrix`) is bound right away;
    ``weights`` is a path for learned methods.
    """
    cls = get_reconstructor_class(name)
    return cls(system_matrix, weights=weights, **params)
