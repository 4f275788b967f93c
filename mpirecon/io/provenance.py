"""Versions and machine recorded with results, benchmarks and weights files (one place)."""
from __future__ import annotations

import os
import platform
import shlex
import sys
from importlib import metadata, util

import numpy as np


def versions() -> dict:
    """Versions of mpirecon and its numerical stack, Python and the machine, as a JSON-ready dict.

    torch is reported when installed, read from package metadata (importing ``mpirecon`` never
    imports torch); its thread count only when torch is already imported.
    """
    import h5py
    import scipy

    from mpirecon._version import __version__
    out = {"mpirecon": __version__, "numpy": np.__version__, "scipy": scipy.__version__, "h5py": h5py.__version__,
           "python": platform.python_version(), "machine": platform.machine(), "processor": platform.processor(),
           "system": platform.system(), "cpu_count": os.cpu_count()}
    torch = sys.modules.get("torch")
    if torch is not None:
        out["torch"] = torch.__version__
        out["torch_threads"] = torch.get_num_threads()
    elif util.find_spec("torch") is not None:
        try:
            out["torch"] = metadata.version("torch")
        except metadata.PackageNotFoundError:
            pass
    return out


def command_line() -> str:
    """The command line of this process as a shell would take it (program name, then the
    arguments), recorded with weights so that a file says how it was made."""
    return shlex.join([os.path.basename(sys.argv[0] or "python")] + sys.argv[1:])
