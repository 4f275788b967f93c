"""Learned reconstruction on 3D grids: the 3D phantom prior, the 3D (volume) denoiser, the
slice-wise route, and the 3D unrolled networks' exact x-update."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from mpirecon.models.denoiser import LoadedDenoiser, RDNDenoiser, denoise, denoise_volume, inflate, load_denoiser
from mpirecon.simulation.phantoms import HOLDOUT_FAMILIES, TRAINING_FAMILIES, generate, mixture
from mpirecon.simulation.phantoms3d import FAMILIES_3D, HOLDOUT_FAMILIES_3D, TRAINING_FAMILIES_3D


@pytest.mark.parametrize("family", sorted(FAMILIES_3D))
def test_every_3d_family_gives_seeded_non_negative_volumes(family):
    a = generate(family, 6, (7, 8, 9), seed=3)
    assert a.shape == (6, 7, 8, 9) and a.min() >= 0 and 0.2 < a.max() <= 1.0 + 1e-9
    assert np.all(a.reshape(6, -1).max(axis=1) > 0)  # every volume holds particles
    np.testing.assert_array_equal(a, generate(family, 6, (7, 8, 9), seed=3))
    assert not np.array_equal(a, generate(family, 6, (7, 8, 9), seed=4))


def test_the_default_priors_stand_for_the_3d_families_on_a_3d_grid():
    _, train = mixture(40, (6, 6, 6), TRAINING_FAMILIES, 0, labels=True)
    _, held = mixture(40, (6, 6, 6), HOLDOUT_FAMILIES, 0, labels=True)
    assert set(train) <= set(TRAINING_FAMILIES_3D) and set(held) <= set(HOLDOUT_FAMILIES_3D)
    assert not set(TRAINING_FAMILIES_3D) & set(HOLDOUT_FAMILIES_3D)
    with pytest.raises(Exception, match="unknown"):
        mixture(2, (6, 6, 6), ("digits",), 0)  # a 2D family on a 3D grid
    with pytest.raises(Exception, match="unknown"):
        mixture(2, (6, 6), ("vessel_trees",), 0)


def _random_denoiser(dims: int, padding=None, seed: int = 0) -> LoadedDenoiser:
    torch.manual_seed(seed)
    net = RDNDenoiser(features=4, blocks=2, layers=2, growth=4, noise_input=True, dims=dims, padding=padding)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.2)
    return LoadedDenoiser(net=net.eval(), noise_std=0.01, source="random", metadata={}, noise_aware=True)


def test_3d_denoiser_shapes_and_its_noise_map():
    den = _random_denoiser(3)
    vol = torch.rand(3, 5, 6, 7)
    assert den.net(torch.rand(3, 2, 5, 6, 7)).shape == (3, 1, 5, 6, 7)
    low, high = denoise(den, vol, 0.01), denoise(den, vol, torch.tensor([0.3, 0.3, 0.3]))
    assert low.shape == vol.shape and low.min() >= 0
    assert not torch.allclose(low, high)  # the noise map is an input
    mixed = denoise(den, vol, torch.tensor([0.01, 0.3, 0.01]))
    torch.testing.assert_close(mixed[0], low[0]) and torch.testing.assert_close(mixed[1], high[1])
    torch.testing.assert_close(denoise(den, 4 * vol, 0.01), 4 * low, rtol=1e-5, atol=1e-5)  # scale equivariant
    with pytest.raises(ValueError, match="3D denoiser"):
        denoise(den, vol[:, 0], 0.01)


def test_slice_wise_and_3d_denoiser_agree_on_a_volume_constant_along_z():
    den2 = _random_denoiser(2, padding="replicate")
    den3 = inflate(den2)
    assert den3.dims == 3 and den3.net.arch["padding"] == "replicate"
    images = torch.rand(2, 9, 11)
    volume = images[:, None].expand(2, 6, 9, 11).contiguous()
    slice_wise = denoise(den2, images, torch.tensor([0.05, 0.2]))
    torch.testing.assert_close(denoise(den3, volume, torch.tensor([0.05, 0.2])),
                               slice_wise[:, None].expand_as(volume), rtol=1e-5, atol=1e-6)
    # the z-slices of the slice-wise route over the three axes see the same constant volume
    assert denoise_volume(den2, volume, 0.05).std(dim=1).max() < 1e-5


def test_a_3d_denoiser_refuses_2d_images_in_ppmpi(tmp_path, small_sm):
    from mpirecon.learning.weights import save_weights
    from mpirecon.registry import get_reconstructor_class
    den = _random_denoiser(3)
    save_weights(tmp_path / "d3.pt", "ppmpi-denoiser", den.net.state_dict(),
                 {"architecture": den.net.arch, "noise_std": 0.01})
    assert load_denoiser(tmp_path / "d3.pt").dims == 3
    with pytest.raises(Exception, match="3D denoiser"):
        get_reconstructor_class("ppmpi")(small_sm, weights=tmp_path / "d3.pt")


def test_3d_unrolled_x_update_equals_the_dense_solve():
    from mdf_io import RowIndex, SystemMatrix
    from mpirecon.learning.unrolled import factors_for
    rng = np.random.default_rng(0)
    grid = (3, 4, 2)  # Nx, Ny, Nz: P = 24
    p, r = int(np.prod(grid)), 9  # 2R = 18 < P: the normal matrix is singular, ρ makes it regular
    a = rng.normal(size=(r, p)) + 1j * rng.normal(size=(r, p))
    rows = RowIndex(np.zeros(r, np.int64), np.zeros(r, np.int64), np.arange(1, r + 1))
    sm = SystemMatrix(matrix=a, rows=rows, frequencies=np.arange(1.0, r + 1), snr=np.full(r, 10.0), grid=grid,
                      fov=np.ones(3), center=np.zeros(3), bandwidth=1e6, num_sampling_points=2 * r + 2)
    assert sm.image_shape == (2, 4, 3)
    f = factors_for(sm, "float64", "cpu")
    stacked = f.A.numpy()
    y = rng.normal(size=(5, p))
    for rho in (0.05, 1.0, 7.0):
        dense = np.linalg.solve(stacked.T @ stacked + rho * np.eye(p), y.T).T
        got = f.solve(torch.as_tensor(y), torch.tensor(rho, dtype=torch.float64)).numpy()
        np.testing.assert_allclose(got, dense, rtol=1e-9, atol=1e-10)


def test_3d_admm_net_and_deq_mpi_carry_3d_convolutions():
    from baselines.learned.admm_net_model import ADMMNet, ADMMNetHyperParams
    from baselines.learned.deq_mpi_model import DEQMPI, DEQHyperParams
    net = ADMMNet(ADMMNetHyperParams(image_shape=(2, 4, 3), stages=2, channels=4))
    assert isinstance(net.cnns[0][0], torch.nn.Conv3d)
    v = torch.rand(5, 24)
    assert net.learned_prox(v, 0).shape == (5, 24)
    deq = DEQMPI(DEQHyperParams(image_shape=(2, 4, 3)))
    assert isinstance(deq.prior[0], torch.nn.Conv3d)


def test_compressed_factors_at_full_rank_give_the_exact_networks_images(small_sm, monkeypatch):
    """A calibration too large to hold its stacked operator trains and runs the unrolled networks on
    its dominant row space; at full rank that is the exact x-update."""
    from baselines.learned.admm_net_model import ADMMNet, ADMMNetHyperParams, predict
    from mpirecon.learning import unrolled
    sm = small_sm.take_rows(np.arange(40))  # 2R = 80 <= DEFAULT_RANK: full rank
    exact = unrolled.factors_for(sm, "float64", "cpu")
    monkeypatch.setattr(unrolled, "factors_strategy", lambda rows, voxels: "compressed")
    sm2 = sm.take_rows(np.arange(40))  # a new matrix: its own (empty) operator cache
    compressed = unrolled.factors_for(sm2, "float64", "cpu")
    assert compressed.basis is not None and compressed.A.shape[0] <= 80 and exact.basis is None
    torch.manual_seed(0)
    net = ADMMNet(ADMMNetHyperParams(image_shape=sm.image_shape, stages=3, channels=4)).double()
    with torch.no_grad():
        for cnn in net.cnns:
            cnn[-1].weight.normal_(0, 0.1)
    phantoms = np.random.default_rng(1).random((4, sm.num_voxels))
    spectra = torch.as_tensor(phantoms @ sm.matrix.T)
    with torch.no_grad():
        a, b = predict(net, spectra, exact), predict(net, spectra, compressed)
    assert float(a.abs().max()) > 0
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-8 * float(a.abs().max()))


def test_the_per_sample_operator_perturbation_has_the_shared_ones_statistics(monkeypatch):
    """Large calibrations draw E c per sample: per row the same variance σ_r² ||c||² as one E."""
    from mpirecon.learning import data
    rng = np.random.default_rng(0)
    m, p = 6, 20
    pairs = data.SimulatedPairs.__new__(data.SimulatedPairs)
    pairs.matrix = np.zeros((m, p), complex)
    pairs.recipe = data.PairsRecipe(1, 1, 20, 40, ("blobs",), 0, False, 1.0, 0.0)
    pairs.row_noise = torch.linspace(0.5, 2.0, m)
    images = torch.as_tensor(rng.random((4000, 4, 5)), dtype=torch.float32)
    expected = pairs.row_noise[None] ** 2 * images.reshape(4000, -1).pow(2).sum(1, keepdim=True)
    expected = expected + (data.BACKGROUND_OFFSET * pairs.row_noise[None]) ** 2 * images.reshape(4000, -1).sum(1, keepdim=True) ** 2
    for limit in (10 ** 9, 0):  # shared E per batch (of 1), then per sample
        monkeypatch.setattr(data, "SHARED_PERTURBATION_ENTRIES", limit)
        g = torch.Generator().manual_seed(1)
        draws = torch.cat([pairs.perturbed(torch.zeros(1, m, dtype=torch.complex64), images[i:i + 1], g)
                           for i in range(4000)])
        ratio = (draws.abs() ** 2 / expected).mean(0)
        assert torch.all((ratio > 0.9) & (ratio < 1.1)), (limit, ratio)


def test_normalised_admm_net_priors_are_scale_equivariant_and_keep_learning():
    """3D recipes normalise each prior's input by the frame's max |v|: a prior then gives the same
    correction at any intensity, and its ReLUs cannot all die from a bias step (they did in 3D)."""
    from baselines.learned.admm_net_model import ADMMNet, ADMMNetHyperParams
    torch.manual_seed(0)
    net = ADMMNet(ADMMNetHyperParams(image_shape=(3, 4, 5), stages=1, channels=4, normalise=True))
    with torch.no_grad():
        net.cnns[0][-1].weight.normal_(0, 0.3)
    v = torch.rand(2, 60)
    torch.testing.assert_close(net.learned_prox(1e-4 * v, 0), 1e-4 * net.learned_prox(v, 0), rtol=1e-4, atol=1e-9)
    with torch.no_grad():  # a learned bias step of -0.05 and nothing else
        net.cnns[0][-1].weight.zero_()
        net.cnns[0][-1].bias.fill_(-0.05)
    assert (net.learned_prox(1e-4 * v, 0) > 0).any()  # a faint frame keeps its bright voxels
    plain = ADMMNet(ADMMNetHyperParams(image_shape=(3, 4, 5), stages=1, channels=4))
    plain.load_state_dict(net.state_dict())
    assert not (plain.learned_prox(1e-4 * v, 0) > 0).any()  # what happened without it


def test_the_realistic_bench_protocol_on_a_3d_calibration(tmp_path):
    """3D phantoms of the hold-out families, measured as a scanner's MDF file and read back, each
    family reported, and a figure of maximum intensity projections."""
    import json

    from mpirecon.bench.runner import BenchConfig, run_bench
    from mpirecon.cli.main import main
    assert main(["simulate", "system-matrix", "--grid", "5", "4", "3", "--frequencies", "60",
                 "-o", str(tmp_path / "sm.mdf")]) == 0
    cfg = BenchConfig(methods=["kaczmarz", "ppmpi"], snr_levels=[30.0], test_samples=6, val_samples=2,
                      protocols=["realistic"], params={"ppmpi": {"iterations": 2}})
    out = run_bench(cfg, system_matrix_path=tmp_path / "sm.mdf", output=tmp_path / "b", progress=False)
    results = json.loads((out / "results.json").read_text())
    assert results["grid"] == [5, 4, 3]
    entry = results["protocols"]["realistic"]["30"]["kaczmarz"]
    assert set(entry["psnr_by_family"]) <= set(HOLDOUT_FAMILIES_3D) and np.isfinite(entry["ssim"]["mean"])
    assert (out / "examples_realistic.png").is_file()
    assert np.load(out / "examples" / "realistic_kaczmarz.npy").shape[1:] == (3, 4, 5)


def test_the_dip_generator_and_its_tv_work_on_volumes():
    """DIP in 3D: a 3x3x3 generator gives non-negative volumes of the grid's size, seeded and the
    same for every frame; the 3D total variation counts steps along every axis, in 2D as before."""
    from baselines.learned.dip import _total_variation
    from baselines.learned.dip_generator import GeneratorBatch

    net = GeneratorBatch((5, 4, 6), channels=4, depth=1)
    assert net.size == sum(co * ci * k ** 3 + co for co, ci, k in net.layers.values())
    theta, z = net.initial(2, seed=3, device="cpu", dtype=torch.float64)
    assert z.shape == (2, 4, 5, 4, 6)
    out = net.forward(theta, z)
    assert out.shape == (2, 120) and float(out.min()) >= 0
    torch.testing.assert_close(out[0], out[1])
    vol = torch.zeros(1, 5, 4, 6, dtype=torch.float64)
    assert float(_total_variation(vol.reshape(1, -1), (5, 4, 6))) < 120 * 1.01e-6  # the smoothing epsilon
    vol[:, 2:] = 1.0  # a unit step along z over a 4 x 6 plane
    assert float(_total_variation(vol.reshape(1, -1), (5, 4, 6))) == pytest.approx(24.0, rel=1e-5)
    img = torch.zeros(1, 3, 4, dtype=torch.float64)
    img[:, :, 2:] = 1.0  # a step along x over 3 rows, in 2D
    assert float(_total_variation(img.reshape(1, -1), (3, 4))) == pytest.approx(3.0, rel=1e-5)
    import torch.nn.functional as F
    x = torch.rand(2, 35, generator=torch.Generator().manual_seed(0), requires_grad=True)  # float32, 7 x 5

    def tv_2d(v):  # the 2D formula before 3D (DIP's 2D fits must keep their float32 rounding)
        img = v.reshape(2, 7, 5)
        dy = F.pad(img[:, 1:] - img[:, :-1], (0, 0, 0, 1))
        dx = F.pad(img[:, :, 1:] - img[:, :, :-1], (0, 1))
        return torch.sqrt(dx ** 2 + dy ** 2 + 1e-12).sum(dim=(1, 2))
    g_old, = torch.autograd.grad(tv_2d(x).sum(), x)
    g_new, = torch.autograd.grad(_total_variation(x, (7, 5)).sum(), x)
    assert torch.equal(g_old, g_new)
