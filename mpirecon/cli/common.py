"""Helpers shared by the sub-command modules: KEY=VALUE parsing and output-file checks."""
from __future__ import annotations

import ast
from pathlib import Path


def parse_params(items, option: str = "--param") -> dict:
    """``["lam=0.1", "nonneg=false"]`` -> {"lam": 0.1, "nonneg": False} (Python literals, true/false,
    else the text). Raises ValueError naming ``option`` for an item without '='."""
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"{option} '{item}': expected KEY=VALUE")
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
    """Raise ValueError if ``output`` is the same file as one of ``inputs`` (None entries skipped)."""
    out = Path(output).resolve()
    for item in inputs:
        if item is not None and Path(item).resolve() == out:
            raise ValueError(f"output {output} is also an input file; refusing to overwrite an input")


def check_output(output, overwrite: bool) -> None:
    """Raise FileExistsError if ``output`` exists and ``overwrite`` is False."""
    if Path(output).exists() and not overwrite:
        raise FileExistsError(f"{output} exists; pass --overwrite to replace it")
