"""PP-MPI's noise-aware denoiser: training pairs with a noise map, the shipped weights and the
packaged names, the per-iteration noise schedule."""
import copy

import numpy as np
import pytest
import torch

import mdf_io
from mpirecon.models.denoiser import RDNDenoiser, denoise, load_denoiser, packaged_weights_path
from baselines.learned.denoiser_training import DenoiserTrainConfig
from mpirecon import ReconstructorError, load_reconstructor
from mpirecon.cli.main import main
from mpirecon.learning.data import DenoisingPairs
from mpirecon.simulation.phantoms import HOLDOUT_FAMILIES


@pytest.fixture(scope="module")
def files(sim_files):
    return sim_files


def test_noise_aware_pairs_carry_their_noise_map():
    data = DenoisingPairs((9, 11), 32, 16, 0.1, ("blobs", "ellipses"), seed=3, noise_range=(0.01, 0.3))
    noisy, clean = data.batch(torch.arange(32), torch.Generator().manual_seed(0))
    assert noisy.shape == (32, 2, 9, 11) and clean.shape == (32, 1, 9, 11)
    sigma = noisy[:, 1]
    assert torch.all(sigma == sigma[:, :1, :1])  # one constant map per image
    levels = sigma[:, 0, 0]
    assert float(levels.min()) >= 0.01 and float(levels.max()) <= 0.3 and float(levels.std()) > 0
    residual_std = (noisy[:, 0] - clean[:, 0]).flatten(1).std(1)
    np.testing.assert_allclose(residual_std.numpy(), levels.numpy(), rtol=0.35)  # 99 voxels per image
    assert data.validation[0].shape == (16, 2, 9, 11)
    plain = DenoisingPairs((9, 11), 8, 4, 0.1, ("blobs",), seed=3)
    assert plain.batch(torch.arange(8), torch.Generator())[0].shape == (8, 1, 9, 11)


def test_noise_range_must_be_ordered_and_positive():
    with pytest.raises(ValueError, match="0 < lo <= hi"):
        DenoiserTrainConfig(noise_range=(0.2, 0.1))
    with pytest.raises(ValueError, match="0 < lo <= hi"):
        DenoiserTrainConfig(noise_range=(0.0, 0.1))


def test_the_noise_map_steers_a_noise_aware_net_and_a_plain_one_ignores_it():
    torch.manual_seed(0)
    aware = RDNDenoiser(4, 1, 1, 4, noise_input=True).eval()
    den = load_denoiser("published")
    den_aware = type(den)(net=aware, noise_std=0.01, source="test", metadata={}, noise_aware=True)
    img = torch.rand(2, 8, 8)
    assert not torch.allclose(denoise(den_aware, img, 0.01), denoise(den_aware, img, 0.3))
    torch.testing.assert_close(denoise(den_aware, img), denoise(den_aware, img, 0.01))  # default: lowest level
    torch.testing.assert_close(denoise(den, img, 0.01), denoise(den, img, 0.3))
    assert not den.noise_aware and den_aware.noise_aware


def test_shipped_denoiser_is_the_default_records_its_command_and_never_saw_holdout_shapes():
    shipped = load_denoiser()
    assert shipped.noise_aware and shipped.source == str(packaged_weights_path("shipped"))
    meta = shipped.metadata
    assert meta["command"].startswith("mpirecon train-denoiser ")
    assert "--noise-range" in meta["command"]
    assert not set(meta["training"]["families"]) & set(HOLDOUT_FAMILIES)
    lo, hi = meta["noise_range"]
    assert shipped.noise_std == lo < hi
    published = load_denoiser("published")
    assert not published.noise_aware and published.noise_std == 0.1


def test_noise_schedule_is_geometric_from_start_to_end(small_sm):
    from mpirecon.optim.pnp import noise_schedule
    b = np.ones((4, 1))
    r = load_reconstructor("ppmpi", small_sm, iterations=5, sigma_start=0.2, sigma_end=0.0125)
    np.testing.assert_allclose(noise_schedule(r.config.pnp, r.host, b, None)[:, 0], [0.2, 0.1, 0.05, 0.025, 0.0125])
    flat = load_reconstructor("ppmpi", small_sm, iterations=3, sigma_start=0.01, sigma_end=0.05)
    np.testing.assert_allclose(noise_schedule(flat.config.pnp, flat.host, b, None)[:, 0],
                               [0.05, 0.05, 0.05])  # never below the end
    with pytest.raises(ReconstructorError, match="sigma_end"):
        load_reconstructor("ppmpi", small_sm, sigma_end=0)


def test_automatic_noise_level_follows_each_frames_relative_data_error(small_sm):
    """sigma_end='auto' (the default) tells the denoiser κ x the frame's relative data error: the
    noise energy over ||b|| when the noise dominates, more for a noisier frame, independent of
    the frame's batch and of its scale."""
    rng = np.random.default_rng(4)
    clean = rng.random((3, small_sm.num_voxels)) @ small_sm.matrix.T
    sigma = np.array([[1e-3], [1e-2], [5e-2]]) * np.abs(clean).mean(axis=1, keepdims=True)
    noisy = clean + sigma * (rng.standard_normal(clean.shape) + 1j * rng.standard_normal(clean.shape))
    noise = np.broadcast_to(sigma, clean.shape)
    r = load_reconstructor("ppmpi", small_sm, iterations=2, sigma_factor=1.5)
    res = r.reconstruct(noisy, noise=noise)
    end = np.array(res.extra["sigma_end"])
    assert np.all(np.diff(end) > 0)
    expected = 1.5 * np.sqrt(2 * np.sum(noise ** 2, axis=1)) / np.linalg.norm(noisy, axis=1)
    np.testing.assert_allclose(end[1:], expected[1:], rtol=0.05)  # noisy frames: the noise sets the level
    alone = r.reconstruct(7.0 * noisy[2:], noise=7.0 * noise[2:])
    np.testing.assert_allclose(alone.extra["sigma_end"], end[2:], rtol=1e-6)


def test_run_with_packaged_denoisers_records_the_file(files, capsys):
    for weights, name in ((None, "shipped"), ("published", "published")):
        out = files / f"rec_{name}.mdf"
        args = ["run", str(files / "meas.mdf"), "--sm", str(files / "sm.mdf"), "--method", "ppmpi",
                "--param", "iterations=3", "-o", str(out)]
        assert main(args + (["--weights", weights] if weights else [])) == 0
        rec = mdf_io.read_reconstruction(out)
        assert rec.parameters["inputs"]["weights"]["path"] == str(packaged_weights_path(name))
        assert len(rec.parameters["inputs"]["weights"]["sha256"]) == 64
        assert np.all(rec.images >= 0) and np.isfinite(rec.images).all()


def test_volume_denoising_slice_by_slice_over_three_axes():
    from mpirecon.models.denoiser import denoise_volume
    den = load_denoiser("shipped")
    rng = torch.Generator().manual_seed(0)
    vol = torch.rand((2, 5, 6, 7), generator=rng, dtype=torch.float32)
    with torch.inference_mode():
        out = denoise_volume(den, vol, torch.tensor([0.05, 0.1]))
        assert out.shape == vol.shape and float(out.min()) >= 0
        # scale-free: σ is relative to the maximum, each slice normalised by its own
        torch.testing.assert_close(denoise_volume(den, 7.0 * vol, torch.tensor([0.05, 0.1])), 7.0 * out,
                                   rtol=1e-4, atol=1e-5)
        # an empty volume stays empty
        assert float(denoise_volume(den, torch.zeros((1, 3, 3, 3))).abs().max()) == 0.0


def test_ppmpi_reconstructs_a_3d_grid(tmp_path):
    assert main(["simulate", "system-matrix", "--grid", "6", "5", "4", "--frequencies", "200",
                 "-o", str(tmp_path / "sm.mdf")]) == 0
    assert main(["simulate", "measurement", "--sm", str(tmp_path / "sm.mdf"), "--phantom", "shape",
                 "-o", str(tmp_path / "m.mdf")]) == 0
    assert main(["run", str(tmp_path / "m.mdf"), "--sm", str(tmp_path / "sm.mdf"), "--method", "ppmpi",
                 "--param", "iterations=5", "-o", str(tmp_path / "r.mdf")]) == 0
    rec = mdf_io.read_reconstruction(tmp_path / "r.mdf")
    assert rec.images.shape == (1, 4, 5, 6) and rec.images.min() >= 0 and rec.images.max() > 0


def test_ppmpi_on_the_compressed_operator_of_a_large_calibration(small_sm, monkeypatch):
    """Beyond the stacked size, ppmpi iterates on the dominant row space (numpy, as the classical
    solvers); at full rank that is a rotation of the data: close images (float32 numpy against float32
    torch, the noise schedule from the rotated data, amplified a little by the nonlinear denoiser)."""
    from mpirecon.physics import operator as operator_module
    b = np.random.default_rng(5).random((2, small_sm.num_voxels)) @ small_sm.matrix.T
    noise = 0.01 * np.abs(b).mean()
    plain = load_reconstructor("ppmpi", small_sm, iterations=8).reconstruct(b, noise=noise)
    monkeypatch.setattr(operator_module, "DENSE_MAX_VOXELS", 10)
    monkeypatch.setattr(operator_module, "STACKED_MAX_BYTES", 0)
    fresh = copy.copy(small_sm)
    fresh.cache = {}  # no operator built under the other limits
    recon = load_reconstructor("ppmpi", fresh, iterations=8, rank=2 * small_sm.num_rows)
    assert recon.op.__class__.__name__ == "CompressedOperator"
    got = recon.reconstruct(b, noise=noise)
    scale = plain.images.max()
    np.testing.assert_allclose(got.images, plain.images, atol=2e-2 * scale)
    assert np.abs(got.images - plain.images).mean() < 5e-3 * scale
    est = type(recon).memory_estimate(recon.config, 5000, 50000, 1)
    assert est.strategy == "compressed" and "compressed rows" in est.parts
