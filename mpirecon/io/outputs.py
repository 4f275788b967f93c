"""One rule for every file mpirecon writes (``run``, ``simulate``, ``train``, ``bench``, ``demo``).

* An output that exists is refused unless ``overwrite`` (``--overwrite``); an input is never an
  output (not even through another spelling, a symbolic or a hard link), and two outputs of one
  command never share a path.
* A folder a command fills (``bench``, ``demo``) must be new or empty unless ``overwrite``.
* Everything is checked before any slow work, then written with :func:`writing`: the files of
  one command appear together, complete, or not at all (:func:`mdf_io.atomic.atomic_outputs`:
  no clobbering between concurrent writers, clean-up on errors, SIGTERM and SIGINT).

Refusals are :class:`mdf_io.MDFWriteError` naming the file, on one line.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Optional, Sequence

from mdf_io import MDFError, MDFWriteError
from mdf_io.errors import MDFDiskFullError
from mdf_io.atomic import atomic_outputs

__all__ = ["check_output_dir", "check_outputs", "check_space", "refuse_inputs", "same_file", "writing"]

#: what an existing output is refused for
NEW_FILE = "a new file (or --overwrite)"


def same_file(a, b) -> bool:
    """Whether paths ``a`` and ``b`` name the same file (after links; hard links included)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist
        return False


def check_outputs(outputs: Mapping[str, Optional[os.PathLike]], inputs: Iterable = (), *,
                  overwrite: bool = False) -> dict[str, Path]:
    """Check the files a command will write, before it starts working.

    Args:
        outputs: ``{label: path}``, e.g. ``{"-o": args.output, "--png": args.png}`` (None: not
            written); the label names the option in messages.
        inputs: the files the command reads (None entries skipped).
        overwrite: allow replacing existing files (never an input).
    Returns:
        ``{label: Path}`` of the outputs given.
    Raises:
        MDFWriteError: an output is an input, two outputs share a path, an output is a folder,
            its folder is missing, or it exists and ``overwrite`` is False.
    """
    chosen = refuse_inputs(outputs, inputs)
    seen: dict[str, str] = {}
    for label, path in chosen.items():
        for other, other_label in seen.items():
            if same_file(path, other):
                raise MDFWriteError(path, None, f"{label}: a path other than {other_label}",
                                    f"the same file as {other_label}")
        seen[str(path)] = label
        if path.is_dir():
            raise MDFWriteError(path, None, f"{label}: a file path", "an existing folder")
        if not path.parent.is_dir():
            raise MDFWriteError(path, None, f"{label}: a path in an existing folder",
                                f"no folder '{path.parent}'")
        if not overwrite and os.path.lexists(path):
            raise MDFWriteError(path, None, f"{label}: {NEW_FILE}", "a file that exists already")
    return chosen


def refuse_inputs(outputs: Mapping[str, Optional[os.PathLike]], inputs: Iterable = ()) -> dict[str, Path]:
    """``{label: Path}`` of the outputs given (not None); :class:`MDFWriteError` if one of them
    is one of ``inputs`` (None entries skipped)."""
    chosen = {label: Path(p) for label, p in outputs.items() if p is not None}
    inputs = [i for i in inputs if i is not None]
    for label, path in chosen.items():
        for item in inputs:
            if same_file(path, item):
                raise MDFWriteError(path, None, f"{label}: a file that is not an input of this command",
                                    f"the input file {item}")
    return chosen


def check_output_dir(path, *, overwrite: bool = False, label: str = "-o", hint: str = "or --overwrite") -> Path:
    """Check a folder a command fills: new, or empty, or ``overwrite`` (then files of the same
    names are replaced; others are left alone). Raises :class:`MDFWriteError`."""
    path = Path(path)
    if os.path.lexists(path) and not path.is_dir():
        raise MDFWriteError(path, None, f"{label}: a folder", "an existing file")
    if path.is_dir() and not overwrite and any(path.iterdir()):
        raise MDFWriteError(path, None, f"{label}: a new or empty folder ({hint})",
                            "a folder that is not empty")
    return path


def check_space(path, needs: int) -> None:
    """Raise :class:`mdf_io.errors.MDFDiskFullError` if ``path``'s folder has less than ``needs``
    bytes free (call it before slow work whose output size is known)."""
    from mdf_io.atomic import free_bytes
    if needs > free_bytes(Path(path).parent):
        raise MDFDiskFullError(path, needs)


@contextlib.contextmanager
def writing(paths: Sequence, *, overwrite: bool = False, needs: Optional[int] = None) -> Iterator[list[Path]]:
    """:func:`mdf_io.atomic.atomic_outputs` for a command's files: yields one temporary path per
    entry of ``paths``; all of them appear at their final names when the block succeeds, none
    otherwise. Errors of writers that name a temporary file are re-raised naming the final one.
    Writers called inside must accept the (existing, empty) temporary file, e.g.
    ``write_reconstruction(tmp, rec, overwrite=True)``. ``needs``: bytes the files need, if known
    (checked before writing; a full device is one :class:`mdf_io.errors.MDFDiskFullError`)."""
    finals = [Path(p) for p in paths]
    with atomic_outputs(finals, overwrite=overwrite, needs=needs) as tmps:
        try:
            yield tmps
        except MDFError as err:
            raise _renamed(err, tmps, finals) from None


def _renamed(err: MDFError, tmps: Sequence[Path], finals: Sequence[Path]) -> MDFError:
    """``err`` naming the final file instead of its temporary file (``err`` itself otherwise)."""
    for tmp, final in zip(tmps, finals):
        if err.path == str(tmp):
            if isinstance(err, MDFDiskFullError):
                return MDFDiskFullError(final, err.needs, err.written)
            new = type(err)(final, err.field, err.expected, err.found)
            new.unexpected = err.unexpected
            return new
    return err
