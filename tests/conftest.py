import numpy as np
import pytest

from mpirecon.selection import selected_system_matrix
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
