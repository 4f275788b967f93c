import subprocess
import sys

import numpy as np
import pytest

import mdf_io


def mp(*args, cwd):
    return subprocess.run([sys.executable, "-m", "mpirecon.cli.main", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    r = mp("simulate", "system-matrix", "-o", "sm.mdf", "--grid", "12", "10", cwd=d)
    assert r.returncode == 0, r.stderr
    r = mp("simulate", "measurement", "--sm", "sm.mdf", "--phantom", "shape", "--snr", "30", "--frames", "2",
           "-o", "meas.mdf", cwd=d)
    assert r.returncode == 0, r.stderr
    return d


def test_version_help_info_methods(files):
    assert "mpirecon" in mp("--version", cwd=files).stdout
    assert "run" in mp("--help", cwd=files).stdout
    info = mp("info", "sm.mdf", cwd=files).stdout
    assert "calibration" in info and "(12, 10, 1)" in info and "SNR" in info
    info = mp("info", "meas.mdf", cwd=files).stdout
    assert "measurement" in info and "time" in info and "10 background" in info
    methods = mp("methods", cwd=files).stdout
    assert "admm_l1tv" in methods and "dernet" in methods


@pytest.mark.parametrize("method", ["pinv", "kaczmarz", "cgnr", "admm_l1", "admm_tv", "admm_l1tv", "ppmpi"])
def test_run_every_method_end_to_end(files, method):
    out = files / f"rec_{method}.mdf"
    r = mp("run", "meas.mdf", "--sm", "sm.mdf", "--method", method, "--average", "-o", out.name,
           "--png", f"{method}.png", cwd=files)
    assert r.returncode == 0, r.stderr
    rec = mdf_io.read_reconstruction(out)
    assert rec.images.shape == (1, 10, 12) and rec.method == method
    truth = np.zeros((10, 12))
    from mpirecon.simulation.phantoms import named_phantom
    truth = named_phantom("shape", (10, 12))
    corr = np.corrcoef(rec.images[0].ravel(), truth.ravel())[0, 1]
    assert corr > 0.6, corr
    assert (files / f"{method}.png").stat().st_size > 1000
    assert rec.parameters["selection"]["snr_threshold"] == 1.5


def test_bad_input_gives_one_line_and_no_output(files):
    (files / "junk.mdf").write_text("junk")
    r = mp("run", "junk.mdf", "--sm", "sm.mdf", "--method", "pinv", "-o", "x.mdf", cwd=files)
    errors = [line for line in r.stderr.splitlines() if line.startswith("mpirecon: error:")]
    assert r.returncode == 2 and len(errors) == 1 and "junk.mdf" in errors[0]
    assert not (files / "x.mdf").exists()
    r = mp("run", "meas.mdf", "--sm", "sm.mdf", "--method", "pinv", "-o", "meas.mdf", cwd=files)
    assert r.returncode == 2 and "input" in r.stderr
    r = mp("run", "meas.mdf", "--sm", "sm.mdf", "--method", "nope", "-o", "y.mdf", cwd=files)
    assert r.returncode == 2 and "available" in r.stderr
    r = mp("run", "meas.mdf", "--sm", "sm.mdf", "--method", "pinv", "--param", "lam=-3", "-o", "y.mdf", cwd=files)
    assert r.returncode == 2 and not (files / "y.mdf").exists()


def test_run_dernet_end_to_end(files):
    r = mp("train", "--sm", "sm.mdf", "-o", "d.pt", "--samples", "256", "--val-samples", "64", "--epochs", "1",
           "--quiet", cwd=files)
    assert r.returncode == 0, r.stderr
    r = mp("run", "meas.mdf", "--sm", "sm.mdf", "--method", "dernet", "--weights", "d.pt", "-o", "rec_dernet.mdf",
           cwd=files)
    assert r.returncode == 0, r.stderr
    rec = mdf_io.read_reconstruction(files / "rec_dernet.mdf")
    assert rec.images.shape == (2, 10, 12) and rec.images.min() >= 0
    assert rec.parameters["weights"] == "d.pt"
