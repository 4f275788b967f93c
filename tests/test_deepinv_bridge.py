"""deepinv bridge (mpirecon.physics.deepinv_physics): runs where the optional extra mpirecon[deepinv] works."""
import sys

import numpy as np
import pytest

from mpirecon.physics.deepinv_physics import MPIPhysics, _physics_class
from mpirecon.reconstructor import ReconstructorError


def _deepinv_or_skip():
    try:
        import deepinv
    except Exception as exc:  # a torchvision built for another torch fails with RuntimeError, not ImportError
        pytest.skip(f"deepinv not importable ({type(exc).__name__}); install the extra mpirecon[deepinv] "
                    "with a torchvision built for this torch")
    return deepinv


@pytest.fixture(scope="module")
def physics(small_sm):
    _deepinv_or_skip()
    return MPIPhysics(small_sm, dtype="float64", rcond=1e-8)


def test_without_deepinv_one_line_error(small_sm, monkeypatch):
    _physics_class.cache_clear()
    monkeypatch.setitem(sys.modules, "deepinv", None)  # import deepinv -> ImportError
    with pytest.raises(ReconstructorError, match=r"pip install mpirecon\[deepinv\]") as err:
        MPIPhysics(small_sm)
    assert "\n" not in str(err.value)
    _physics_class.cache_clear()


def test_is_linear_physics_and_passes_adjointness_test(physics, small_sm):
    import torch
    dinv = _deepinv_or_skip()
    assert isinstance(physics, dinv.physics.LinearPhysics)
    assert physics.img_size == (1,) + tuple(small_sm.image_shape)
    err = physics.adjointness_test(img_size=physics.img_size, num_samples=4, dtype=torch.float64)
    assert float(err) < 1e-10
    x = torch.rand((2,) + physics.img_size, dtype=torch.float64)
    y = physics.A(x)  # the stacked scaled spectra of the images
    expected = physics.op.data(x.reshape(2, -1).numpy() @ small_sm.matrix.T).T
    torch.testing.assert_close(y, expected)


def test_a_dagger_is_the_operators_tikhonov_inverse(small_sm):
    import torch
    _deepinv_or_skip()
    ph = MPIPhysics(small_sm, lam=1e-2, rcond=0.0, dtype="float64")
    y = torch.randn(3, 2 * small_sm.num_rows, dtype=torch.float64)
    x = ph.A_dagger(y)
    ref = ph.op.tikhonov_inverse(1e-2) @ y.numpy().T  # (P, 3)
    np.testing.assert_allclose(x.reshape(3, -1).numpy(), ref.T, rtol=1e-10, atol=1e-12)
    # noise-free data of an image: the pseudo-inverse recovers it up to the dropped directions
    img = torch.rand((1,) + ph.img_size, dtype=torch.float64)
    rec = MPIPhysics(small_sm, dtype="float64", rcond=1e-10).A_dagger(ph.A(img))
    assert float((rec - img).norm() / img.norm()) < 1e-4


def test_prox_l2_satisfies_its_optimality_condition(physics):
    import torch
    gen = torch.Generator().manual_seed(0)
    z = torch.rand((2,) + physics.img_size, generator=gen, dtype=torch.float64)
    y = torch.randn(2, physics.op.A.shape[0], generator=gen, dtype=torch.float64)
    for gamma in (0.3, 5.0):
        x = physics.prox_l2(z, y, gamma)
        grad = gamma * physics.A_adjoint(physics.A(x) - y) + (x - z)  # ∇ of γ/2||Ax-y||² + 1/2||x-z||²
        assert float(grad.abs().max()) < 1e-8 * float(z.abs().max() + y.abs().max())


def test_example_runs_deepinv_admm_tv_on_mdf_files(tmp_path, monkeypatch):
    import runpy
    from pathlib import Path

    import mdf_io
    _deepinv_or_skip()
    example = Path(__file__).resolve().parents[1] / "examples" / "deepinv_on_mdf.py"
    monkeypatch.setattr(sys, "argv", ["x", "--out-dir", str(tmp_path), "--iterations", "100"])
    out = runpy.run_path(str(example), run_name="example")["main"]()
    assert out["psnr"] > 18  # Kaczmarz with defaults gets ~19 dB on these files
    rec = mdf_io.read_reconstruction(tmp_path / "deepinv_tv.mdf")
    assert rec.images.shape == (1, 19, 19) and rec.images.min() >= 0
