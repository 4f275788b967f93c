"""The noise estimate follows the preprocessing: σ of a mean of n frames is the single frame's σ / sqrt(n), background
subtraction adds the background mean's noise, row weighting scales each row's σ by its weight."""
import numpy as np
import pytest

from mpirecon import load_measurement_for, load_system_matrix
from mpirecon.cli.main import main
from mpirecon.preprocess.noise import estimate_noise


@pytest.fixture(scope="module")
def many(sim_files):
    path = sim_files / "meas100.mdf"
    assert main(["simulate", "measurement", "--sm", str(sim_files / "sm.mdf"), "--phantom", "shape", "--snr", "15",
                 "--frames", "100", "--background-frames", "20", "-o", str(path)]) == 0
    return sim_files / "sm.mdf", path


@pytest.mark.parametrize("n", [1, 4, 25, 100])
def test_noise_of_averaged_frames(many, n):
    sm_path, path = many
    sm = load_system_matrix(sm_path)
    single = load_measurement_for(path, sm)
    sigma1 = estimate_noise(single, sm).sigma
    averaged = load_measurement_for(path, sm, average=True) if n == 100 else \
        load_measurement_for(path, sm, average_blocks=n)
    assert averaged.frames_averaged == n
    sigma = estimate_noise(averaged, sm).sigma
    expected = sigma1 / np.sqrt(1 + 1 / 20) * np.sqrt(1 / n + 1 / 20)  # background mean subtracted: its noise stays
    np.testing.assert_allclose(sigma, expected, rtol=1e-12)
    # and against the data: the spread of the averaged frames around their mean, over the signal rows
    if n <= 4:
        d = averaged.data
        empirical = np.sqrt(np.mean(np.abs(d - d.mean(axis=0)) ** 2, axis=0) * d.shape[0] / (d.shape[0] - 1))
        ratio = np.median(empirical / (sigma1 / np.sqrt(1 + 1 / 20) / np.sqrt(n)))
        assert abs(ratio - 1) < 0.1, ratio


@pytest.mark.parametrize("mode", ["rownorm", "whiten"])
def test_noise_follows_row_weighting(many, mode):
    """Row weighting scales matrix rows, data and background frames alike: each row's σ by its weight."""
    from mpirecon.preprocess.weighting import row_weights, weight_measurement, weight_system_matrix
    sm_path, path = many
    sm = load_system_matrix(sm_path)
    meas = load_measurement_for(path, sm, average_blocks=4)
    w = row_weights(sm, mode)
    weighted_sm = weight_system_matrix(sm, w, mode)
    weighted = weight_measurement(meas, sm, weighted_sm, w)
    sigma, sigma_w = estimate_noise(meas, sm).sigma, estimate_noise(weighted, weighted_sm).sigma
    np.testing.assert_allclose(sigma_w, sigma * w[sm.rows.positions_of(weighted_sm.rows)], rtol=1e-10)
    assert weighted.frames_averaged == 4  # the averaging's σ / sqrt(n) is kept


def test_plan_records_the_noise_of_the_average(many):
    """Through the plan (blocks, averaging): the recorded σ is the averaged one."""
    from mpirecon.plan import ReconstructionPlan
    sm_path, path = many
    base = ReconstructionPlan(inputs={"measurement": str(path), "calibration": str(sm_path)},
                              method={"name": "pinv"}, frames={"block_size": 7})
    single = base.run().reconstruction.parameters["noise"]["sigma_rms"]
    averaged = base.with_changes(frames={"average": True}).run().reconstruction.parameters["noise"]["sigma_rms"]
    expected = single / np.sqrt(1 + 1 / 20) * np.sqrt(1 / 100 + 1 / 20)
    assert averaged == pytest.approx(expected, rel=1e-9)
