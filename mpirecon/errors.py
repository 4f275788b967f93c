"""The exceptions mpirecon raises on purpose (no torch import: the CLI maps them to exit codes).

The documented set of failures of the Python API (see the README, section "Errors"):

* :class:`mdf_io.MDFError` and its subclasses — a file that cannot be read or written (it names
  the file and the HDF5 field);
* :class:`ReconstructorError` — a method, its parameters, settings or device, or data that do
  not fit the method;
* :class:`WeightsError` (a :class:`ReconstructorError`) — a weights file that is missing,
  corrupt, unsafe or of the wrong kind.

:class:`UsageError` is the command line's own (an option value that makes no sense). All of them
are ``ValueError`` subclasses (``MDFWriteError`` is an ``OSError``). Any other exception is a bug
(the CLI reports it as an internal error, exit 1).
"""
from __future__ import annotations

__all__ = ["ReconstructorError", "UsageError", "WeightsError"]


class ReconstructorError(ValueError):
    """Invalid parameters, missing system matrix/weights, or data that do not fit."""


class WeightsError(ReconstructorError):
    """A weights file is missing, corrupt, unsafe, of the wrong kind, or does not fit the data
    (a :class:`ReconstructorError`: the weights are part of a learned method's set-up)."""


class UsageError(ValueError):
    """A command-line option value that cannot work (e.g. ``--weights`` without ``METHOD=FILE``)."""
