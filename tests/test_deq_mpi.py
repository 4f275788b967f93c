"""DEQ-MPI: fixed point, Jacobian-free training step, plugin round trip."""
import numpy as np
import pytest
import torch

from baselines.learned.deq_mpi_model import DEQMPI, DEQHyperParams
from mpirecon.learning.unrolled import Factors
from mpirecon.physics.operator import operator_for
from mpirecon.registry import get_reconstructor_class, load_reconstructor


def _problem(small_sm):
    op = operator_for(small_sm, "float64")
    f = Factors.from_operator(op, torch.float64)
    x = np.random.default_rng(0).random(small_sm.matrix.shape[1])
    b = f.data(torch.as_tensor((small_sm.matrix @ x)[None]))
    return f, b / (b @ f.A).abs().max()


def test_fixed_point_residual_falls_below_the_tolerance(small_sm):
    f, b = _problem(small_sm)
    torch.manual_seed(0)
    net = DEQMPI(DEQHyperParams(image_shape=tuple(small_sm.image_shape), tolerance=1e-6, max_iterations=3000))
    net = net.to(torch.float64)
    with torch.no_grad():  # give the prior a small non-zero (contractive) correction
        net.prior[-1].weight.normal_(0, 1e-3)
        z = net(b, f)
    assert net.last_change < 1e-6 and net.last_iterations < 3000
    z2, _ = net.step(z, torch.zeros_like(z), b, f)  # u* is not returned: check z through T's z-part
    with torch.no_grad():
        zs, us = torch.zeros_like(z), torch.zeros_like(z)
        for _ in range(net.last_iterations):
            zs, us = net.step(zs, us, b, f)
        z_next, _ = net.step(zs, us, b, f)
    assert torch.linalg.norm(z_next - zs) <= 1e-5 * torch.linalg.norm(zs)
    assert torch.allclose(zs, z)


def test_gradients_flow_through_the_last_iteration_only(small_sm):
    f, b = _problem(small_sm)
    net = DEQMPI(DEQHyperParams(image_shape=tuple(small_sm.image_shape), max_iterations=5)).to(torch.float64)
    z = net(b, f)
    assert z.requires_grad
    z.sum().backward()
    assert net.prior[-1].weight.grad is not None and net.consistency[-1].weight.grad is not None
    with torch.no_grad():
        assert not net(b, f).requires_grad


def test_deq_mpi_trains_loads_and_reconstructs(small_sm, tmp_path):
    out = tmp_path / "deq.pt"
    summary = get_reconstructor_class("deq_mpi").train(
        small_sm, out, dict(samples=64, val_samples=16, epochs=1, batch_size=32, channels=8, max_iterations=5),
        progress=False)
    assert np.isfinite(summary["best_val_loss"])
    recon = load_reconstructor("deq_mpi", small_sm, weights=out, max_iterations=8)
    b = small_sm.matrix @ np.random.default_rng(1).random(small_sm.matrix.shape[1])
    res = recon.reconstruct(np.stack([b, 2 * b]))
    assert res.images.shape == (2,) + tuple(small_sm.image_shape) and np.all(res.images >= 0)
    assert np.allclose(res.images[1], 2 * res.images[0], rtol=1e-3, atol=1e-6 * res.images.max())  # scale-free
    assert 1 <= res.extra["iterations"] <= 8
    with pytest.raises(Exception, match="deq_mpi|DEQ-MPI|weights"):
        load_reconstructor("deq_mpi", small_sm)  # needs its weights
