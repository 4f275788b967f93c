"""The physics-shift protocol: measured physics other than the calibration's, through MDF."""
import hashlib

import h5py
import numpy as np
import pytest
import torch

from mdf_io import MDFFile, read_measurement
from mpirecon.learning.augment import physics_gains, shifted
from mpirecon.learning.data import PairsRecipe, SimulatedPairs
from mpirecon.simulation.measurement import SIGNAL_ROW_SNR
from mpirecon.simulation.phantoms import openmpi_designs
from mpirecon.simulation.shift import PhysicsShift, receive_gain, shifted_physics, write_shifted_measurement

NO_SHIFT = dict(relaxation_time=None, core_diameter=None, drive_amplitude_error=0.0, receive_cutoff=None,
                receive_delay=0.0)


def _digest(path) -> str:
    """Hash of the measurement data and background flags (not the file's UUIDs and dates)."""
    with h5py.File(path, "r") as f:
        return hashlib.sha256(f["/measurement/data"][()].tobytes()
                              + f["/measurement/isBackgroundFrame"][()].tobytes()).hexdigest()


def test_no_shift_is_the_calibration_physics(small_sim):
    assert np.allclose(shifted_physics(small_sim, PhysicsShift(**NO_SHIFT)), small_sim.physics.matrix, rtol=1e-12)


def test_shift_keeps_the_energy_of_the_signal_rows_and_changes_the_shape(small_sim):
    m = shifted_physics(small_sim, PhysicsShift())
    sig = small_sim.calibration.snr > SIGNAL_ROW_SNR
    ref = small_sim.physics.matrix
    assert np.isclose(np.linalg.norm(m[sig]), np.linalg.norm(ref[sig]))
    assert np.linalg.norm(m[sig] - ref[sig]) > 0.05 * np.linalg.norm(ref[sig])


def test_receive_gain_is_a_low_pass_with_a_delay():
    f = np.array([0.0, 1e6])
    g = receive_gain(f, PhysicsShift(receive_cutoff=1e6, receive_delay=1e-7))
    assert g[0] == 1.0
    assert np.isclose(abs(g[1]), 1 / np.sqrt(2))
    assert np.isclose(np.angle(g[1]), -np.pi / 4 - 2 * np.pi * 0.1)


def test_shifted_measurement_is_seeded_and_spec_valid(small_sim, tmp_path):
    matrix = shifted_physics(small_sim, PhysicsShift())
    images, labels = openmpi_designs(4, small_sim.calibration.image_shape, np.random.default_rng(0))
    assert set(labels) == {"openmpi_shape", "openmpi_resolution", "openmpi_concentration"}
    a, b, c = (tmp_path / f"{k}.mdf" for k in "abc")
    meas = write_shifted_measurement(a, small_sim, matrix, images, 30.0, seed=3, background_frames=6)
    write_shifted_measurement(b, small_sim, matrix, images, 30.0, seed=3, background_frames=6)
    write_shifted_measurement(c, small_sim, matrix, images, 30.0, seed=4, background_frames=6)
    assert _digest(a) == _digest(b) != _digest(c)
    with MDFFile(a) as mdf:  # the header validates against the spec's schema
        assert mdf.header.acquisition.num_frames == 10
        assert mdf.layout.is_background_frame.sum() == 6
    read = read_measurement(a, rows=small_sim.calibration.rows)  # background subtracted on reading
    expected = meas.foreground - meas.background.mean(axis=0)
    rows = meas.signal_rows  # a real time signal has no imaginary DC or Nyquist part
    assert np.allclose(read.data[:, rows], expected[:, rows], atol=1e-5 * np.abs(expected).max())


def test_physics_gains_are_one_without_a_share_and_shifted_keeps_energy():
    f = torch.linspace(0, 1e6, 50)
    g = torch.Generator().manual_seed(0)
    assert torch.equal(physics_gains(f, 3, g, share=0.0), torch.ones(3, 50, dtype=torch.complex64))
    gains = physics_gains(f, 200, torch.Generator().manual_seed(1), share=1.0)
    assert gains.shape == (200, 50) and torch.all(gains[:, 0] == gains[:, 0].real.to(gains.dtype))  # DC: no phase
    assert not torch.allclose(gains, torch.ones_like(gains))
    for unit in (1.0, 1e-23, 1e20):  # volts of any scale, float32 squares included
        clean = torch.randn(5, 50, dtype=torch.complex64) * unit
        out = shifted(clean, f, torch.Generator().manual_seed(2), 1.0)
        ratio = (out / unit).abs().pow(2).sum(1) / (clean / unit).abs().pow(2).sum(1)
        assert torch.allclose(ratio, torch.ones(5), rtol=1e-4)


def test_augmented_pairs_are_deterministic_and_differ_from_the_exact_matrix(small_sm):
    recipe = dict(samples=16, val_samples=8, seed=0)
    plain = SimulatedPairs(small_sm.matrix, small_sm.image_shape, PairsRecipe(**recipe))
    aug = [SimulatedPairs(small_sm.matrix, small_sm.image_shape, PairsRecipe(**recipe, physics_augmentation=1.0),
                          frequencies=small_sm.frequencies) for _ in range(2)]
    idx = torch.arange(8)
    b1, x1 = aug[0].batch(idx, torch.Generator().manual_seed(5))
    b2, _ = aug[1].batch(idx, torch.Generator().manual_seed(5))
    b0, x0 = plain.batch(idx, torch.Generator().manual_seed(5))
    assert torch.equal(b1, b2) and torch.equal(x1, x0)
    assert torch.linalg.norm(b1 - b0) > 0.05 * torch.linalg.norm(b0)
    assert torch.equal(aug[0].validation[0], aug[1].validation[0])
    with pytest.raises(ValueError, match="frequencies"):
        SimulatedPairs(small_sm.matrix, small_sm.image_shape, PairsRecipe(**recipe, physics_augmentation=0.5))


def test_bench_realistic_and_physics_shift_protocols_report_the_openmpi_families(small_sim, tmp_path):
    import json

    from mpirecon.bench.runner import BenchConfig, run_bench

    sm_path = tmp_path / "sm.mdf"
    small_sim.write(sm_path)  # with /_simulation: the physics model the protocol shifts
    cfg = BenchConfig(methods=["pinv"], snr_levels=[30.0], test_samples=9, val_samples=3,
                      protocols=["realistic", "physics-shift"])
    out = run_bench(cfg, system_matrix_path=sm_path, output=tmp_path / "b", progress=False)
    res = json.loads((out / "results.json").read_text())
    shift = res["protocols"]["physics-shift"]["30"]["pinv"]
    real = res["protocols"]["realistic"]["30"]["pinv"]
    designs = {"openmpi_shape", "openmpi_resolution", "openmpi_concentration"}
    assert designs <= set(shift["psnr_by_family"])
    assert designs <= set(real["psnr_by_family"])  # the designs are an evaluation family of both
    assert "digits" not in real["psnr_by_family"]  # never a training family
    assert res["config"]["shift"]["relaxation_time"] == PhysicsShift().relaxation_time
    assert "physics-shift" in (out / "results.md").read_text()
