"""Deep image prior plugin (baselines.learned.dip): tiny problems, few iterations."""
import numpy as np
import pytest

import mdf_io
from mdf_io import SystemMatrix
from mpirecon import load_reconstructor
from mpirecon.bench.runner import BenchConfig, usable_methods
from mpirecon.simulation.noise import complex_noise, noise_sigma
from mpirecon.simulation.phantoms import HOLDOUT_FAMILIES, mixture

FAST = dict(progress=False, channels=8, depth=1)


@pytest.fixture(scope="module")
def problem(small_sm):
    """Three frames b = A c + n at 20 dB and their per-frame noise σ (3, R)."""
    rng = np.random.default_rng(3)
    images = mixture(3, small_sm.image_shape, HOLDOUT_FAMILIES, rng)
    clean = images.reshape(3, -1) @ small_sm.matrix.T
    sigma = noise_sigma(clean, 20.0)
    return clean + complex_noise(clean.shape, sigma, rng), np.broadcast_to(sigma, clean.shape)


def residual(sm, images, spectra):
    """||A x - b||² per frame in measurement units."""
    return np.sum(np.abs(images.reshape(images.shape[0], -1) @ sm.matrix.T - spectra) ** 2, axis=1)


def test_residual_decreases_and_output_nonnegative(small_sm, problem):
    b, _ = problem
    short = load_reconstructor("dip", small_sm, iterations=5, stopping="none", **FAST).reconstruct(b)
    long = load_reconstructor("dip", small_sm, iterations=150, stopping="none", **FAST).reconstruct(b)
    assert np.all(residual(small_sm, long.images, b) < 0.5 * residual(small_sm, short.images, b))
    assert long.images.shape == (3,) + small_sm.image_shape and long.images.min() >= 0
    assert long.extra["iterations"] == [150, 150, 150]


def test_discrepancy_stop_triggers_at_the_noise_level(small_sm, problem):
    b, sigma = problem
    tau = 1.5
    res = load_reconstructor("dip", small_sm, iterations=3000, tau=tau, misfit="noise", **FAST).reconstruct(
        b, noise=sigma)
    used = np.array(res.extra["iterations"])
    assert res.extra["stopping"] == "discrepancy" and np.all(used > 0) and np.all(used < 3000)
    target = tau ** 2 * np.sum(sigma ** 2, axis=1)
    assert np.all(residual(small_sm, res.images, b) <= 1.001 * target)  # float32 fit, float64 check
    # the frame stopped at the first iterate below the level: a larger tau stops no later
    looser = load_reconstructor("dip", small_sm, iterations=3000, tau=2 * tau, misfit="noise", **FAST).reconstruct(
        b, noise=sigma)
    assert np.all(np.array(looser.extra["iterations"]) <= used)
    # the default target is never below the noise energy (it also counts the misfit GCV sees): no later
    default = load_reconstructor("dip", small_sm, iterations=3000, tau=tau, **FAST).reconstruct(b, noise=sigma)
    assert np.all(np.array(default.extra["iterations"]) <= used)


def test_no_noise_estimate_runs_all_iterations_and_says_so(small_sm, problem):
    b, _ = problem
    bare = SystemMatrix.from_arrays(small_sm.matrix, small_sm.grid[:2])  # SNR +inf: no noise estimate
    with pytest.warns(UserWarning, match="no noise estimate"):
        res = load_reconstructor("dip", bare, iterations=20, misfit="noise", **FAST).reconstruct(b)
    assert res.noise is None and res.extra["iterations"] == [20] * 3
    assert res.extra["stopping"] == "none (no noise estimate)"


def test_seeded_reproducible_and_batch_independent(small_sm, problem):
    b, _ = problem
    recon = load_reconstructor("dip", small_sm, iterations=30, stopping="none", seed=4, **FAST)
    first = recon.reconstruct(b).images
    np.testing.assert_array_equal(first, recon.reconstruct(b).images)
    np.testing.assert_array_equal(first, load_reconstructor("dip", small_sm, iterations=30, stopping="none",
                                                            seed=4, **FAST).reconstruct(b).images)
    other = recon.with_params(seed=5).reconstruct(b).images
    assert not np.allclose(first, other)
    # one frame alone gives (up to float32 rounding) what it gives in the batch; the scale carries over
    alone = recon.reconstruct(b[1:2]).images
    np.testing.assert_allclose(alone[0], first[1], rtol=1e-3, atol=1e-3 * first[1].max())
    np.testing.assert_allclose(recon.reconstruct(1e6 * b[1:2]).images, 1e6 * alone, rtol=1e-3,
                               atol=1e-3 * 1e6 * alone.max())


def test_batches_of_frames_split_as_configured(small_sm, problem):
    b, _ = problem
    whole = load_reconstructor("dip", small_sm, iterations=10, stopping="none", **FAST).reconstruct(b).images
    split = load_reconstructor("dip", small_sm, iterations=10, stopping="none", batch_frames=2,
                               **FAST).reconstruct(b).images
    np.testing.assert_allclose(split, whole, rtol=1e-3, atol=1e-3 * whole.max())


def test_cli_run_with_dip(tmp_path, monkeypatch, capsys):
    from mpirecon.cli.main import main

    monkeypatch.chdir(tmp_path)
    assert main(["simulate", "system-matrix", "-o", "sm.mdf", "--grid", "8", "6"]) == 0
    assert main(["simulate", "measurement", "--sm", "sm.mdf", "--phantom", "shape", "--snr", "30",
                 "--frames", "2", "-o", "meas.mdf"]) == 0
    assert main(["run", "meas.mdf", "--sm", "sm.mdf", "--method", "dip", "--param", "iterations=50",
                 "--param", "progress=false", "-o", "rec.mdf"]) == 0
    rec = mdf_io.read_reconstruction(tmp_path / "rec.mdf")
    assert rec.images.shape == (2, 6, 8) and rec.images.min() >= 0 and rec.method == "dip"
    assert rec.parameters["iterations"] == 50
    assert rec.parameters["noise"]["source"] == "measurement background frames"


def test_bench_leaves_dip_out_by_default_and_caps_its_samples(small_sim, tmp_path, monkeypatch):
    import json

    from baselines.learned import dip
    from mdf_io import write_system_matrix
    from mpirecon.bench.runner import run_bench

    assert "dip" not in usable_methods(BenchConfig()) and "kaczmarz" in usable_methods(BenchConfig())
    assert usable_methods(BenchConfig(methods=["dip"])) == ["dip"]
    assert dip.DeepImagePrior.capabilities.bench_test_samples == 50

    class Quick(dip.DIPConfig):  # the bench cannot set parameters of untuned methods
        iterations: int = 20
        progress: bool = False
        channels: int = 8

    monkeypatch.setattr(dip.DeepImagePrior, "Config", Quick)
    monkeypatch.setattr(dip.DeepImagePrior, "capabilities",
                        dip.Capabilities(supports_gpu=True, in_default_bench=False, bench_test_samples=3))
    sm_path = tmp_path / "sm.mdf"
    write_system_matrix(sm_path, small_sim.calibration)
    cfg = BenchConfig(methods=["pinv", "dip"], snr_levels=[30.0], test_samples=5, val_samples=2,
                      protocols=["paper"])
    out = run_bench(cfg, system_matrix_path=sm_path, output=tmp_path / "b", progress=False)
    res = json.loads((out / "results.json").read_text())["protocols"]["paper"]["30"]
    assert res["dip"]["test_samples"] == 3 and res["pinv"]["test_samples"] == 5
    assert np.isfinite(res["dip"]["psnr"]["mean"])
    assert "dip: 3 test samples per SNR" in (out / "results.md").read_text()


def test_dip_after_an_inference_only_method_on_the_same_matrix(small_sm, problem):
    """The shared operator's torch arrays first built under torch.inference_mode (PP-MPI) still
    serve DIP's autograd fit (a bench runs ppmpi before dip on one matrix)."""
    b, _ = problem
    load_reconstructor("ppmpi", small_sm).reconstruct(b)
    res = load_reconstructor("dip", small_sm, iterations=5, stopping="none", **FAST).reconstruct(b)
    assert res.images.shape == (3,) + small_sm.image_shape


def test_tv_term_gives_flatter_images_and_keeps_the_stop(small_sm, problem):
    b, sigma = problem
    kw = dict(iterations=200, stopping="none", **FAST)
    plain = load_reconstructor("dip", small_sm, **kw).reconstruct(b).images
    tv = load_reconstructor("dip", small_sm, tv=0.05, **kw).reconstruct(b).images

    def total_variation(img):
        return np.abs(np.diff(img, axis=1)).sum() + np.abs(np.diff(img, axis=2)).sum()

    assert total_variation(tv) < total_variation(plain)
    stopped = load_reconstructor("dip", small_sm, iterations=3000, tau=1.5, misfit="noise", tv=1e-4,
                                 **FAST).reconstruct(b, noise=sigma)
    target = 1.5 ** 2 * np.sum(sigma ** 2, axis=1)
    assert np.all(residual(small_sm, stopped.images, b) <= 1.001 * target)  # the stop still sees ||Ax - b||²


def test_automatic_tv_follows_each_frames_noise_and_equals_admm_tvs_rule(small_sm, problem):
    """tv='auto' gives every frame ADMM-TV's automatic μ (mpirecon.optim.autoreg.admm_mu): a noisier frame a
    larger weight, a frame's weight independent of its batch, and the fit equals the fixed-tv fit with
    that frame's weight."""
    b, sigma = problem
    noise = sigma * np.array([[1.0], [3.0], [10.0]])
    auto = load_reconstructor("dip", small_sm, iterations=20, stopping="none", tv="auto", **FAST)
    res = auto.reconstruct(b, noise=noise)
    tv = np.array(res.extra["tv"])
    assert np.all(np.diff(tv) > 0)
    ref = load_reconstructor("admm_tv", small_sm, mu="auto").reconstruct(b, noise=noise)
    np.testing.assert_allclose(tv, ref.extra["auto"]["mu"], rtol=1e-10)
    alone = auto.reconstruct(b[2:], noise=noise[2:])
    np.testing.assert_allclose(alone.extra["tv"], tv[2:], rtol=1e-10)
    fixed = load_reconstructor("dip", small_sm, iterations=20, stopping="none", tv=float(tv[2]), **FAST)
    np.testing.assert_allclose(alone.images, fixed.reconstruct(b[2:], noise=noise[2:]).images, rtol=1e-5, atol=1e-9)
