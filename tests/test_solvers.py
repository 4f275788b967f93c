import numpy as np
import pytest

from mdf_io import SystemMatrix
from mpirecon import ReconstructorError, list_reconstructors, load_reconstructor
from mpirecon.physics.operator import matrix_scale
from mpirecon.optim.priors import total_variation
from mpirecon.registry import ENTRY_POINT_GROUP


@pytest.fixture(scope="module")
def well_posed():
    rng = np.random.default_rng(1)
    m = rng.normal(size=(40, 12)) + 1j * rng.normal(size=(40, 12))
    sm = SystemMatrix.from_arrays(m, grid=(4, 3))
    x = rng.random((3, 12))
    return sm, x, x @ m.T


def _tikhonov_real(sm, b, lam):
    a = np.concatenate([sm.matrix.real, sm.matrix.imag]) / matrix_scale(sm.matrix)
    y = np.concatenate([b.real, b.imag], axis=1).T / matrix_scale(sm.matrix)
    return np.linalg.solve(a.T @ a + lam * np.eye(a.shape[1]), a.T @ y).T


def test_pinv_matches_numpy_tikhonov(well_posed):
    sm, x, b = well_posed
    r = load_reconstructor("pinv", sm, lam=1e-3, nonneg=False)
    np.testing.assert_allclose(r.reconstruct(b).images.reshape(3, -1), _tikhonov_real(sm, b, 1e-3), atol=1e-10)


def test_kaczmarz_converges_to_complex_tikhonov(well_posed):
    sm, x, b = well_posed
    lam = 0.05
    r = load_reconstructor("kaczmarz", sm, lam=lam, iterations=3000, enforce_real=False, nonneg=False)
    a = sm.matrix / matrix_scale(sm.matrix)
    want = np.linalg.solve(a.conj().T @ a + lam * np.eye(12), a.conj().T @ (b.T / matrix_scale(sm.matrix))).T
    got = r._solve(b)
    np.testing.assert_allclose(got, want, atol=1e-7)


def test_kaczmarz_sweep_equals_row_by_row_loop(well_posed):
    sm, _, b = well_posed
    lam = 0.1
    r = load_reconstructor("kaczmarz", sm, lam=lam, iterations=1, enforce_real=False, nonneg=False)
    a = sm.matrix / matrix_scale(sm.matrix)
    y = b[0] / matrix_scale(sm.matrix)
    xk = np.zeros(12, complex)
    v = np.zeros(40, complex)
    for i in range(40):  # the textbook regularised Kaczmarz row loop
        beta = (y[i] - a[i] @ xk - lam * v[i]) / (np.vdot(a[i], a[i]).real + lam)
        xk += beta * a[i].conj()
        v[i] += beta
    np.testing.assert_allclose(r._solve(b[:1])[0], xk, atol=1e-12)


def test_cgnr_converges(well_posed):
    sm, x, b = well_posed
    r = load_reconstructor("cgnr", sm, lam=1e-3, iterations=60, nonneg=False)
    np.testing.assert_allclose(r.reconstruct(b).images.reshape(3, -1), _tikhonov_real(sm, b, 1e-3), atol=1e-6)


def test_admm_without_prior_is_least_squares(well_posed):
    sm, x, b = well_posed
    r = load_reconstructor("admm_l1", sm, mu=0.0, rho=1.0, iterations=2000, nonneg=False)
    np.testing.assert_allclose(r.reconstruct(b).images.reshape(3, -1), x, atol=1e-6)


@pytest.mark.parametrize("name", ["pinv", "kaczmarz", "cgnr", "admm_l1", "admm_tv", "admm_l1tv"])
def test_nonneg_batch_and_scale(name, small_sm):
    rng = np.random.default_rng(2)
    c = rng.random((5, small_sm.num_voxels))
    b = c @ small_sm.matrix.T
    b = b + 0.05 * np.abs(b).mean() * (rng.normal(size=b.shape) + 1j * rng.normal(size=b.shape))
    # CGNR at its default 20 iterations amplifies rounding (lost orthogonality): compare at 5
    r = load_reconstructor(name, small_sm, **({"iterations": 5} if name == "cgnr" else {}))
    batch = r.reconstruct(b).images
    assert batch.shape == (5,) + small_sm.image_shape
    assert batch.min() >= 0
    single = np.stack([r.reconstruct(b[i]).images[0] for i in range(5)])
    np.testing.assert_allclose(batch, single, rtol=1e-6, atol=1e-9 * np.abs(batch).max())
    np.testing.assert_allclose(r.reconstruct(7.0 * b).images, 7.0 * batch, rtol=1e-5, atol=1e-8 * batch.max())


def test_tv_reduces_total_variation(small_sm):
    rng = np.random.default_rng(3)
    b = rng.random((4, small_sm.num_voxels)) @ small_sm.matrix.T
    b = b + 0.1 * np.abs(b).mean() * rng.normal(size=b.shape)
    plain = load_reconstructor("admm_tv", small_sm, mu=0.0).reconstruct(b).images
    tv = load_reconstructor("admm_tv", small_sm, mu=1e-2).reconstruct(b).images
    assert np.all(total_variation(tv) < total_variation(plain))


def test_registry_lists_and_rejects(small_sm):
    names = list_reconstructors()
    for n in ["pinv", "kaczmarz", "admm_l1", "admm_tv", "admm_l1tv", "dernet", "ppmpi"]:
        assert n in names
    with pytest.raises(ReconstructorError, match="available: .*pinv"):
        load_reconstructor("nope")
    with pytest.raises(ReconstructorError, match="lam"):
        load_reconstructor("pinv", small_sm, lam=-1)
    with pytest.raises(ReconstructorError, match="allowed"):
        load_reconstructor("pinv", small_sm, bogus=1)


def test_third_party_plugin_via_entry_point(tmp_path, monkeypatch, small_sm):
    """A plugin defined only here, registered through a temporary distribution's entry points."""
    pkg = tmp_path / "thirdparty_recon.py"
    pkg.write_text(
        "import numpy as np\n"
        "from mpirecon import Reconstructor\n"
        "class Backprojection(Reconstructor):\n"
        "    name = 'backproj'\n"
        "    description = 'adjoint of the system matrix'\n"
        "    def _setup(self, sm):\n"
        "        self.a = sm.matrix\n"
        "    def _solve(self, spectra):\n"
        "        return (spectra @ self.a.conj()).real\n")
    dist = tmp_path / "thirdparty_recon-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-recon\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nbackproj = thirdparty_recon:Backprojection\nbroken = thirdparty_missing:Nothing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "backproj" in list_reconstructors()
    r = load_reconstructor("backproj", small_sm)
    b = np.ones((1, small_sm.num_rows), complex)
    np.testing.assert_allclose(r.reconstruct(b).images.ravel(), (b @ small_sm.matrix.conj()).real.ravel())
    with pytest.raises(ReconstructorError, match="broken.*failed to load"):
        load_reconstructor("broken")
    assert load_reconstructor("pinv", small_sm) is not None  # the broken one breaks nothing else
