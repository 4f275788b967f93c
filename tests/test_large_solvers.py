"""Large-problem strategies equal their dense references; numpy and torch paths agree."""
import numpy as np
import pytest
import scipy.fft

from mdf_io import SystemMatrix
from mpirecon import load_reconstructor
from mpirecon.physics import operator as operator_module
from mpirecon.physics.xupdate import DenseXUpdate
from mpirecon.physics.linalg import dct_images, dct_matrix, laplacian_eigenvalues
from mpirecon.physics.operator import matrix_scale, operator_for
from mpirecon.optim.priors import gradient_operator
from mpirecon.physics.xupdate import WoodburyXUpdate

METHODS = ["pinv", "kaczmarz", "cgnr", "admm_l1", "admm_tv", "admm_l1tv"]
#: fast settings per method (few iterations keep the tests quick; equality does not need convergence)
FAST = {"pinv": {"lam": 1e-2}, "kaczmarz": {"iterations": 3, "block_rows": 7}, "cgnr": {"iterations": 8},
        "admm_l1": {"iterations": 30, "mu": 1e-3, "rho": 1.0}, "admm_tv": {"iterations": 30, "mu": 3e-4},
        "admm_l1tv": {"iterations": 30, "mu": 3e-4}}  # fixed weights: the backends' arithmetic, not the auto rules


@pytest.fixture(scope="module")
def small3d():
    """A random 3D problem with P = 60 > 2R = 40 (the shape the large strategies are for)."""
    rng = np.random.default_rng(7)
    m = rng.normal(size=(20, 60)) + 1j * rng.normal(size=(20, 60))
    sm = SystemMatrix.from_arrays(m, grid=(5, 4, 3))
    c = rng.random((3, 60))
    b = c @ m.T
    return sm, b + 0.3 * rng.normal(size=b.shape)


def test_dct_diagonalises_the_neumann_laplacian():
    shape = (3, 4, 5)
    d = gradient_operator(shape).toarray()
    c = dct_images(np.eye(60), shape)  # rows: DCT of unit images -> C (60 x 60), orthonormal
    np.testing.assert_allclose(c @ c.T, np.eye(60), atol=1e-12)
    np.testing.assert_allclose(c.T @ (d.T @ d) @ c, np.diag(laplacian_eigenvalues(shape)), atol=1e-12)
    np.testing.assert_allclose(dct_matrix(7), scipy.fft.dct(np.eye(7), axis=0, norm="ortho"), atol=1e-14)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("transforms", [(), ("gradient",)])
@pytest.mark.parametrize("grid", [(5, 4, 3), (6, 10, 1)])
def test_woodbury_x_update_equals_dense(backend, transforms, grid):
    if backend == "torch":
        pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    p = int(np.prod(grid))
    sm = SystemMatrix.from_arrays(rng.normal(size=(11, p)) + 1j * rng.normal(size=(11, p)), grid=grid)
    op = operator_for(sm, "float64", "cpu", backend)
    dense, wood = op.x_update(0.3, transforms, "dense"), op.x_update(0.3, transforms, "large")
    assert isinstance(dense, DenseXUpdate) and isinstance(wood, WoodburyXUpdate)
    rhs = op.backend(rng.normal(size=(p, 4)))
    np.testing.assert_allclose(op.host(wood.solve(rhs)), op.host(dense.solve(rhs)), rtol=1e-10, atol=1e-10)


def test_woodbury_without_the_kept_scaled_rows_is_the_same(small3d, monkeypatch):
    from mpirecon.physics import xupdate
    sm, _ = small3d
    rhs = np.random.default_rng(4).normal(size=(60, 3))
    ref = operator_for(sm).x_update(0.2, ("gradient",), "large")
    assert ref.scaled_rows is not None
    monkeypatch.setattr(xupdate, "SCALED_ROWS_MAX_BYTES", 0)
    plain = operator_for(SystemMatrix.from_arrays(sm.matrix, grid=sm.grid)).x_update(0.2, ("gradient",), "large")
    assert plain.scaled_rows is None
    np.testing.assert_allclose(plain.solve(rhs), ref.solve(rhs), rtol=1e-10, atol=1e-12)


def test_woodbury_float32_close_to_float64(small3d):
    sm, _ = small3d
    rhs = np.random.default_rng(2).normal(size=(60, 3))
    ref = operator_for(sm).x_update(0.1, ("gradient",), "large").solve(rhs)
    got = operator_for(sm, "float32").x_update(0.1, ("gradient",), "large").solve(rhs.astype(np.float32))
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max())


@pytest.mark.parametrize("name", METHODS)
def test_large_strategy_equals_dense(name, small3d):
    sm, b = small3d
    params = dict(FAST.get(name, {}), nonneg=False)
    dense = load_reconstructor(name, sm, strategy="dense", **params).reconstruct(b).images
    large = load_reconstructor(name, sm, strategy="large", **params).reconstruct(b).images
    np.testing.assert_allclose(large, dense, rtol=1e-8, atol=1e-9 * np.abs(dense).max())


def test_pinv_large_with_rcond_equals_truncated_svd(small3d):
    sm, b = small3d
    dense = load_reconstructor("pinv", sm, strategy="dense", rcond=0.3, nonneg=False)
    large = load_reconstructor("pinv", sm, strategy="large", rcond=0.3, nonneg=False)
    np.testing.assert_allclose(large.singular_values, dense.singular_values, rtol=1e-8)
    assert np.sum(dense.singular_values > 0.3 * dense.singular_values[0]) < len(dense.singular_values)
    np.testing.assert_allclose(large.reconstruct(b).images, dense.reconstruct(b).images, atol=1e-9)


@pytest.mark.parametrize("shuffle", [False, True])
def test_block_kaczmarz_equals_the_row_loop(shuffle, small3d):
    sm, b = small3d
    lam = 0.1
    r = load_reconstructor("kaczmarz", sm, lam=lam, iterations=2, enforce_real=False, nonneg=False,
                           strategy="large", block_rows=6, shuffle=shuffle, seed=3)
    assert len(r.blocks) == 4  # 20 rows in blocks of 6, 6, 6, 2
    a = sm.matrix / matrix_scale(sm.matrix)
    y = b[0] / matrix_scale(sm.matrix)
    lam *= 60 / 40  # the parameter's unit is max(1, P / 2R) in the scaled operator's units
    xk = np.zeros(60, complex)
    v = np.zeros(20, complex)
    for _ in range(2):
        for i in r.order:  # the textbook regularised Kaczmarz row loop
            beta = (y[i] - a[i] @ xk - lam * v[i]) / (np.vdot(a[i], a[i]).real + lam)
            xk += beta * a[i].conj()
            v[i] += beta
    np.testing.assert_allclose(r._solve(b[:1])[0], xk, atol=1e-12)


@pytest.mark.parametrize("strategy", ["dense", "large"])
@pytest.mark.parametrize("name", METHODS)
def test_numpy_and_torch_backends_agree(name, strategy, small3d):
    torch = pytest.importorskip("torch")
    sm, b = small3d
    params = dict(FAST.get(name, {}), strategy=strategy)
    ref = load_reconstructor(name, sm, **params).reconstruct(b).images
    tr = load_reconstructor(name, sm, backend="torch", **params)
    assert isinstance(tr.op.A if hasattr(tr, "op") else tr.row_blocks[0][2], torch.Tensor)
    np.testing.assert_allclose(tr.reconstruct(b).images, ref, rtol=1e-8, atol=1e-9 * np.abs(ref).max())


@pytest.mark.skipif(not __import__("importlib").util.find_spec("torch")
                    or not __import__("torch").cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", METHODS)
def test_cuda_matches_cpu(name, small3d):
    sm, b = small3d
    params = FAST.get(name, {})
    ref = load_reconstructor(name, sm, **params).reconstruct(b).images
    got = load_reconstructor(name, sm, device="cuda", **params).reconstruct(b).images
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-7 * np.abs(ref).max())


def test_auto_strategy_follows_the_shape(small3d, monkeypatch):
    sm, _ = small3d
    op = operator_for(sm)
    assert op.strategy() == "dense"  # P = 60 <= DENSE_MAX_VOXELS
    assert load_reconstructor("kaczmarz", sm).strategy == "dense"
    monkeypatch.setattr(operator_module, "DENSE_MAX_VOXELS", 50)
    assert load_reconstructor("pinv", sm).strategy == "dense"  # the SVD limit is its own
    monkeypatch.setattr(operator_module, "SVD_MAX_VOXELS", 50)
    assert op.strategy() == "large" and op.strategy("dense") == "dense"
    assert isinstance(op.x_update(0.7, ("gradient",)), WoodburyXUpdate)
    for name in ("pinv", "cgnr"):
        assert load_reconstructor(name, sm).strategy == "large"
    with pytest.raises(ValueError, match="strategy"):
        op.strategy("bogus")
    with pytest.raises(Exception, match="strategy"):
        load_reconstructor("cgnr", sm, strategy="bogus")


def test_normal_apply_by_row_blocks_equals_the_two_products(small3d, monkeypatch):
    sm, _ = small3d
    op = operator_for(sm)
    x = np.random.default_rng(5).normal(size=(60, 2))
    monkeypatch.setattr(operator_module, "NORMAL_BLOCK_BYTES", 8 * 60 * 3)  # 8-row blocks (40 rows)
    np.testing.assert_allclose(op.normal_apply(x), op.A.T @ (op.A @ x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(op.normal_apply(np.tile(x, 4)), np.tile(op.A.T @ (op.A @ x), 4), rtol=1e-12)


def test_float32_calibration_reading_halves_the_matrix(tmp_path):
    from mdf_io import write_system_matrix
    from mpirecon.io.loading import load_system_matrix
    rng = np.random.default_rng(6)
    m = rng.normal(size=(12, 30)) + 1j * rng.normal(size=(12, 30))
    write_system_matrix(tmp_path / "sm.mdf", SystemMatrix.from_arrays(m, grid=(5, 3, 2)))
    full = load_system_matrix(tmp_path / "sm.mdf", snr_threshold=None)
    half = load_system_matrix(tmp_path / "sm.mdf", snr_threshold=None, dtype=np.complex64)
    assert full.matrix.dtype == np.complex128 and half.matrix.dtype == np.complex64
    np.testing.assert_allclose(half.matrix, full.matrix, rtol=1e-6)
    a64 = load_reconstructor("kaczmarz", full, dtype="float32").reconstruct(m.sum(axis=1)[None]).images
    a32 = load_reconstructor("kaczmarz", half, dtype="float32").reconstruct(m.sum(axis=1)[None]).images
    np.testing.assert_allclose(a32, a64, rtol=1e-4, atol=1e-5 * np.abs(a64).max())


@pytest.mark.parametrize("frames", [1, 12])
@pytest.mark.parametrize("name", METHODS)
def test_rows_mode_equals_the_stacked_operator(name, frames, small3d, monkeypatch):
    """Without the stacked copy (rows mode: products from the complex rows, complex BLAS for a few
    frames, stacked row blocks for many) every method gives the stacked operator's images."""
    sm, b = small3d
    params = dict(FAST.get(name, {}), strategy="large")
    data = np.tile(b, (4, 1))[:frames]
    ref = load_reconstructor(name, sm, **params).reconstruct(data).images
    monkeypatch.setattr(operator_module, "STACKED_MAX_BYTES", 0)
    monkeypatch.setattr(operator_module, "ROW_BLOCK", 7)  # blocks straddle the Re/Im boundary (R = 20)
    fresh = SystemMatrix.from_arrays(sm.matrix, grid=sm.grid)
    rec = load_reconstructor(name, fresh, **params)
    assert not rec.operator.stacked and "A" not in rec.operator._cache
    np.testing.assert_allclose(rec.reconstruct(data).images, ref, rtol=1e-8, atol=1e-9 * np.abs(ref).max())
    assert "A" not in rec.operator._cache  # no stacked copy was made


def test_rows_mode_operator_pieces_equal_the_stacked_ones(small3d, monkeypatch):
    sm, _ = small3d
    ref = operator_for(SystemMatrix.from_arrays(sm.matrix, grid=sm.grid))
    monkeypatch.setattr(operator_module, "STACKED_MAX_BYTES", 0)
    monkeypatch.setattr(operator_module, "ROW_BLOCK", 7)
    op = operator_for(SystemMatrix.from_arrays(sm.matrix, grid=sm.grid))
    a = ref.A
    np.testing.assert_allclose(op.rows(0, op.num_rows), a, atol=1e-15)
    np.testing.assert_allclose(op.column_energy(), np.sum(a * a, axis=0), rtol=1e-12)
    np.testing.assert_allclose(op.normal_matrix(), a.T @ a, atol=1e-12)
    np.testing.assert_allclose(op.row_gram(), a @ a.T, atol=1e-12)
    np.testing.assert_allclose(np.abs(op.normal_eig()[0].T @ ref.normal_eig()[0]).sum(axis=1), 1.0, atol=1e-6)
    assert "A" not in op._cache


@pytest.mark.parametrize("name", ["pinv", "cgnr", "admm_l1", "admm_tv", "admm_l1tv"])
def test_compressed_with_full_rank_equals_large(name, small3d):
    """With rank >= 2R the compressed operator spans the whole row space: the same images."""
    sm, b = small3d
    params = dict(FAST.get(name, {}), nonneg=False)
    ref = load_reconstructor(name, sm, strategy="large", **params).reconstruct(b).images
    rec = load_reconstructor(name, sm, strategy="compressed", rank=64, **params)
    res = rec.reconstruct(b)
    assert res.extra["compressed"]["rows"] == 40
    assert abs(res.extra["compressed"]["energy_kept"] - 1.0) < 1e-9
    np.testing.assert_allclose(res.images, ref, rtol=1e-6, atol=1e-7 * np.abs(ref).max())


def test_compressed_operator_keeps_the_dominant_row_space(small3d):
    from mpirecon.physics.compression import compressed_operator
    sm, b = small3d
    op = operator_for(sm)
    c = compressed_operator(op, rank=10)
    a = op.A
    s = np.linalg.svd(a, compute_uv=False)
    np.testing.assert_allclose(np.sqrt(c.singular_values2), s[:10], rtol=0.05)  # one power iteration
    bb = c.A @ c.A.T
    np.testing.assert_allclose(bb, np.diag(np.diag(bb)), atol=1e-9 * bb.max())  # orthogonal rows
    assert c.num_rows == 10 and 0 < c.captured < 1 and compressed_operator(op, rank=10) is c  # cached
    np.testing.assert_allclose(c.data(b), c.basis.T @ op.data(b), atol=1e-12)


def test_auto_compresses_only_when_the_stacked_operator_is_too_large(small3d, monkeypatch):
    sm, b = small3d
    for name in ("pinv", "cgnr", "admm_l1"):
        assert load_reconstructor(name, sm, strategy="auto").strategy == "dense"
        assert load_reconstructor(name, sm, strategy="large").strategy == "large"
    monkeypatch.setattr(operator_module, "STACKED_MAX_BYTES", 0)
    monkeypatch.setattr(operator_module, "DENSE_MAX_VOXELS", 10)
    fresh = SystemMatrix.from_arrays(sm.matrix, grid=sm.grid)
    for name in ("cgnr", "admm_l1"):
        rec = load_reconstructor(name, fresh, rank=8)
        assert rec.strategy == "compressed" and rec.reconstruct(b).extra["compressed"]["rows"] == 8


def test_row_energies_in_blocks_equal_one_pass(small3d, monkeypatch):
    from mpirecon.physics import linalg
    sm, _ = small3d
    one = linalg.row_energies(sm.matrix)
    monkeypatch.setattr(linalg, "ENERGY_ONE_PASS_BYTES", 0)
    np.testing.assert_allclose(linalg.row_energies(sm.matrix, block=3), one, rtol=1e-13)
    np.testing.assert_allclose(linalg.row_energies(sm.matrix.astype(np.complex64), block=3), one, rtol=1e-6)
