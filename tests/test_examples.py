import runpy
import sys
from pathlib import Path

import mdf_io

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_simulate_system_matrix_example(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["x", "--grid", "9", "7", "--out-dir", str(tmp_path)])
    runpy.run_path(str(EXAMPLES / "simulate_system_matrix.py"), run_name="__main__")
    assert (tmp_path / "frequency_components.png").stat().st_size > 5000
    assert mdf_io.read_system_matrix(tmp_path / "system_matrix.mdf").grid == (9, 7, 1)
