import os

import numpy as np
import pytest

from mpirecon.preprocess.selection import selected_system_matrix
from mpirecon.simulation.scanner import ScannerParams
from mpirecon.simulation.system_matrix import simulate_calibration


@pytest.fixture(scope="session")
def small_sim():
    """A fast 10 x 8 simulated calibration (non-square on purpose)."""
    return simulate_calibration(ScannerParams(grid=(10, 8), subsamples=2))


@pytest.fixture(scope="session")
def small_sm(small_sim):
    return selected_system_matrix(small_sim.calibration)


@pytest.fixture()
def rng():
    return np.random.default_rng(0)


@pytest.fixture()
def tiny_files(tmp_path, monkeypatch):
    """A fresh folder (made the cwd) with a tiny measurement ``meas.mdf`` and calibration
    ``cal.mdf`` (3 x 2 grid, see tests/cli_fuzz_cases.py); returns the folder."""
    from cli_fuzz_cases import base_calibration, base_measurement

    base_measurement(tmp_path / "meas.mdf")
    base_calibration(tmp_path / "cal.mdf")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def sim_files(tmp_path_factory):
    """A folder with a simulated 10 x 8 calibration ``sm.mdf`` and a one-frame measurement
    ``meas.mdf`` of the shape phantom, written through the CLI (one per test module)."""
    from mpirecon.cli.main import main
    d = tmp_path_factory.mktemp("sim")
    assert main(["simulate", "system-matrix", "-o", str(d / "sm.mdf"), "--grid", "10", "8"]) == 0
    assert main(["simulate", "measurement", "--sm", str(d / "sm.mdf"), "--phantom", "shape", "-o",
                 str(d / "meas.mdf")]) == 0
    return d
