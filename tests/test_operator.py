"""The shared operator object, the list of terms and the single reconstruct path."""
import numpy as np
import pytest

from mdf_io import Measurement, SystemMatrix
from mpirecon import ReconstructorError, load_reconstructor
from mpirecon.optim.admm import admm
from mpirecon.physics.xupdate import DenseXUpdate
from mpirecon.preprocess.noise import NoiseEstimate, estimate_noise, from_background
from mpirecon.physics.operator import operator_for
from mpirecon.optim.priors import L1, NonNegative, TotalVariation, gradient_operator
from mpirecon.reconstructor import check_device


def torch_cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(4)
    m = rng.normal(size=(30, 20)) + 1j * rng.normal(size=(30, 20))
    sm = SystemMatrix.from_arrays(m, grid=(5, 4))
    c = rng.random((3, 20))
    return sm, c, c @ m.T


def test_one_operator_per_matrix_dtype_device(problem):
    sm, _, _ = problem
    a = load_reconstructor("admm_tv", sm, rho=0.5)
    b = load_reconstructor("admm_l1tv", sm, rho=0.5)
    assert a.operator is b.operator is operator_for(sm)
    assert a.op.x_update(0.5, ("gradient",)) is b.op.x_update(0.5, ("gradient",))
    assert operator_for(sm, "float32") is not operator_for(sm)
    assert sm.take_rows(np.arange(10)).cache == {}  # a new matrix starts with an empty cache


def test_operator_is_the_scaled_stacked_matrix(problem):
    sm, c, b = problem
    op = operator_for(sm)
    y = op.data(b)
    np.testing.assert_allclose(op.forward(c.T), y, atol=1e-10)
    rng = np.random.default_rng(0)
    x, r = rng.normal(size=(20, 2)), rng.normal(size=(60, 2))
    np.testing.assert_allclose(np.sum(op.forward(x) * r), np.sum(x * op.adjoint(r)))  # adjointness
    np.testing.assert_allclose(op.normal_matrix(), op.A.T @ op.A)
    assert op.svd() is op.svd()


def test_x_update_solves_its_system(problem):
    sm, _, _ = problem
    op = operator_for(sm)
    xu = op.x_update(0.3, ("gradient",))
    d = gradient_operator(sm.image_shape).toarray()
    m = op.A.T @ op.A + 0.3 * (np.eye(20) + d.T @ d)
    rhs = np.random.default_rng(1).normal(size=(20, 4))
    np.testing.assert_allclose(m @ xu.solve(rhs), rhs, atol=1e-9)
    assert isinstance(xu, DenseXUpdate)


def test_with_params_reuses_the_set_up_and_matches_a_fresh_instance(problem):
    sm, _, b = problem
    base = load_reconstructor("admm_l1tv", sm)
    tuned = base.with_params(mu=1e-3, alpha_tv=0.5)
    fresh = load_reconstructor("admm_l1tv", sm, mu=1e-3, alpha_tv=0.5)
    assert tuned.operator is base.operator and tuned.parameters == fresh.parameters
    np.testing.assert_array_equal(tuned.reconstruct(b).images, fresh.reconstruct(b).images)
    assert base.parameters["mu"] != 1e-3  # the original is unchanged
    with pytest.raises(ReconstructorError, match="mu"):
        base.with_params(mu=-1)


def test_nonneg_is_one_term_with_one_meaning(problem):
    """x >= 0 holds for every classical method's output when the constraint is on."""
    sm, _, b = problem
    noisy = b + 2.0 * np.random.default_rng(3).normal(size=b.shape)
    weak = {"admm_l1": {"mu": 1e-3, "rho": 1.0}}  # the automatic L1 weight alone can already zero every negative
    for name in ("pinv", "kaczmarz", "cgnr", "admm_l1", "admm_tv", "admm_l1tv"):
        assert load_reconstructor(name, sm).reconstruct(noisy).images.min() >= 0
        assert load_reconstructor(name, sm, **weak.get(name, {})).reconstruct(noisy).images.min() >= 0
        free = load_reconstructor(name, sm, nonneg=False, **weak.get(name, {})).reconstruct(noisy).images
        assert free.min() < 0, name  # the constraint is what keeps them non-negative


def test_admm_engine_numpy_and_torch_agree(problem):
    torch = pytest.importorskip("torch")
    sm, _, b = problem
    terms = [NonNegative(), L1(1e-3), TotalVariation(1e-3, ndim=2)]
    ref_op = operator_for(sm)
    ref = admm(ref_op, ref_op.data(b), terms, 0.5, 50)
    top = operator_for(sm, "float64", "cpu", backend="torch")
    got = admm(top, top.data(b), terms, 0.5, 50)
    assert isinstance(got, torch.Tensor)
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="at most one identity"):
        admm(ref_op, ref_op.data(b), [L1(1.0), L1(2.0)], 0.5, 1)


def test_noise_estimate_from_background_and_given(problem):
    sm, _, b = problem
    rng = np.random.default_rng(5)
    bg = 0.2 * (rng.normal(size=(4000, 30)) + 1j * rng.normal(size=(4000, 30)))
    est = from_background(bg, subtracted=False)
    np.testing.assert_allclose(est.sigma, 0.2 * np.sqrt(2), rtol=0.05)
    meas = Measurement.from_arrays(b, background=bg)
    meas.background_subtracted = True
    assert estimate_noise(meas, sm).source == "measurement background frames"
    assert estimate_noise(None, sm, given=0.1, num_rows=30).expected_residual() == pytest.approx(0.3)
    r = load_reconstructor("pinv", sm)
    res = r.reconstruct(meas)
    assert isinstance(res.noise, NoiseEstimate) and r.noise is res.noise
    assert "noise" in res.to_reconstruction().parameters


def test_device_is_checked_for_every_method(problem):
    sm, _, _ = problem
    with pytest.raises(ReconstructorError, match="CPU only"):
        check_device("kaczmarz", "cuda", supports_gpu=False)
    for name in ("pinv", "kaczmarz", "cgnr", "admm_l1", "admm_tv", "admm_l1tv"):  # all have a torch path
        assert load_reconstructor(name).capabilities.supports_gpu
    if not torch_cuda_available():
        with pytest.raises(ReconstructorError, match="no CUDA device"):
            load_reconstructor("kaczmarz", sm, device="cuda")
    with pytest.raises(ReconstructorError, match="expected 'cpu'"):
        load_reconstructor("pinv", sm, device="gpu")
