"""``mpirecon`` command: builds the parser from the sub-command modules and maps errors to exit codes.

Each sub-command lives in its own module ``mpirecon/cli/<name>_cmd.py`` with ``add_parser(sub)``
and ``run(args)``. Exit codes, each failure reported on ONE line of stderr:

* 0 success;
* 2 ``mpirecon: error: ...`` — bad input: a command-line value, a file (:class:`mdf_io.MDFError`,
  naming the file and field), a method or its parameters (:class:`ReconstructorError`), a
  weights file (:class:`WeightsError`), an operating-system refusal (``OSError``);
* 1 ``mpirecon: internal error: ...`` — any other exception: a bug, not bad input
  (``MPIRECON_DEBUG=1`` re-raises it with its traceback);
* 130 interrupted (SIGINT), 143 terminated (SIGTERM while writing).

Outputs follow :mod:`mpirecon.io.outputs`: written atomically, all or none, never over an input.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from mpirecon._version import __version__

#: sub-command modules, in the order ``--help`` lists them
COMMANDS = ("info", "methods", "run", "rerun", "export", "simulate", "train", "train_denoiser", "bench", "demo", "cache")


class Parser(argparse.ArgumentParser):
    """ArgumentParser whose help shows every option's default (sub-parsers inherit the class)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        """A usage error on one line (exit 2), instead of argparse's usage block."""
        self.exit(2, f"mpirecon: error: {self.prog}: {one_line(message)} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``mpirecon`` parser; each sub-parser's ``run`` is stored as the ``run`` default."""
    parser = Parser(prog="mpirecon", description="Magnetic Particle Imaging reconstruction toolkit")
    parser.add_argument("--version", action="version", version=f"mpirecon {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f".{name}_cmd", __package__)
        before = set(sub.choices)
        module.add_parser(sub)
        for added in set(sub.choices) - before:
            sub.choices[added].set_defaults(run=module.run)
    return parser


def main(argv=None) -> int:
    """Run the ``mpirecon`` command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from mdf_io import MDFError

    from mpirecon.errors import ReconstructorError, UsageError, WeightsError

    try:
        return args.run(args)
    except (MDFError, ReconstructorError, WeightsError, UsageError, OSError) as exc:
        print(f"mpirecon: error: {one_line(exc) or exc.__class__.__name__}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mpirecon: interrupted", file=sys.stderr)
        return 130
    except (MemoryError, RuntimeError) as exc:  # running out of memory is an expected condition
        from mpirecon.memory import available_hint, check_memory
        text = check_memory(exc)
        if text is None:
            return internal_error(exc)
        if os.environ.get("MPIRECON_DEBUG") == "1":  # where the memory ran out
            raise
        print(f"mpirecon: error: {args.command}: {text}; {available_hint()}; use --memory-limit to plan for "
              "less, fewer rows (--num-used-freqs) or fewer frames", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - a bug: say so on one line, keep the traceback for debugging
        return internal_error(exc)


def internal_error(exc: BaseException) -> int:
    """Report a bug on one line (exit 1); ``MPIRECON_DEBUG=1`` re-raises it with its traceback."""
    if os.environ.get("MPIRECON_DEBUG") == "1":
        raise exc
    print(f"mpirecon: internal error: {exc.__class__.__name__}: {one_line(exc)} (a bug; "
          "MPIRECON_DEBUG=1 shows the traceback)", file=sys.stderr)
    return 1


def one_line(text) -> str:
    """``text`` with whitespace runs (newlines included) collapsed to one space."""
    return " ".join(str(text).split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
