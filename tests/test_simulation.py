import numpy as np

from mpirecon import load_reconstructor
from mpirecon.selection import select_frequencies, selected_system_matrix
from mpirecon.simulation import phantoms
from mpirecon.simulation.datasets import SignalRecipe, generate_signals
from mpirecon.simulation.measurement import simulate_spectra
from mpirecon.simulation.noise import add_noise, measured_snr_db
from mpirecon.simulation.scanner import ScannerParams
from mpirecon.simulation.system_matrix import simulate_calibration


def test_harmonic_spectrum_decays(small_sim):
    a = small_sim.physics.matrix
    k = small_sim.physics.rows.frequency_index
    energy = np.sqrt(np.mean(np.abs(a) ** 2, axis=1))
    low = energy[(k > 10) & (k < 100)].mean()
    high = energy[(k > 400) & (k < 800)].mean()
    assert high < 0.05 * low


def test_adjacent_voxel_columns_are_more_similar(small_sim):
    a = small_sim.physics.matrix
    a = a / np.linalg.norm(a, axis=0)
    nx, ny = small_sim.scanner.grid
    p = lambda x, y: y * nx + x  # noqa: E731
    near = np.abs(np.vdot(a[:, p(4, 4)], a[:, p(5, 4)]))
    far = np.abs(np.vdot(a[:, p(4, 4)], a[:, p(9, 0)]))
    assert near > far + 0.2


def test_point_source_reconstructs_at_its_voxel(small_sim):
    sm = selected_system_matrix(small_sim.physics, snr_threshold=None)
    sm = sm.take_rows(select_frequencies(small_sim.calibration, 1.5))
    r = load_reconstructor("pinv", sm, lam=1e-6, nonneg=False)
    for voxel in (0, 23, 57, 79):
        c = np.zeros(sm.num_voxels)
        c[voxel] = 1.0
        img = r.reconstruct(c @ sm.matrix.T).images[0]
        assert int(np.argmax(img)) == voxel


def test_requested_snr_is_achieved(small_sim):
    img = phantoms.named_phantom("shape", small_sim.calibration.image_shape)
    for snr in (15.0, 30.0):
        m = simulate_spectra(small_sim, np.repeat(img[None], 20, 0), snr, seed=1, background_frames=200)
        assert abs(m.achieved_snr_db() - snr) < 0.5
    rng = np.random.default_rng(0)
    clean = rng.normal(size=(50, 400)) + 1j * rng.normal(size=(50, 400))
    assert abs(np.mean(measured_snr_db(clean, add_noise(clean, 25.0, rng))) - 25.0) < 0.5


def test_seeds_reproduce_bit_exact(small_sm):
    recipe = SignalRecipe(300, seed=4, chunk_size=128)
    s1, i1, _ = generate_signals(small_sm.matrix, small_sm.image_shape, recipe)
    s2, i2, _ = generate_signals(small_sm.matrix, small_sm.image_shape, recipe)
    assert np.array_equal(s1, s2) and np.array_equal(i1, i2)
    a = simulate_calibration(ScannerParams(grid=(5, 4), subsamples=1))
    b = simulate_calibration(ScannerParams(grid=(5, 4), subsamples=1))
    assert np.array_equal(a.calibration.matrix, b.calibration.matrix)


def test_calibration_snr_and_feedthrough(small_sim):
    cal = small_sim.calibration
    k = cal.rows.frequency_index
    for kd in small_sim.scanner.drive_frequency_indices:
        assert np.all(cal.snr[k == kd] == 0)
    assert 0.2 < np.mean(cal.snr > 1.5) < 0.8


def test_every_family_nonempty_and_bounded():
    for fam in phantoms.FAMILIES:
        x = phantoms.generate(fam, 30, (19, 15), 1)
        assert x.shape == (30, 19, 15)
        assert x.min() >= 0 and np.all(x.reshape(30, -1).max(1) > 0) and x.max() <= 1 + 1e-9


def test_unknown_phantom_family_is_a_clear_error():
    import pytest

    from mpirecon.simulation.phantoms import mixture

    with pytest.raises(ValueError, match="unknown \\['bogus'\\].*available.*digits"):
        mixture(4, (8, 8), ["digits", "bogus"], 0)
