"""Atomic creation of output files: all of them appear complete, or none does.

Use :func:`atomic_output` for one file and :func:`atomic_outputs` for files that belong
together (e.g. an MDF reconstruction and its PNG)::

    with atomic_output("rec.mdf") as tmp:      # tmp: a fresh empty file beside rec.mdf
        write_something(tmp)
    # rec.mdf now exists, complete, with mode 0o666 & ~umask

Guarantees:

* the final name is created atomically: ``os.link(tmp, final)`` fails if ``final`` exists,
  so two writers never clobber each other (with ``overwrite=True``: ``os.replace``);
* on any exception, SIGTERM or SIGINT inside the block, the temporary files are removed and
  no final file is created or changed (while the block runs, SIGTERM raises ``SystemExit(143)``
  in the main thread; the previous handlers are restored afterwards);
* an output path that is an existing directory, or whose parent directory is missing, is
  refused with :class:`~mdf_io.errors.MDFWriteError` before anything is written.
"""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from typing import Iterator, Sequence

from .errors import MDFDiskFullError, MDFWriteError, describe_exception

__all__ = ["atomic_output", "atomic_outputs"]


@contextlib.contextmanager
def atomic_output(path, *, overwrite: bool = False, needs: int | None = None) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s directory that becomes ``path`` if the block succeeds.

    Args:
        path: the final file. Refused (:class:`MDFWriteError`) if it is a directory, if its
            parent directory does not exist, or if it exists and ``overwrite`` is False.
        overwrite: replace an existing file (atomically, with ``os.replace``).
    """
    with atomic_outputs([path], overwrite=overwrite, needs=needs) as (tmp,):
        yield tmp


@contextlib.contextmanager
def atomic_outputs(paths: Sequence, *, overwrite: bool = False, needs: int | None = None) -> Iterator[list[Path]]:
    """Yield one temporary path per entry of ``paths`` (same order); on success all of them
    appear at their final names together, otherwise none does.

    If publishing fails half-way (e.g. the second name was taken meanwhile), the files already
    published are removed again, and with ``overwrite`` the files they replaced are restored.
    A full device (ENOSPC, also as the text of h5py's or torch's errors) becomes one
    :class:`MDFDiskFullError` naming the final file; ``needs`` (bytes, if known) is checked
    against the free space before anything is written and quoted in the message.
    """
    finals = [Path(p) for p in paths]
    resolved = [os.path.abspath(p) for p in finals]
    if len(set(resolved)) != len(resolved):
        raise MDFWriteError(finals[0], None, "distinct output paths", f"{[str(p) for p in finals]}")
    for final in finals:
        _check_target(final, overwrite)
    if needs and free_bytes(finals[0].parent) < needs:
        raise MDFDiskFullError(finals[0], needs)
    tmps: list[Path] = []
    with _signals_raise():
        try:
            for final in finals:
                tmps.append(_make_temp(final))
            yield list(tmps)
            mode = 0o666 & ~_umask()
            for tmp in tmps:
                os.chmod(tmp, mode)
            _publish(tmps, finals, overwrite)
        except Exception as exc:  # noqa: BLE001 - re-raised as it is unless the device is full
            full = _disk_full_error(exc, tmps, finals, needs)
            if full is None:
                raise
            raise full from None
        finally:
            for tmp in tmps:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)


def free_bytes(folder) -> int:
    """Free bytes for this user on ``folder``'s file system (a very large number where unknown)."""
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return 2 ** 62


#: free space under which a failed write is taken for a full device (torch reports a full disk
#: only as "unexpected pos ..." without an errno)
NEARLY_FULL_BYTES = 2 ** 20


def _disk_full_error(exc: Exception, tmps: list[Path], finals: list[Path], needs) -> MDFDiskFullError | None:
    """The :class:`MDFDiskFullError` for ``exc`` if it comes from a full device, naming the final
    file (also for an error raised by a nested atomic write into one of ``tmps``), else None."""
    names = {str(t): f for t, f in zip(tmps, finals)}
    if isinstance(exc, MDFDiskFullError):
        final = names.get(exc.path)
        return None if final is None else MDFDiskFullError(final, exc.needs or needs, exc.written)
    text = str(exc)
    full = (isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)) or any(
        s in text for s in ("No space left on device", "errno = 28", "Disk quota exceeded"))
    if not full and isinstance(exc, (OSError, RuntimeError)):
        full = free_bytes(finals[0].parent) < NEARLY_FULL_BYTES
    if not full:
        return None
    written = 0
    for tmp in tmps:
        with contextlib.suppress(OSError):
            written += tmp.stat().st_size
    failed = next((f for t, f in names.items() if t in text), finals[0])
    return MDFDiskFullError(failed, needs, written)


def _check_target(final: Path, overwrite: bool) -> None:
    if final.is_dir():
        raise MDFWriteError(final, None, "a file path", "an existing directory")
    if not final.parent.is_dir():
        raise MDFWriteError(final, None, "an existing parent directory",
                            f"no directory '{final.parent}'")
    if not overwrite and os.path.lexists(final):
        raise MDFWriteError(final, None, "a path that does not exist yet (or overwrite=True)",
                            "an existing file")


def _make_temp(final: Path) -> Path:
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + final.name + ".", suffix=".tmp", dir=final.parent)
    except OSError as exc:
        raise MDFWriteError(final, None, "a writable directory", describe_exception(exc)) from None
    os.close(fd)
    return Path(tmp)


def _publish(tmps: list[Path], finals: list[Path], overwrite: bool) -> None:
    """Move every temporary file to its final name; undo the moves done so far on failure."""
    created: list[Path] = []
    backups: list[tuple[Path, Path]] = []  # (backup of the replaced file, final)
    try:
        for tmp, final in zip(tmps, finals):
            if overwrite and os.path.lexists(final):
                backup = _make_temp(final)
                os.replace(final, backup)
                backups.append((backup, final))
                os.replace(tmp, final)
            else:
                _link_new(tmp, final)
            created.append(final)
    except BaseException as exc:
        for final in created:
            with contextlib.suppress(OSError):
                os.unlink(final)
        for backup, final in backups:
            with contextlib.suppress(OSError):
                os.replace(backup, final)
        if isinstance(exc, FileExistsError):
            raise MDFWriteError(exc.filename or finals[len(created)], None,
                                "a path that does not exist yet (or overwrite=True)",
                                "an existing file (created meanwhile)") from None
        if isinstance(exc, OSError) and not isinstance(exc, MDFWriteError):
            raise MDFWriteError(finals[len(created)], None, "a writable output path",
                                describe_exception(exc)) from None
        raise
    for backup, _ in backups:
        with contextlib.suppress(OSError):
            os.unlink(backup)


def _link_new(tmp: Path, final: Path) -> None:
    """Create ``final`` from ``tmp`` only if ``final`` does not exist (atomically)."""
    try:
        os.link(tmp, final)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        # no hard links on this file system: claim the name exclusively, then fill it
        fd = os.open(final, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        os.replace(tmp, final)
        return
    os.unlink(tmp)


def _umask() -> int:
    """The process umask, read without changing it where /proc allows."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _raise_on_signal(signum, frame):
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def _signals_raise():
    """While the block runs (main thread only), make SIGTERM (and a SIGINT without Python's
    default handler) raise, so ``finally`` clauses clean up; restore the handlers after."""
    saved = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            prev = signal.getsignal(sig)
            if prev in (signal.SIG_IGN, signal.default_int_handler) or prev is None:
                continue
            saved[sig] = prev
            signal.signal(sig, _raise_on_signal)
    try:
        yield
    finally:
        for sig, prev in saved.items():
            signal.signal(sig, prev)
