"""Exception types raised by :mod:`mdf_io`.

Every error names the file, the field (HDF5 path) and what was expected versus found, on one
line (whitespace and newlines of nested messages such as h5py error stacks or pydantic dumps
are collapsed), so a user can fix the file without reading our code.
"""
from __future__ import annotations

import contextlib

#: longest ``expected``/``found`` text kept in a message (the rest is elided)
MAX_PART = 300


def one_line(text, limit: int = MAX_PART) -> str:
    """``text`` with runs of whitespace (newlines included) collapsed to one space, at most
    ``limit`` characters."""
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


class MDFError(Exception):
    """Base class of every error raised while reading or writing MDF files."""

    #: True when the error wraps an exception our checks did not anticipate (a safety net)
    unexpected = False

    def __init__(self, path, field: str | None, expected: str, found: str):
        self.path = one_line(path, 1000) if path is not None else "<memory>"
        self.field = one_line(field) if field else field
        self.expected = one_line(expected)
        self.found = one_line(found)
        where = f"{self.path}"
        if self.field:
            where += f": field '{self.field}'"
        super().__init__(f"{where}: expected {self.expected}, found {self.found}")


class MDFFormatError(MDFError, ValueError):
    """The file is not valid MDF v2: a missing dataset, a wrong shape, dtype or value."""


class MDFNotSupportedError(MDFError, ValueError):
    """The file is valid MDF but uses a layout this reader does not handle (e.g. compression)."""


class MDFMismatchError(MDFError, ValueError):
    """Two files (or a file and an object) do not fit together, e.g. measurement vs system matrix."""


class MDFWriteError(MDFError, OSError):
    """A file could not be written (it exists and overwrite=False, or the data are invalid)."""


class MDFDiskFullError(MDFWriteError):
    """No space left on the device for a file: found while writing it (nothing is left behind), or
    before writing when the space needed is known. ``needs``: bytes the file needs (None: unknown);
    ``written``: bytes written before the device filled."""

    def __init__(self, path, needs: int | None = None, written: int | None = None, note: str = ""):
        super().__init__(path, None, "space on the device", "no space left")
        self.needs, self.written, self.note = needs, written, note
        if needs:
            amount = f"needs about {_megabytes(needs)}"
        else:
            amount = f"needs more than the {_megabytes(written or 0)} written before the device filled"
        self.args = (f"cannot write {self.path}: no space left on device ({amount})" + (f"; {note}" if note else ""),)

    def __str__(self) -> str:
        return self.args[0]


def _megabytes(n: int) -> str:
    return f"{n / 2 ** 20:.1f} MB" if n < 10 * 2 ** 20 else f"{n / 2 ** 20:.0f} MB"


def describe_exception(exc: BaseException) -> str:
    """``"TypeName: message"`` of ``exc`` on one line."""
    return one_line(f"{exc.__class__.__name__}: {exc}")


@contextlib.contextmanager
def reading(path, field: str | None = None):
    """Safety net around reading ``path``: any exception that is not an :class:`MDFError`
    (an h5py, numpy or decoding error our checks did not foresee) becomes an
    :class:`MDFFormatError` naming the file, marked ``unexpected``."""
    try:
        yield
    except MDFError:
        raise
    except Exception as exc:  # noqa: BLE001 - the net is the point
        err = MDFFormatError(path, field, "a readable MDF v2 file", describe_exception(exc))
        err.unexpected = True
        raise err from exc
