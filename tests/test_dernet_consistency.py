"""DERnet's learned data-consistency stages (model.py)."""
import numpy as np
import torch

from mpirecon_dernet.model import DERnet, DERnetHyperParams, fuse_for_inference


def _net(stages: int, seed: int = 0, consistency: str = "gradient") -> DERnet:
    torch.manual_seed(seed)
    hp = DERnetHyperParams(num_rows=12, grid=(6, 5), consistency_stages=stages, consistency=consistency)
    net = DERnet(hp).eval()
    rng = np.random.default_rng(seed)
    net.set_operator(rng.standard_normal((12, 30)) + 1j * rng.standard_normal((12, 30)), 2.0)
    return net


@torch.no_grad()
def _pass_through(stage) -> None:
    """Set a stage's CNN Z_k to pass its second input g through (as +g and -g around the ReLUs)."""
    first, mid, last = stage.net[0], stage.net[2], stage.net[4]
    for conv in (first, mid, last):
        conv.weight.zero_()
        conv.bias.zero_()
    first.weight[0, 1, 1, 1], first.weight[1, 1, 1, 1] = 1.0, -1.0
    mid.weight[0, 0, 1, 1], mid.weight[1, 1, 1, 1] = 1.0, 1.0
    last.weight[0, 0, 1, 1], last.weight[0, 1, 1, 1] = 1.0, -1.0


def test_new_stages_start_as_the_identity():
    plain, staged = _net(0), _net(3)
    staged.load_state_dict(plain.state_dict(), strict=False)  # the same network before the stages
    u = torch.randn(4, 2, 12)
    assert torch.allclose(staged(u), plain(u), atol=1e-6)
    assert torch.allclose(fuse_for_inference(staged)(u), staged(u), atol=1e-5)


def test_a_gradient_stage_lowers_the_data_misfit():
    """With Z_k set to pass its gradient input through (as +g and -g around the ReLUs), each stage
    is a projected gradient step of step 1/L: the misfit ||Ã x - b̃|| never rises."""
    net = _net(4)
    for stage in net.stages:
        _pass_through(stage)
    x_true = torch.rand(1, 30)
    u = (x_true @ net.operator.T).view(1, 2, 12)
    misfits = []
    x = torch.zeros(1, 1, 5, 6)
    with torch.no_grad():
        for stage in net.stages:
            r = u.flatten(1) - x.flatten(1) @ net.operator.T
            misfits.append(float(r.norm()))
            x = stage(x, (net.step * (r @ net.operator)).view_as(x))
        misfits.append(float((u.flatten(1) - x.flatten(1) @ net.operator.T).norm()))
    assert all(b < a for a, b in zip(misfits, misfits[1:]))


def test_a_solve_stage_sees_the_exact_regularised_fit():
    """consistency="solve": with Z_k passing its second input through, a stage returns the minimiser
    z_k of ½||Ã z - b̃||² + ρ_k/2 ||z - x||² (projected onto x >= 0), from the cached eigen-decomposition."""
    net = _net(1, consistency="solve").double()
    _pass_through(net.stages[0])
    a = net.operator.double()
    b = torch.rand(1, 30, dtype=torch.float64) @ a.T
    x = torch.rand(1, 1, 5, 6, dtype=torch.float64)
    rho = float(torch.exp(net.log_rho[0]) * net.gram_values.double().mean())
    z = torch.linalg.solve(a.T @ a + rho * torch.eye(30, dtype=torch.float64), (b @ a + rho * x.flatten(1)).T).T
    with torch.no_grad():
        out = net._consistency(x, b)
    assert torch.allclose(out.flatten(1), z.clamp(min=0), atol=1e-4)


def test_weights_with_stages_load_back(tmp_path, small_sm):
    from mpirecon.registry import get_reconstructor_class, load_reconstructor

    out = tmp_path / "d.pt"
    get_reconstructor_class("dernet").train(small_sm, out, dict(samples=64, val_samples=16, epochs=1, batch_size=32,
                                                                c5=16, consistency_stages=2, physics_augmentation=0.5,
                                                                consistency="solve"),
                                            progress=False)
    recon = load_reconstructor("dernet", weights=out, refine=False)
    assert recon.hp.consistency_stages == 2 and recon.hp.consistency == "solve"
    b = small_sm.matrix @ np.random.default_rng(0).random(small_sm.matrix.shape[1])
    img = recon.reconstruct(b[None]).images
    assert img.shape == (1,) + tuple(small_sm.image_shape) and np.all(np.isfinite(img))
