"""``mpirecon info``: describe an MDF file."""
from __future__ import annotations


def add_parser(sub) -> None:
    """Register the ``info`` sub-command."""
    p = sub.add_parser("info", help="describe an MDF file (calibration, measurement or reconstruction)")
    p.add_argument("file", help="MDF file")


def run(args) -> int:
    """Print the description of ``args.file``."""
    from mdf_io import describe
    print(describe(args.file))
    return 0
