import pickle

import numpy as np
import pytest
import torch

from mpirecon import ReconstructorError, load_reconstructor
from mpirecon.registry import get_reconstructor_class
from mpirecon.metrics import psnr
from mpirecon.simulation import phantoms
from mpirecon.models.denoiser import denoise, load_denoiser
from mpirecon_dernet.model import DERnet, DERnetHyperParams, predict
from mpirecon_dernet.training import TrainConfig, train_dernet
from mpirecon.learning.weights import load_weights

TINY = dict(samples=256, val_samples=64, epochs=2, batch_size=64, c5=32, max_minutes=None)


@pytest.mark.parametrize("grid", [(19, 19), (11, 11), (15, 21)])
def test_shapes_nonneg_and_scale_equivariance(grid):
    torch.manual_seed(0)
    net = DERnet(DERnetHyperParams(num_rows=50, grid=grid)).eval()
    b = torch.randn(3, 50, dtype=torch.complex64)
    with torch.no_grad():
        out = predict(net, b, kappa=2.0)
        out_k = predict(net, 5.0 * b, kappa=2.0)
    assert out.shape == (3, grid[1], grid[0])
    assert float(out.min()) >= 0
    torch.testing.assert_close(out_k, 5.0 * out, rtol=1e-4, atol=1e-6)


@pytest.fixture(scope="module")
def trained(small_sm, tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "dernet.pt"
    res = train_dernet(small_sm, path, TrainConfig(**TINY), progress=False)
    return path, res


def test_training_lowers_loss_and_weights_round_trip(trained, small_sm):
    path, res = trained
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]
    r1 = load_reconstructor("dernet", weights=path)
    r2 = load_reconstructor("dernet", small_sm, weights=path, refine=False)  # the network alone, as r1
    b = np.random.default_rng(0).random((4, small_sm.num_voxels)) @ small_sm.matrix.T
    np.testing.assert_array_equal(r1.reconstruct(b).images, r2.reconstruct(b).images)
    bad = b.copy()
    bad[0, 0] = np.nan
    for r in (r1, r2):  # with and without a bound system matrix
        with pytest.raises(ReconstructorError, match="NaN"):
            r.reconstruct(bad)
    _, meta = load_weights(path, "dernet")
    assert meta["system_matrix_fingerprint"] == small_sm.fingerprint()
    assert meta["selection"]["snr_threshold"] == 1.5 and len(meta["rows"]["channel"]) == small_sm.num_rows


def test_wrong_system_matrix_is_refused(trained, small_sm):
    path, _ = trained
    other = small_sm.take_rows(np.arange(small_sm.num_rows))
    other.matrix = other.matrix * 1.01
    with pytest.raises(ReconstructorError, match="belong to another calibration.*fingerprint.*mpirecon train --method dernet --sm"):
        load_reconstructor("dernet", other, weights=path)
    fewer = small_sm.take_rows(np.arange(small_sm.num_rows - 3))  # trained rows missing: same plain message
    with pytest.raises(ReconstructorError, match="belong to another calibration.*grid .*bandwidth"):
        load_reconstructor("dernet", fewer, weights=path)


def test_weights_accept_their_calibration_in_another_precision(trained, small_sm):
    """Read in complex64 (a tight memory budget) the trained calibration is still recognised: its
    signature, not the quantised fingerprint, identifies it; older weights without a signature
    are still checked by the fingerprint."""
    path, _ = trained
    narrow = small_sm.take_rows(np.arange(small_sm.num_rows))
    noise = np.random.default_rng(0).standard_normal(narrow.matrix.shape) * 1e-7 * np.abs(narrow.matrix).max()
    narrow.matrix = (narrow.matrix + noise).astype(np.complex64)  # rounding of another reader and precision
    assert narrow.fingerprint() != small_sm.fingerprint()
    load_reconstructor("dernet", narrow, weights=path)  # accepted
    r = load_reconstructor("dernet", weights=path)
    r.trained_signature = None  # weights written before signatures: the exact fingerprint decides
    with pytest.raises(ReconstructorError, match="belong to another calibration"):
        r.bind(narrow)


def test_malicious_and_corrupt_weights_are_refused(tmp_path, trained):
    class Exploit:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    evil = tmp_path / "evil.pt"
    torch.save({"format": "mpirecon-weights", "kind": "dernet", "x": Exploit()}, evil)
    with pytest.raises(ReconstructorError, match="evil.pt"):
        load_reconstructor("dernet", weights=evil)
    assert not (tmp_path / "pwned").exists()
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(ReconstructorError):
        load_reconstructor("dernet", weights=plain)
    assert not (tmp_path / "pwned").exists()
    blob = trained[0].read_bytes()
    (tmp_path / "trunc.pt").write_bytes(blob[: len(blob) // 3])
    with pytest.raises(ReconstructorError, match="trunc.pt"):
        load_reconstructor("dernet", weights=tmp_path / "trunc.pt")


def test_training_is_unit_free(small_sm, tmp_path):
    """Same matrix times 1e-6 and 1e6: same quality (the κ scale makes targets unit-free)."""
    scores = []
    for k in (1e-6, 1e6):
        sm = small_sm.take_rows(np.arange(small_sm.num_rows))
        sm.matrix = sm.matrix * k
        res = train_dernet(sm, tmp_path / f"w{k}.pt", TrainConfig(**TINY, seed=3), progress=False)
        scores.append(res.best_val_psnr)
    assert abs(scores[0] - scores[1]) < 0.5


def test_published_ppmpi_weights_load_strictly_and_denoise():
    den = load_denoiser("published")
    assert sum(p.numel() for p in den.net.parameters()) > 50000 and den.noise_std == 0.1
    rng = np.random.default_rng(0)
    clean = torch.from_numpy(phantoms.mixture(16, (32, 32), ["ellipses", "blobs", "vessels"], rng)).float()
    clean = clean / clean.flatten(1).amax(1)[:, None, None]
    noisy = clean + 0.1 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    out = denoise(den, noisy)
    assert psnr(out.numpy(), clean.numpy()).mean() > psnr(noisy.numpy(), clean.numpy()).mean() + 2


def test_ppmpi_identity_denoiser_is_least_squares_nonneg(small_sm):
    r = load_reconstructor("ppmpi", small_sm, rho=1.0, iterations=40, dtype="float64")
    r.denoiser.net = torch.nn.Identity()
    ref = load_reconstructor("admm_l1", small_sm, mu=0.0, rho=1.0, iterations=40)
    b = np.random.default_rng(1).random((3, small_sm.num_voxels)) @ small_sm.matrix.T
    np.testing.assert_allclose(r.reconstruct(b).images, ref.reconstruct(b).images, rtol=1e-6, atol=1e-9)


def test_ppmpi_batched_equals_per_frame(small_sm):
    r = load_reconstructor("ppmpi", small_sm, iterations=5, dtype="float64")
    b = np.random.default_rng(2).random((3, small_sm.num_voxels)) @ small_sm.matrix.T
    batch = r.reconstruct(b).images
    single = np.stack([r.reconstruct(b[i]).images[0] for i in range(3)])
    np.testing.assert_allclose(batch, single, rtol=1e-5, atol=1e-8 * batch.max())
    assert batch.min() >= 0


def test_tikhonov_start_makes_fc_channels_tikhonov_images(small_sm):
    """With the Tikhonov start, eq. (5)'s image channel k is κ/max|b| times the pinv
    reconstruction with λ_k (checked against the pinv baseline), before any training."""
    from mpirecon_dernet.initialisation import DEFAULT_LAMBDAS, tikhonov_start
    from mpirecon_dernet.model import normalise_signals

    nx, ny = small_sm.grid[:2]
    net = DERnet(DERnetHyperParams(num_rows=small_sm.num_rows, grid=(nx, ny))).eval()
    tikhonov_start(net, small_sm.matrix, kappa=3.0)
    b = np.random.default_rng(4).random((2, small_sm.num_voxels)) @ small_sm.matrix.T
    x, bmax = normalise_signals(torch.from_numpy(b.astype(np.complex64)))
    with torch.no_grad():
        i1 = net.fc(net.conv1d_2(torch.relu(net.conv1d_1(x))).flatten(1)).view(2, 4, ny, nx)
    for k, lam in enumerate(DEFAULT_LAMBDAS):
        ref = load_reconstructor("pinv", small_sm, lam=lam, nonneg=False).reconstruct(b).images
        got = i1[:, k].numpy() * bmax.numpy()[:, None, None] / 3.0
        np.testing.assert_allclose(got, ref, rtol=2e-3, atol=2e-3 * np.abs(ref).max())



def test_fixed_transform_keeps_the_tikhonov_start_and_trains_the_rest(small_sm, tmp_path):
    """``transform='fixed'``: after training, eq. (2)'s convolutions and eq. (4)'s FC layer are still
    the Tikhonov start (for the recorded κ) while the image networks moved; it needs init='tikhonov'."""
    from mpirecon_dernet.initialisation import tikhonov_start
    res = train_dernet(small_sm, tmp_path / "fixed.pt", TrainConfig(**TINY, transform="fixed", seed=2), progress=False)
    recon = load_reconstructor("dernet", weights=res.path)
    start = DERnet(recon.net.hp)
    tikhonov_start(start, small_sm.matrix, recon.kappa)
    for name in ("conv1d_1", "conv1d_2", "fc"):
        for p_start, p_trained in zip(getattr(start, name).parameters(), getattr(recon.net, name).parameters()):
            torch.testing.assert_close(p_trained, p_start)
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]  # the image networks learned
    with pytest.raises(ReconstructorError, match="init='tikhonov'"):  # refused before any data are made
        get_reconstructor_class("dernet").train_settings({"transform": "fixed", "init": "pytorch"})


def test_fused_inference_network_matches_trained_network():
    from mpirecon_dernet.model import fuse_for_inference

    torch.manual_seed(1)
    net = DERnet(DERnetHyperParams(num_rows=40, grid=(11, 9)))
    net.train()
    for _ in range(3):  # give the BatchNorm layers non-trivial running statistics
        net(torch.randn(16, 2, 40))
    net.eval()
    fused = fuse_for_inference(net)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())  # original untouched
    x = torch.randn(5, 2, 40)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), net(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("level", [0.0, 1.0])
def test_dernet_recipe_takes_the_operator_perturbation(small_sm, level):
    """DERnet and ADMM-Net build their pairs through the same recipe: ``operator_noise`` > 0 gives the
    calibration's own row noise to the pairs (and is recorded), 0 trains on the exact matrix."""
    from mpirecon.learning.data import calibration_row_noise
    data = TrainConfig(**TINY, operator_noise=level).pairs(small_sm)
    assert data.describe()["operator_noise"] == level
    if level:
        np.testing.assert_allclose(data.row_noise.numpy(),
                                   level * calibration_row_noise(small_sm.matrix, small_sm.snr), rtol=1e-6)
    else:
        assert data.row_noise is None
