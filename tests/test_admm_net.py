"""ADMM-Net: the unrolled stages are the ADMM engine's iterations, training and the CLI path."""
import json

import numpy as np
import pytest
import torch

import mdf_io
from baselines.learned.admm_net_model import ADMMNet, ADMMNetHyperParams
from mpirecon.learning.unrolled import Factors
from baselines.learned.admm_net_training import ADMMNetTrainConfig, train_admm_net
from mpirecon import ReconstructorError, load_reconstructor
from mpirecon.optim.admm import admm
from mpirecon.cli.main import main
from mpirecon.physics.operator import operator_for
from mpirecon.optim.priors import L1, NonNegative

TINY = dict(samples=128, val_samples=32, epochs=2, batch_size=32, stages=3, channels=4, max_minutes=None)


@pytest.fixture(scope="module")
def problem(small_sm):
    op = operator_for(small_sm, "float64")
    x = np.random.default_rng(1).random((small_sm.num_voxels, 3))
    b = op.data((small_sm.matrix @ x).T)  # (2R, F)
    return op, b / op.frame_scales(b)


@pytest.mark.parametrize("terms", [[NonNegative()], [NonNegative(), L1(0.05)], []], ids=["nonneg", "l1", "identity"])
def test_stages_with_a_terms_prox_equal_the_admm_engine(small_sm, problem, terms):
    op, b = problem
    rho, stages = 0.3, 7
    net = ADMMNet(ADMMNetHyperParams(image_shape=small_sm.image_shape, stages=stages, rho0=rho)).double()
    factors = Factors.from_operator(op, torch.float64)
    nonneg = any(isinstance(t, NonNegative) for t in terms)
    prior = next((t for t in terms if not isinstance(t, NonNegative)), None)

    def prox(v, k, r):  # the engine's identity-splitting step
        if prior is not None:
            return prior.prox(v, float(r), nonneg)
        return v.clamp_min(0) if nonneg else v

    with torch.no_grad():
        z = net(torch.as_tensor(b.T), factors, prox=prox).numpy().T
    np.testing.assert_allclose(z, admm(op, b, terms, rho, stages, strategy="dense"), rtol=1e-7, atol=1e-9)


def test_untrained_network_is_nonnegative_least_squares_admm(small_sm, problem):
    op, b = problem
    net = ADMMNet(ADMMNetHyperParams(image_shape=small_sm.image_shape, stages=5, rho0=0.2)).double()
    with torch.no_grad():  # zero-initialised last layers: the learned prox starts as x >= 0
        z = net(torch.as_tensor(b.T), Factors.from_operator(op, torch.float64)).numpy().T
    np.testing.assert_allclose(z, admm(op, b, [NonNegative()], 0.2, 5, strategy="dense"), rtol=1e-7, atol=1e-9)


def test_a_penalty_in_the_operator_unit_is_the_engines_relative_rho(small_sm):
    """With ``rho_in_unit`` (new weights) ρ0 means what the ADMM solvers' ρ means: times the
    operator's unit, which exceeds 1 when voxels outnumber the stacked rows (3D calibrations)."""
    few = small_sm.take_rows(np.arange(20))  # 2R = 40 < P = 80
    op = operator_for(few, "float64")
    assert op.unit == pytest.approx(2.0)
    b = op.data((few.matrix @ np.random.default_rng(2).random((few.num_voxels, 2))).T)
    b = b / op.frame_scales(b)
    hp = ADMMNetHyperParams(image_shape=few.image_shape, stages=4, rho0=0.3, rho_in_unit=True)
    with torch.no_grad():
        z = ADMMNet(hp).double()(torch.as_tensor(b.T), Factors.from_operator(op, torch.float64)).numpy().T
    np.testing.assert_allclose(z, admm(op, b, [NonNegative()], 0.3 * op.unit, 4, strategy="dense"),
                               rtol=1e-7, atol=1e-9)
    cfg = ADMMNetTrainConfig()
    assert cfg.initial_rho((19, 19)) == 0.1 and cfg.initial_rho((19, 19, 19)) == 1.0


def test_x_update_through_the_eigendecomposition_is_differentiable_in_rho(small_sm):
    op = operator_for(small_sm, "float64")
    f = Factors.from_operator(op, torch.float64)
    y = torch.randn(2, small_sm.num_voxels, dtype=torch.float64)
    rho = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    x = f.solve(y, rho)
    normal = op.normal_matrix() + 0.7 * np.eye(small_sm.num_voxels)
    np.testing.assert_allclose(x.detach().numpy(), np.linalg.solve(normal, y.numpy().T).T, rtol=1e-8, atol=1e-10)
    x.sum().backward()  # d/dρ (AᵀA+ρI)⁻¹y = -(AᵀA+ρI)⁻² y
    expected = -np.linalg.solve(normal, np.linalg.solve(normal, y.numpy().T)).sum()
    assert float(rho.grad) == pytest.approx(expected, rel=1e-7)


@pytest.fixture(scope="module")
def trained(small_sm, tmp_path_factory):
    path = tmp_path_factory.mktemp("an") / "admm_net.pt"
    return path, train_admm_net(small_sm, path, ADMMNetTrainConfig(**TINY), progress=False)


def test_training_lowers_loss_records_the_calibration_and_refuses_another(trained, small_sm):
    path, res = trained
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]
    r = load_reconstructor("admm_net", small_sm, weights=path)
    b = np.random.default_rng(0).random((4, small_sm.num_voxels)) @ small_sm.matrix.T
    out = r.reconstruct(b)
    assert out.images.shape == (4,) + small_sm.image_shape and out.images.min() >= 0
    np.testing.assert_allclose(r.reconstruct(3 * b).images, 3 * out.images, rtol=1e-3, atol=1e-5)  # scale-equivariant (float32)
    other = small_sm.take_rows(np.arange(small_sm.num_rows))
    other.matrix = other.matrix * 1.01
    with pytest.raises(ReconstructorError, match="belong to another calibration.*--method admm_net"):
        load_reconstructor("admm_net", other, weights=path)
    with pytest.raises(ReconstructorError, match="needs weights"):
        load_reconstructor("admm_net", small_sm)


def test_train_and_run_through_the_cli(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["simulate", "system-matrix", "-o", "sm.mdf", "--grid", "10", "8"]) == 0
    assert main(["simulate", "measurement", "--sm", "sm.mdf", "--phantom", "shape", "--snr", "30",
                 "--frames", "2", "-o", "meas.mdf"]) == 0
    settings = [f"--set={k}={v}" for k, v in TINY.items() if k not in ("samples", "val_samples", "epochs")]
    assert main(["train", "--method", "admm_net", "--sm", "sm.mdf", "-o", "w.pt", "--samples", "64",
                 "--val-samples", "16", "--epochs", "1", "--quiet", *settings]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["best_epoch"] == 1
    assert main(["methods"]) == 0 and "admm_net" in capsys.readouterr().out
    assert main(["run", "meas.mdf", "--sm", "sm.mdf", "--method", "admm_net", "--weights", "w.pt", "-o", "r.mdf"]) == 0
    rec = mdf_io.read_reconstruction("r.mdf")
    assert rec.method == "admm_net" and rec.images.shape[0] == 2 and np.all(np.isfinite(rec.images))


def test_operator_perturbation_has_the_calibrations_row_noise(small_sm):
    from mpirecon.learning.data import PairsRecipe, SimulatedPairs, calibration_row_noise

    sigma = calibration_row_noise(small_sm.matrix, small_sm.snr)
    assert sigma.shape == (small_sm.num_rows,) and np.all(sigma >= 0) and np.any(sigma > 0)
    recipe = PairsRecipe(64, 8, 200.0, 200.0, seed=3, operator_noise=2.0)  # 200 dB: no additive noise
    data = SimulatedPairs(small_sm.matrix, small_sm.image_shape, recipe, row_noise=sigma)
    ones = torch.ones((2,) + small_sm.image_shape)  # Σc = P: E c + δ P has variance σ_r² (P + (0.3 P)²)
    extra = data.perturbed(torch.zeros(2, small_sm.num_rows, dtype=torch.complex64), ones,
                           torch.Generator().manual_seed(0))
    p = small_sm.num_voxels
    from mpirecon.learning.data import BACKGROUND_OFFSET
    expected = 2.0 * sigma * np.sqrt(p + (BACKGROUND_OFFSET * p) ** 2)
    ok = expected > 0
    ratio = (extra[0].abs().numpy()[ok] / expected[ok]) ** 2  # one draw per batch: average over the rows
    assert np.mean(ratio) == pytest.approx(1.0, abs=0.15)
    torch.testing.assert_close(extra[0], extra[1])  # one perturbation for the whole batch
    with pytest.raises(ValueError, match="row_noise"):
        SimulatedPairs(small_sm.matrix, small_sm.image_shape, recipe)
