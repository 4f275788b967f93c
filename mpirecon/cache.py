"""The user cache of mpirecon (demo weights): where it is, how big, and clearing it.

Only files mpirecon itself puts there (:data:`CACHE_PATTERNS`) are counted and removed, so a
cache folder pointed elsewhere with ``$MPIRECON_CACHE`` never loses other files.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

#: glob patterns of the files mpirecon writes into the cache folder
CACHE_PATTERNS = ("dernet-demo-*.pt", "dernet-demo-*.pt.ckpt", ".dernet-demo-*.tmp")


def default_cache_dir() -> Path:
    """User cache folder: $MPIRECON_CACHE, else $XDG_CACHE_HOME/mpirecon, else ~/.cache/mpirecon."""
    if os.environ.get("MPIRECON_CACHE"):
        return Path(os.environ["MPIRECON_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "mpirecon"


def cache_dir(folder=None) -> Path:
    """``folder``, else the default (:func:`default_cache_dir`: $MPIRECON_CACHE,
    $XDG_CACHE_HOME/mpirecon or ~/.cache/mpirecon)."""
    return Path(folder) if folder else default_cache_dir()


def cached_files(folder=None) -> list[Path]:
    """mpirecon's files in the cache folder, sorted (empty if the folder does not exist)."""
    d = cache_dir(folder)
    if not d.is_dir():
        return []
    return sorted({p for pattern in CACHE_PATTERNS for p in d.glob(pattern) if p.is_file()})


def cache_info(folder=None) -> str:
    """One line: the cache folder, number of files and their total size in MB."""
    files = cached_files(folder)
    size = sum(p.stat().st_size for p in files)
    return f"cache folder {cache_dir(folder)}: {len(files)} file(s), {size / 1e6:.1f} MB"


def clear_cache(folder=None) -> tuple[int, int]:
    """Remove mpirecon's cached files; returns (files removed, bytes freed)."""
    files = cached_files(folder)
    size = 0
    for p in files:
        size += p.stat().st_size
        p.unlink(missing_ok=True)
    return len(files), size


def report(folder: Optional[str], clear: bool) -> str:
    """The text ``mpirecon cache`` / ``demo --cache-info|--clear-cache`` prints."""
    if not clear:
        return cache_info(folder)
    n, size = clear_cache(folder)
    return f"removed {n} file(s), {size / 1e6:.1f} MB, from {cache_dir(folder)}"
