"""``mpirecon`` command: builds the parser from the sub-command modules and maps errors to exit codes.

Each sub-command lives in its own module ``mpirecon/cli/<name>_cmd.py`` with ``add_parser(sub)``
and ``run(args)``. Every sub-command exits 0 on success and 2 with a one-line
``mpirecon: error: ...`` on bad input; outputs are written atomically and inputs are never
overwritten.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from .._version import __version__

#: sub-command modules, in the order ``--help`` lists them
COMMANDS = ("info", "methods", "run", "export", "simulate", "train", "train_denoiser", "bench", "demo", "cache")


class Parser(argparse.ArgumentParser):
    """ArgumentParser whose help shows every option's default (sub-parsers inherit the class)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(*args, **kwargs)


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
    from mpirecon.reconstructor import ReconstructorError

    try:
        return args.run(args)
    except (MDFError, ReconstructorError, ValueError, FileNotFoundError, FileExistsError) as exc:
        message = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        print(f"mpirecon: error: {message or exc.__class__.__name__}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mpirecon: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
