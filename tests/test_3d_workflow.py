"""3D end to end through the console script: simulate a 3D calibration, reconstruct, picture, slice."""
import numpy as np
import pytest

import mdf_io
from mpirecon.cli.main import main


@pytest.fixture(scope="module")
def files3d(tmp_path_factory):
    d = tmp_path_factory.mktemp("3d")
    assert main(["simulate", "system-matrix", "--grid", "6", "5", "4", "--frequencies", "200",
                 "-o", str(d / "sm.mdf")]) == 0
    assert main(["simulate", "measurement", "--sm", str(d / "sm.mdf"), "--phantom", "shape", "--frames", "2",
                 "-o", str(d / "meas.mdf")]) == 0
    return d


def test_simulated_3d_calibration_stores_a_frequency_subset(files3d):
    sm = mdf_io.read_system_matrix(files3d / "sm.mdf")
    assert sm.grid == (6, 5, 4) and sm.num_rows == 3 * 200  # the 200 strongest frequencies, 3 channels
    assert sm.image_shape == (4, 5, 6) and set(sm.rows.channel.tolist()) <= {0, 1, 2}


def test_3d_run_writes_qxpxs_images_and_a_sliced_picture(files3d, tmp_path):
    out, png = tmp_path / "r.mdf", tmp_path / "r.png"
    assert main(["run", str(files3d / "meas.mdf"), "--sm", str(files3d / "sm.mdf"), "--method", "admm_tv",
                 "-o", str(out), "--png", str(png)]) == 0
    rec = mdf_io.read_reconstruction(out)
    assert rec.images.shape == (2, 4, 5, 6) and rec.images.min() >= 0
    from PIL import Image
    with Image.open(png) as im:  # three slices + MIP side by side: much wider than tall
        assert im.size[0] > 2.5 * im.size[1]


def test_slice_of_a_3d_calibration(files3d, tmp_path, capsys):
    from mpirecon.io.loading import load_system_matrix

    full = load_system_matrix(files3d / "sm.mdf")
    sl = load_system_matrix(files3d / "sm.mdf", slice="z=1")
    cube = full.matrix.reshape(full.num_rows, 4, 5, 6)
    np.testing.assert_array_equal(sl.matrix, cube[:, 1].reshape(full.num_rows, -1))
    assert sl.grid == (6, 5, 1) and sl.image_shape == (5, 6) and sl.selection["slice"] == "z=1"
    voxel = full.fov[2] / 4
    assert sl.fov[2] == pytest.approx(voxel)
    assert sl.center[2] == pytest.approx(full.center[2] - full.fov[2] / 2 + 1.5 * voxel)
    x = full.take_slice("x", -1)
    np.testing.assert_array_equal(x.matrix, cube[:, :, :, 5].reshape(full.num_rows, -1))
    out = tmp_path / "s.mdf"
    assert main(["run", str(files3d / "meas.mdf"), "--sm", str(files3d / "sm.mdf"), "--method", "kaczmarz",
                 "--slice", "z=2", "-o", str(out)]) == 0
    assert mdf_io.read_reconstruction(out).images.shape == (2, 5, 6)
    capsys.readouterr()
    for bad in ("z=4", "w=1", "z"):
        assert main(["run", str(files3d / "meas.mdf"), "--sm", str(files3d / "sm.mdf"), "--method", "kaczmarz",
                     "--slice", bad, "-o", str(tmp_path / "bad.mdf")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) <= 2 and "slice" in err[-1]
    assert not (tmp_path / "bad.mdf").exists()
