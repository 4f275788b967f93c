import os
import subprocess
import sys

import numpy as np
import pytest

import mdf_io


def mp(*args, cwd):
    return subprocess.run([sys.executable, "-m", "mpirecon.cli.main", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=900)  # a hang guard, not a timing test (a loaded machine is slow)


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
    assert rec.parameters["plan"]["inputs"]["weights"] == str(files / "d.pt")  # the plan re-runs from anywhere


def test_train_options_and_train_denoiser(files):
    r = mp("train", "--sm", "sm.mdf", "-o", "x.pt", "--set", "bogus=1", cwd=files)
    assert r.returncode == 2 and "bogus" in r.stderr and "resample_phantoms" in r.stderr
    r = mp("train", "--sm", "sm.mdf", "-o", "x.pt", "--set", "c5=notanumber", cwd=files)
    assert r.returncode == 2 and "c5" in r.stderr and not (files / "x.pt").exists()
    r = mp("train-denoiser", "-o", "den.pt", "--grid", "12", "10", "--samples", "64", "--epochs", "1", "--quiet",
           cwd=files)
    assert r.returncode == 0, r.stderr
    r = mp("train-denoiser", "-o", "den.pt", "--samples", "64", "--epochs", "1", "--quiet", cwd=files)
    assert r.returncode == 2 and "exists" in r.stderr
    r = mp("run", "meas.mdf", "--sm", "sm.mdf", "--method", "ppmpi", "--weights", "den.pt", "--param", "iterations=3",
           "-o", "rec_ppmpi_own.mdf", cwd=files)
    assert r.returncode == 0, r.stderr
    rec = mdf_io.read_reconstruction(files / "rec_ppmpi_own.mdf")
    assert rec.images.shape == (2, 10, 12) and rec.parameters["weights"] == "den.pt"


def test_train_under_torchrun_ddp_two_cpu_processes(files):
    """The same `mpirecon train` command under torchrun: 2 CPU processes, gloo backend."""
    from mpirecon.learning.weights import load_weights

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "mpirecon.cli.main", "train", "--sm", "sm.mdf", "-o", "ddp.pt", "--samples", "256",
           "--val-samples", "64", "--epochs", "2", "--batch-size", "32", "--set", "c5=32", "--quiet"]
    r = subprocess.run(cmd, cwd=files, capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert r.returncode == 0, r.stderr[-3000:]
    _, meta = load_weights(files / "ddp.pt", "dernet")
    assert meta["training"]["world_size"] == 2 and len(meta["history"]) == 2
    r = mp("run", "meas.mdf", "--sm", "sm.mdf", "--method", "dernet", "--weights", "ddp.pt", "-o", "rec_ddp.mdf",
           cwd=files)
    assert r.returncode == 0, r.stderr


def test_bench_both_protocols_labels_and_reproducible(files):
    import json

    r = mp("train-denoiser", "-o", "den_bench.pt", "--grid", "12", "10", "--samples", "32", "--epochs", "1",
           "--quiet", cwd=files)
    assert r.returncode == 0, r.stderr
    args = ["bench", "--sm", "sm.mdf", "--methods", "pinv", "kaczmarz", "ppmpi@own", "--weights",
            "ppmpi@own=den_bench.pt", "--snr", "20", "30", "--test-samples", "6", "--val-samples", "4", "--quiet"]
    r = mp(*args, "-o", "bench1", cwd=files)
    assert r.returncode == 0, r.stderr
    out = files / "bench1"
    res = json.loads((out / "results.json").read_text())
    assert set(res["protocols"]) == {"paper", "realistic"}
    for protocol in ("paper", "realistic"):
        for snr in ("20", "30"):
            level = res["protocols"][protocol][snr]
            assert set(level) == {"pinv", "kaczmarz", "ppmpi@own"}
            kac = level["kaczmarz"]
            best = max(kac["tuning"], key=lambda t: t["val_psnr"])
            assert kac["parameters"]["lam"] == best["params"]["lam"]  # the tuned value is the one used
            assert level["ppmpi@own"]["weights"] == "den_bench.pt"
            samples = kac["samples"]["psnr"]  # per-sample values, in test order, summarised by "psnr"
            assert len(samples) == 6 and abs(sum(samples) / 6 - kac["psnr"]["mean"]) < 1e-3
    assert res["protocols"]["paper"]["30"]["pinv"]["psnr"]["mean"] > res["protocols"]["paper"]["20"]["pinv"]["psnr"]["mean"]
    assert "ppmpi@own" in (out / "results.md").read_text()
    for name in ("examples_paper.png", "psnr_vs_snr_realistic.png"):
        assert (out / name).stat().st_size > 5000
    r = mp(*args, "-o", "bench2", cwd=files)  # same seed -> same numbers (timings aside)
    res2 = json.loads((files / "bench2" / "results.json").read_text())
    for protocol, levels in res["protocols"].items():
        for snr, methods in levels.items():
            for m, e in methods.items():
                assert res2["protocols"][protocol][snr][m]["psnr"] == e["psnr"]
