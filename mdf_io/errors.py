"""Exception types raised by :mod:`mdf_io`.

Every error names the file, the field (HDF5 path) and what was expected versus found, so a
user can fix the file without reading our code.
"""
from __future__ import annotations


class MDFError(Exception):
    """Base class of every error raised while reading or writing MDF files."""

    def __init__(self, path, field: str | None, expected: str, found: str):
        self.path = str(path) if path is not None else "<memory>"
        self.field = field
        self.expected = expected
        self.found = found
        where = f"{self.path}"
        if field:
            where += f": field '{field}'"
        super().__init__(f"{where}: expected {expected}, found {found}")


class MDFFormatError(MDFError, ValueError):
    """The file is not valid MDF v2: a missing dataset, a wrong shape, dtype or value."""


class MDFNotSupportedError(MDFError, ValueError):
    """The file is valid MDF but uses a layout this reader does not handle (e.g. compression)."""


class MDFMismatchError(MDFError, ValueError):
    """Two files (or a file and an object) do not fit together, e.g. measurement vs system matrix."""


class MDFWriteError(MDFError, OSError):
    """A file could not be written (it exists and overwrite=False, or the data are invalid)."""
