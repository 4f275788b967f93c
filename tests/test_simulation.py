import numpy as np

from mpirecon import load_reconstructor
from mpirecon.preprocess.selection import select_frequencies, selected_system_matrix
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


def test_3d_calibration_shapes_rows_and_file(tmp_path):
    import mdf_io
    from mpirecon.simulation.scanner import scanner_3d

    scanner = scanner_3d((4, 3, 2), max_frequency=30e3)
    kept = scanner.kept_frequency_indices()
    assert kept.size == int(np.floor(30e3 / (2.5e6 / 2) * (scanner.num_sampling_points // 2))) + 1
    sim = simulate_calibration(scanner)
    cal = sim.calibration
    assert scanner.num_sampling_points == 53856 and cal.grid == (4, 3, 2) and cal.image_shape == (2, 3, 4)
    assert cal.matrix.shape == (3 * kept.size, 24) and cal.matrix.dtype == np.complex64
    np.testing.assert_array_equal(cal.rows.channel, np.repeat([0, 1, 2], kept.size))
    np.testing.assert_array_equal(cal.rows.frequency_index, np.tile(kept, 3))
    assert np.all(cal.frequencies <= 30e3) and np.all(cal.snr[cal.rows.frequency_index == 0] == 0)
    path = tmp_path / "sm3d.mdf"
    sim.write(path)
    back = mdf_io.read_system_matrix(path)
    assert back.grid == (4, 3, 2) and back.num_rows == cal.num_rows
    np.testing.assert_array_equal(back.rows.frequency_index, cal.rows.frequency_index)
    np.testing.assert_allclose(back.matrix, cal.matrix, rtol=1e-5, atol=1e-6 * np.abs(cal.matrix).max())


def test_3d_voxel_spectra_in_chunks_and_strongest_frequencies():
    from mpirecon.simulation.physics import voxel_spectra
    from mpirecon.simulation.scanner import ParticleParams, scanner_3d

    scanner = scanner_3d((3, 3, 2), frequencies=(528, 561, 544, 1089, 7))
    whole = voxel_spectra(scanner, ParticleParams())
    chunked = voxel_spectra(scanner, ParticleParams(), chunk_bytes=1)  # one voxel per chunk
    assert whole.shape == (3, 5, 18)
    np.testing.assert_array_equal(whole, chunked)
    coarse = scanner_3d((3, 3, 2), max_frequency=20e3)
    strongest = coarse.model_copy(update={"num_frequencies": 6}).kept_frequency_indices()
    energy = np.sum(np.abs(voxel_spectra(coarse, ParticleParams())) ** 2, axis=(0, 2))
    assert strongest.size == 6 and np.all(np.diff(strongest) > 0)
    assert energy[strongest].min() >= np.delete(energy, strongest).max()  # the 6 strongest of the band


def test_3d_phantom_reconstructs_with_large_strategies():
    from mpirecon.simulation.scanner import scanner_3d

    sim = simulate_calibration(scanner_3d((4, 4, 3), max_frequency=40e3))
    sm = selected_system_matrix(sim.calibration)
    truth = np.zeros((1, 3, 4, 4))
    truth[0, 1, 1:3, 1:3] = 1.0
    meas = simulate_spectra(sim, truth, 40.0, seed=2)
    spectra = (meas.foreground - meas.background.mean(axis=0))
    idx = np.flatnonzero(sim.calibration.snr > 1.5)
    for name in ("pinv", "admm_tv"):
        img = load_reconstructor(name, sm, strategy="large").reconstruct(spectra[:, idx]).images[0]
        assert img.shape == (3, 4, 4)
        assert np.corrcoef(img.ravel(), truth.ravel())[0, 1] > 0.5
