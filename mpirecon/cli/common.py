"""Helpers shared by the sub-command modules: KEY=VALUE parsing and output-file checks (the rule
itself is :mod:`mpirecon.io.outputs`)."""
from __future__ import annotations

import ast

from mpirecon.errors import UsageError
from mpirecon.io.outputs import check_outputs, refuse_inputs


def parse_params(items, option: str = "--param") -> dict:
    """``["lam=0.1", "nonneg=false"]`` -> {"lam": 0.1, "nonneg": False} (Python literals, true/false,
    else the text). Raises :class:`UsageError` naming ``option`` for an item without '='."""
    out = {}
    for item in items:
        if "=" not in item:
            raise UsageError(f"{option} '{item}': expected KEY=VALUE")
        key, value = item.split("=", 1)
        low = value.strip().lower()
        if low in ("true", "false"):
            out[key.strip()] = low == "true"
            continue
        try:
            out[key.strip()] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key.strip()] = value
    return out


def refuse_input_as_output(output, *inputs) -> None:
    """Raise :class:`mdf_io.MDFWriteError` if ``output`` is one of ``inputs`` (None entries skipped)."""
    refuse_inputs({"-o": output}, inputs)


def check_output(output, overwrite: bool) -> None:
    """Raise :class:`mdf_io.MDFWriteError` if ``output`` exists and ``overwrite`` is False."""
    check_outputs({"-o": output}, overwrite=overwrite)
