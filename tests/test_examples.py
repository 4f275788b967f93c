import runpy
import sys
from pathlib import Path

import mdf_io
import numpy as np

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_simulate_system_matrix_example(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["x", "--grid", "9", "7", "--out-dir", str(tmp_path)])
    runpy.run_path(str(EXAMPLES / "simulate_system_matrix.py"), run_name="__main__")
    assert (tmp_path / "frequency_components.png").stat().st_size > 5000
    assert mdf_io.read_system_matrix(tmp_path / "system_matrix.mdf").grid == (9, 7, 1)


def test_reconstruct_and_compare_on_shipped_real_data(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["x", "--out-dir", str(tmp_path)])
    out = runpy.run_path(str(EXAMPLES / "reconstruct_and_compare.py"), run_name="example")["main"]()
    # the measured signals are consistent with the measured matrix (a sign, conjugation or
    # voxel-order slip in the conversion leaves residuals near 1)
    assert max(out["summary"]["admm_l1tv"]["residual"]) < 0.1
    assert max(out["summary"]["kaczmarz"]["residual"]) < 0.2
    assert min(out["agreement"]) > 0.3
    rec = mdf_io.read_reconstruction(tmp_path / "reconstruction_admm_l1tv.mdf")
    assert rec.images.shape == (5, 8, 8) and rec.images.min() >= 0 and rec.method == "admm_l1tv"
    assert (tmp_path / "comparison.png").stat().st_size > 5000


def test_train_dernet_example(tmp_path, monkeypatch):
    from mpirecon.learning.weights import load_weights

    monkeypatch.setattr(sys, "argv", ["x", "--out-dir", str(tmp_path), "--samples", "256", "--epochs", "1"])
    out = runpy.run_path(str(EXAMPLES / "train_dernet_on_your_matrix.py"), run_name="example")["main"]()
    _, meta = load_weights(out["weights"], "dernet")
    assert meta["grid"][:2] == [15, 15] and meta["training"]["config"]["samples"] == 256
    assert all(np.isfinite(v) and v > 5 for v in out["scores"].values())


def test_write_a_plugin_example():
    scores = runpy.run_path(str(EXAMPLES / "write_a_plugin.py"), run_name="example")["main"]()
    assert scores["landweber"] > 18 and scores["pinv"] > 18  # the plugin really reconstructs
