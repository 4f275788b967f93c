"""Data-consistent refinement (mpirecon_dernet.refine) and DERnet's refine option (one typed value)."""
import numpy as np
import pytest

from mpirecon import load_reconstructor
from mpirecon.physics.operator import operator_for
from mpirecon.reconstructor import ReconstructorError
from mpirecon.optim.pnp import PnPSettings, noise_schedule, pnp_admm
from mpirecon_dernet.refine import objective, refine


@pytest.fixture(scope="module")
def tiny_dernet(small_sm, tmp_path_factory):
    """Weights of a DERnet trained for one short epoch on ``small_sm``."""
    from mpirecon_dernet.training import TrainConfig, train_dernet
    path = tmp_path_factory.mktemp("dernet") / "d.pt"
    train_dernet(small_sm, path, TrainConfig(samples=128, val_samples=32, epochs=1, batch_size=64, c5=16,
                                             max_minutes=None), progress=False)
    return path


@pytest.fixture(scope="module")
def case(small_sm):
    rng = np.random.default_rng(7)
    truth = rng.random((3, small_sm.num_voxels))
    b = truth @ small_sm.matrix.T
    b = b + 0.05 * np.abs(b).mean() * (rng.normal(size=b.shape) + 1j * rng.normal(size=b.shape))
    x0 = np.clip(truth + 0.3 * rng.normal(size=truth.shape), 0, None)  # an imperfect "network" image
    return operator_for(small_sm), b, x0


def _residual(op, b, x):
    return np.sum((op.forward(x.T) - op.data(b)) ** 2, axis=0)


def test_refinement_does_not_increase_its_objective(case):
    op, b, x0 = case
    for iters in (1, 5, 50):
        x = refine(op, b, x0, mu=0.1, iterations=iters)
        assert np.all(objective(op, b, x, x0, 0.1) <= objective(op, b, x0, x0, 0.1) * (1 + 1e-12))
        assert x.min() >= 0


def test_converged_refinement_fits_the_data_at_least_as_well(case):
    op, b, x0 = case
    x = refine(op, b, x0, mu=0.05, iterations=3000)
    assert np.all(_residual(op, b, x) <= _residual(op, b, x0))
    assert np.all(_residual(op, b, x) < 0.5 * _residual(op, b, x0))


def test_infinite_pull_returns_the_start(case):
    op, b, x0 = case
    np.testing.assert_allclose(refine(op, b, x0, mu=1e12, iterations=50), x0, atol=1e-8 * x0.max())
    np.testing.assert_array_equal(refine(op, b, x0, mu=np.inf, iterations=50), x0)


def test_dernet_refine_option(small_sm, tiny_dernet):
    path = tiny_dernet
    b = np.random.default_rng(0).random((2, small_sm.num_voxels)) @ small_sm.matrix.T
    plain = load_reconstructor("dernet", small_sm, weights=path, refine=False).reconstruct(b).images
    prox = dict(kind="proximal", error=None)  # the proximal refinement with a fixed pull
    far = load_reconstructor("dernet", small_sm, weights=path, refine=dict(prox, mu=1e12)).reconstruct(b).images
    np.testing.assert_allclose(far, plain, atol=1e-5 * plain.max())
    near = load_reconstructor("dernet", small_sm, weights=path,
                              refine=dict(prox, mu=1e-3, iterations=200)).reconstruct(b).images
    op = operator_for(small_sm)
    assert np.all(_residual(op, b, near.reshape(2, -1)) < _residual(op, b, plain.reshape(2, -1)))
    unbound = load_reconstructor("dernet", weights=path).reconstruct(b)  # weights alone: the plain network
    np.testing.assert_array_equal(unbound.images, plain_default := load_reconstructor(
        "dernet", small_sm, weights=path, refine=False).reconstruct(b).images)
    assert unbound.extra["refined"] is False
    default = load_reconstructor("dernet", small_sm, weights=path).reconstruct(b)  # refined by default when bound
    assert default.extra["refined"] is True and not np.array_equal(default.images, plain_default)


def test_noise_adaptive_pull_follows_the_noise(case):
    from mpirecon_dernet.refine import noise_adaptive_mu
    op, b, x0 = case
    mu1 = noise_adaptive_mu(op, b, x0, 0.1, 0.1)
    mu2 = noise_adaptive_mu(op, b, x0, 0.2, 0.1)
    np.testing.assert_allclose(mu2, 4 * mu1)  # the noisier the data, the stronger the pull
    np.testing.assert_allclose(noise_adaptive_mu(op, b, x0, 0.1, 0.2), mu1 / 4)
    assert mu1.shape == (3,)
    per_frame = noise_adaptive_mu(op, b, x0, np.array([[0.1], [0.2], [0.1]]) * np.ones((3, b.shape[1])), 0.1)
    np.testing.assert_allclose(per_frame, mu1 * [1, 4, 1])
    strong = refine(op, b, x0, mu=mu1 * 1e9, iterations=30)
    np.testing.assert_allclose(strong, x0, atol=1e-6 * x0.max())  # vector mu is applied per frame


def test_misfit_adaptive_pull_grows_with_model_error_only(small_sm):
    """With data the model explains (noise alone) the misfit-aware pull is the noise one (GCV's
    misfit estimate does not exceed the noise much); with data from another matrix (model error,
    same noise) it is stronger, and never weaker than the noise-only pull; ``exponent`` steepens it
    by the same misfit-to-noise ratio."""
    from mpirecon.preprocess.noise import estimate_noise
    from mpirecon_dernet.refine import misfit_adaptive_mu, noise_adaptive_mu
    rng = np.random.default_rng(3)
    m = small_sm.matrix
    op = operator_for(small_sm)
    assert m.shape[0] * 2 > m.shape[1]  # more data than unknowns: a misfit is measurable
    truth = rng.random((4, m.shape[1]))
    sigma = 1e-3 * np.abs(truth @ m.T).mean()
    noise = sigma * (rng.normal(size=(4, m.shape[0])) + 1j * rng.normal(size=(4, m.shape[0]))) / np.sqrt(2)
    est = estimate_noise(given=sigma, num_rows=m.shape[0])
    gains = 1 + 0.3 * (rng.normal(size=m.shape[0]) + 1j * rng.normal(size=m.shape[0]))  # another receive chain
    for clean, expected in ((truth @ m.T, (1.0, 1.5)), ((truth @ m.T) * gains, (5.0, np.inf))):
        b = clean + noise
        ratio = misfit_adaptive_mu(op, b, truth, est, 0.1) / noise_adaptive_mu(op, b, truth, sigma, 0.1)
        assert ratio.shape == (4,) and np.all(ratio >= 1 - 1e-9)
        assert np.all((ratio >= expected[0]) & (ratio <= expected[1])), ratio
        # the exponent multiplies the pull by (misfit / noise energy)^γ: here that is the same ratio
        steeper = misfit_adaptive_mu(op, b, truth, est, 0.1, exponent=1.5) / misfit_adaptive_mu(op, b, truth, est, 0.1)
        np.testing.assert_allclose(steeper, ratio ** 1.5, rtol=1e-9)


def test_dernet_default_pull_counts_the_misfit(small_sm, tiny_dernet):
    """DERnet's default proximal refinement uses the misfit-aware pull: on data from another receive
    chain it stays closer to the network image than the noise-only pull, and closer still with the
    misfit exponent; misfit=false restores the noise-only pull."""
    rng = np.random.default_rng(5)
    m = small_sm.matrix
    gains = 1 + 0.3 * (rng.normal(size=m.shape[0]) + 1j * rng.normal(size=m.shape[0]))
    b = (rng.random((3, m.shape[1])) @ m.T) * gains
    sigma = 1e-3 * np.abs(b).mean()
    net = load_reconstructor("dernet", small_sm, weights=tiny_dernet, refine=False).reconstruct(b).images
    default = load_reconstructor("dernet", small_sm, weights=tiny_dernet)
    assert default.parameters["refine"]["misfit"] is True
    assert default.parameters["refine"]["misfit_exponent"] == 1.0
    misfit_only = default.with_params(refine={"kind": "proximal", "misfit_exponent": 0})
    noise_only = default.with_params(refine={"kind": "proximal", "misfit": False})
    dist = {name: np.linalg.norm(r.reconstruct(b, noise=sigma).images - net)
            for name, r in (("default", default), ("misfit", misfit_only), ("noise", noise_only))}
    # converged minimisers (ρ 0.03; 1000 iterations give the same to 1e-4), ε 0.4: 2.64 (misfit) against 4.25
    # (noise only); with the exponent (the default) the data misfit is large here and the result ~ the network's
    assert dist["misfit"] < 0.7 * dist["noise"]
    assert dist["default"] < 0.5 * dist["misfit"]


def test_per_frame_tv_weights_act_frame_by_frame(case):
    op, b, x0 = case
    tv = np.array([1e-3, 3e-4, 3e-3])
    together = refine(op, b, x0, mu=0.1, iterations=40, tv=tv)
    for f in range(3):
        alone = refine(op, b[f:f + 1], x0[f:f + 1], mu=0.1, iterations=40, tv=float(tv[f]))
        np.testing.assert_allclose(together[f:f + 1], alone, rtol=1e-8, atol=1e-10 * x0.max())



def test_unconstrained_refinement_solves_the_normal_equations(case):
    from mpirecon_dernet.refine import unconstrained_refinement
    op, b, x0 = case
    bs, anchor, mu = op.data(b), x0.T, np.array([0.01, 0.1, 1.0])
    x = unconstrained_refinement(op, bs, anchor, mu)
    lhs = op.adjoint(op.forward(x)) + mu * x
    rhs = op.adjoint(bs) + mu * anchor
    np.testing.assert_allclose(lhs, rhs, atol=1e-8 * np.abs(rhs).max())
    # without x >= 0 the refinement is that minimiser, whatever the iteration count
    s = op.frame_scales(bs)
    np.testing.assert_allclose(refine(op, b, x0, mu=mu, iterations=3, nonneg=False),
                               (unconstrained_refinement(op, bs / s, anchor / s, mu) * s).T, rtol=1e-6,
                               atol=1e-9 * x0.max())


def test_dernet_refine_tv_auto_uses_admm_tv_mu_per_frame(small_sm, tiny_dernet):
    from mpirecon.optim.autoreg import admm_mu
    path = tiny_dernet
    rng = np.random.default_rng(1)
    b = rng.random((3, small_sm.num_voxels)) @ small_sm.matrix.T
    b[1] *= 5  # another scale: μ is per frame
    kw = dict(mu=0.1, error=None, iterations=40)
    plain = load_reconstructor("dernet", small_sm, weights=path, refine=False).reconstruct(b).images.reshape(3, -1)
    r = load_reconstructor("dernet", small_sm, weights=path, refine=dict(kw, tv="auto"))
    auto = r.reconstruct(b, noise=0.02 * np.abs(b).mean()).images.reshape(3, -1)
    op = operator_for(small_sm, "float64")
    tv = admm_mu(op, op.data(b), r.noise, "tv")
    assert tv.shape == (3,) and np.all(tv > 0)
    np.testing.assert_allclose(auto, refine(op, b, plain, mu=0.1, iterations=40, tv=tv), rtol=1e-6,
                               atol=1e-9 * plain.max())


def test_dernet_plug_and_play_refinement_is_the_core_iteration_warm_started_at_the_network_image(small_sm,
                                                                                                tiny_dernet):
    from mpirecon.models.denoiser import load_denoiser
    rng = np.random.default_rng(2)
    b = rng.random((3, small_sm.num_voxels)) @ small_sm.matrix.T
    noise = 0.02 * np.abs(b).mean()
    plain = load_reconstructor("dernet", small_sm, weights=tiny_dernet, refine=False).reconstruct(b).images
    plain = plain.reshape(3, -1)
    assert load_reconstructor("dernet", small_sm, weights=tiny_dernet).reconstruct(b).extra["refinement"] == "proximal"
    r = load_reconstructor("dernet", small_sm, weights=tiny_dernet, refine={"kind": "pnp", "iterations": 7})
    assert r.parameters["refine"] == {"kind": "pnp", "denoiser": "shipped", "rho": 0.1, "iterations": 7,
                                      "sigma_end": "auto", "sigma_factor": 1.4, "nonneg": True}  # recorded in full
    got = r.reconstruct(b, noise=noise)
    assert got.extra["refined"] is True and got.extra["refinement"] == "pnp"
    assert len(got.extra["sigma_end"]) == 3 and got.extra["denoiser"].endswith(".pth")
    host = operator_for(small_sm, "float64")
    op = operator_for(small_sm, "float32", "cpu", backend="torch")
    den = load_denoiser("shipped")
    want, _ = pnp_admm(op, host, b, den, r.config.refine, noise=r.noise, init=plain)
    np.testing.assert_allclose(got.images.reshape(3, -1), want, rtol=1e-5, atol=1e-6 * want.max())
    assert got.images.min() >= 0 and not np.allclose(want, plain)
    # the start matters: the same iteration from zero is another image
    cold, _ = pnp_admm(op, host, b, den, r.config.refine, noise=r.noise, init=np.zeros_like(plain))
    assert not np.allclose(cold, want, atol=1e-3 * want.max())
    # the proximal refinement through with_params is another image again
    prox = r.with_params(refine="proximal").reconstruct(b, noise=noise)
    assert prox.extra["refinement"] == "proximal" and not np.allclose(prox.images.reshape(3, -1), want)


def test_ppmpi_is_the_core_iteration_from_zero(small_sm):
    from mpirecon.models.denoiser import load_denoiser
    b = np.random.default_rng(4).random((2, small_sm.num_voxels)) @ small_sm.matrix.T
    pp = load_reconstructor("ppmpi", small_sm, iterations=6)
    got = pp.reconstruct(b, noise=0.01 * np.abs(b).mean())
    want, _ = pnp_admm(operator_for(small_sm, "float32", "cpu", backend="torch"), operator_for(small_sm), b,
                       load_denoiser("shipped"), pp.config.pnp, noise=pp.noise)
    np.testing.assert_allclose(got.images.reshape(2, -1), want, rtol=1e-6, atol=1e-7 * want.max())


def test_warm_start_keeps_the_final_noise_level(small_sm):
    host = operator_for(small_sm)
    b = host.data(np.random.default_rng(3).random((2, small_sm.num_voxels)) @ small_sm.matrix.T)
    fixed = PnPSettings(sigma_start=0.2, sigma_end=0.01, iterations=5)
    np.testing.assert_allclose(noise_schedule(fixed, host, b, None, warm=True), np.full((5, 2), 0.01))
    cold = noise_schedule(fixed, host, b, None)
    assert cold[0, 0] == pytest.approx(0.2) and cold[-1, 0] == pytest.approx(0.01)
    warm = noise_schedule(fixed.model_copy(update={"sigma_end": "auto"}), host, b, None, warm=True)
    assert warm.shape == (5, 2) and np.allclose(warm, warm[-1], rtol=1e-12, atol=0) and np.all(warm > 0)


@pytest.mark.parametrize("bad, found", [({"kind": "pnp", "rhoo": 1.0}, "rhoo"),
                                        ({"kind": "pnp", "iterations": 0}, "iterations"),
                                        ({"kind": "pnp", "mu": 0.1}, "mu"), ({"kind": "other"}, "other"),
                                        ("sometimes", "sometimes"), ({"sigma_start": 0.1}, "sigma_start")])
def test_dernet_refine_values_are_checked_up_front(bad, found, tiny_dernet):
    with pytest.raises(ReconstructorError, match=rf"refine.*{found}") as info:
        load_reconstructor("dernet", weights=tiny_dernet, refine=bad)
    assert "\n" not in str(info.value)



def test_proximal_refinement_runs_numpy_on_one_blas_thread(small_sm, tiny_dernet, monkeypatch):
    """After the network's torch pass the refinement's numpy work runs on one BLAS thread (two
    spinning thread pools on the same cores made a single frame 4x slower, mpirecon.threads); the
    caller's BLAS threads come back afterwards."""
    import threadpoolctl
    import mpirecon_dernet.refinement as refinement

    seen = []

    def spy(*args, **kwargs):
        seen.append({i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"})
        return refine(*args, **kwargs)

    monkeypatch.setattr(refinement, "refine", spy)
    b = np.random.default_rng(2).random((2, small_sm.num_voxels)) @ small_sm.matrix.T
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        load_reconstructor("dernet", small_sm, weights=tiny_dernet).reconstruct(b, noise=1e-3 * np.abs(b).mean())
        after = {i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"}
    assert seen == [{1}] and after == {2}
