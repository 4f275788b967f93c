"""Bad input through the CLI and the Python API: one line, exit 2 (internal errors: exit 1),
the project's own exceptions (mdf_io.MDFError, ReconstructorError, WeightsError)."""
from __future__ import annotations

import os

import numpy as np
import pytest

from mpirecon.cli.main import main
from mpirecon.registry import get_reconstructor_class, list_reconstructors

RUN = ["run", "meas.mdf", "--sm", "cal.mdf", "--snr-threshold", "0", "-o", "r.mdf"]


def error_line(capsys) -> str:
    """The only non-empty line of stderr that starts with 'mpirecon:' (the last one)."""
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert lines and lines[-1].startswith("mpirecon:") and sum(ln.startswith("mpirecon:") for ln in lines) == 1, lines
    assert "Traceback" not in "\n".join(lines)
    return lines[-1]


def no_cuda() -> bool:
    import torch
    return not torch.cuda.is_available()


# -- devices ------------------------------------------------------------------------------------------

@pytest.mark.skipif(not no_cuda(), reason="a CUDA device is present")
@pytest.mark.parametrize("method", list_reconstructors())
@pytest.mark.parametrize("device", ["cuda", "cuda:1", "gpu"])
def test_run_device_is_checked_before_reading_files(tmp_path, monkeypatch, capsys, method, device):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "missing.mdf", "--sm", "missing_sm.mdf", "--method", method, "--device", device,
                 "-o", "r.mdf"]) == 2
    line = error_line(capsys)
    assert "device" in line and "missing" not in line and os.listdir(tmp_path) == []


@pytest.mark.skipif(not no_cuda(), reason="a CUDA device is present")
@pytest.mark.parametrize("command", [["train", "--sm", "missing.mdf", "--method", "dernet"],
                                     ["train", "--sm", "missing.mdf", "--method", "ppmpi"],
                                     ["train-denoiser"],
                                     ["bench", "--sm", "missing.mdf", "--methods", "ppmpi", "--quiet"]])
def test_train_and_bench_device_is_checked_before_reading_files(tmp_path, monkeypatch, capsys, command):
    monkeypatch.chdir(tmp_path)
    assert main(command + ["--device", "cuda", "-o", "out"]) == 2
    line = error_line(capsys)
    assert "device" in line and "missing" not in line and os.listdir(tmp_path) == []
    assert main(command + ["--device", "gpu", "-o", "out"]) == 2
    assert "'gpu'" in error_line(capsys)


# -- simulate parameters --------------------------------------------------------------------------------

@pytest.mark.parametrize("args,named", [
    (["system-matrix", "--fov", "-1", "1"], "fov"), (["system-matrix", "--fov", "0.02", "nan"], "fov"),
    (["system-matrix", "--grid", "0", "5"], "grid"), (["system-matrix", "--noise-level", "-1"], "noise_level"),
    (["system-matrix", "--noise-level", "0"], "noise_level"), (["system-matrix", "--amplitude", "nan", "1"],
                                                              "drive_amplitude"),
    (["system-matrix", "--gradient", "0", "1"], "gradient"), (["system-matrix", "--relaxation", "-1"], "relaxation"),
    (["measurement", "--sm", "cal.mdf", "--phantom", "shape", "--snr", "nan"], "--snr"),
    (["measurement", "--sm", "cal.mdf", "--phantom", "shape", "--snr", "inf"], "--snr"),
    (["measurement", "--sm", "cal.mdf", "--phantom", "shape", "--frames", "0"], "--frames"),
    (["measurement", "--sm", "cal.mdf", "--phantom", "shape", "--background-frames", "-1"], "--background-frames"),
    (["measurement", "--sm", "sim.mdf", "--phantom", "nope"], "nope"),
    (["measurement", "--sm", "sim.mdf", "--phantom", "meas.mdf"], "meas.mdf"),
    (["measurement", "--sm", "cal.mdf", "--phantom", "shape"], "/_simulation"),
])
def test_simulate_bad_parameters(tiny_files, capsys, args, named):
    if "sim.mdf" in args:
        assert main(["simulate", "system-matrix", "--grid", "4", "4", "-o", "sim.mdf"]) == 0
        capsys.readouterr()
    assert main(["simulate", *args, "-o", "x.mdf"]) == 2
    assert named in error_line(capsys)
    assert not (tiny_files / "x.mdf").exists()


# -- weights files ----------------------------------------------------------------------------------------

def _weights(kind: str, path):
    import torch

    from mpirecon.learning.weights import save_weights
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(3000))
    elif kind == "plain dict":
        torch.save({"conv0.weight": torch.zeros(3)}, path)
    elif kind == "no metadata":
        save_weights(path, "dernet", {"x": torch.zeros(2)}, {})
        return
    elif kind == "no metadata ppmpi":
        save_weights(path, "ppmpi-denoiser", {"x": torch.zeros(2)}, {})
    elif kind == "directory":
        path.mkdir()


@pytest.mark.parametrize("method", ["dernet", "ppmpi"])
@pytest.mark.parametrize("kind", ["empty", "garbage", "plain dict", "no metadata", "no metadata ppmpi", "directory",
                                  "missing"])
def test_bad_weights_files(tiny_files, capsys, method, kind):
    _weights(kind, tiny_files / "w.pt")
    assert main(RUN + ["--method", method, "--weights", "w.pt"]) == 2
    assert "w.pt" in error_line(capsys)
    assert not (tiny_files / "r.mdf").exists()


# -- main: exit codes and one line -------------------------------------------------------------------------

def _raiser(exc):
    def run(args):
        raise exc
    return run


@pytest.mark.parametrize("exc", [
    "MDFFormatError", "ReconstructorError", "WeightsError", "UsageError", "FileNotFoundError", "PermissionError",
    "MDFWriteError"])
def test_expected_errors_are_one_line_exit_2(monkeypatch, capsys, exc):
    import mdf_io
    import mpirecon
    import mpirecon.cli.info_cmd as info_cmd
    cls = getattr(mdf_io, exc, None) or getattr(mpirecon, exc, None) or __builtins__[exc]
    error = cls("f.mdf", "/a\n/b", "one\n two", "three\r\nfour") if "MDF" in exc else cls("line one\n  line two")
    monkeypatch.setattr(info_cmd, "run", _raiser(error))
    assert main(["info", "x"]) == 2
    line = error_line(capsys)
    assert line.startswith("mpirecon: error: ") and "internal" not in line


def test_unexpected_errors_are_internal_errors_exit_1(monkeypatch, capsys):
    import mpirecon.cli.info_cmd as info_cmd
    monkeypatch.setattr(info_cmd, "run", _raiser(ZeroDivisionError("float\ndivision by zero")))
    monkeypatch.delenv("MPIRECON_DEBUG", raising=False)
    assert main(["info", "x"]) == 1
    line = error_line(capsys)
    assert "internal error" in line and "ZeroDivisionError" in line and "float division" in line
    monkeypatch.setattr(info_cmd, "run", _raiser(ValueError("numpy said no")))  # not ours: a bug too
    assert main(["info", "x"]) == 1
    monkeypatch.setenv("MPIRECON_DEBUG", "1")
    with pytest.raises(ValueError):
        main(["info", "x"])


@pytest.mark.parametrize("argv", [["run"], ["run", "m.mdf"], ["run", "m.mdf", "--method", "pinv", "-o", "r.mdf", "--bogus"],
                                  ["simulate", "system-matrix", "-o", "x.mdf", "--grid", "a", "b"], ["nope"]])
def test_argparse_errors_are_one_line(capsys, argv):
    try:  # argparse exits; `run` without a measurement or method (optional with --plan) returns 2
        code = main(argv)
    except SystemExit as info:
        code = info.code
    assert code == 2
    assert error_line(capsys).startswith("mpirecon: error: ")


# -- Python API: the documented exceptions ------------------------------------------------------------------

def test_api_failures_are_the_documented_exceptions(tiny_files):
    from mdf_io import MDFError, read_measurement
    from mpirecon import ReconstructorError, WeightsError, load_reconstructor, load_system_matrix
    from mpirecon.simulation.measurement import simulate_spectra

    sm = load_system_matrix("cal.mdf", snr_threshold=0)
    (tiny_files / "junk.mdf").write_text("junk")
    with pytest.raises(MDFError):
        read_measurement("junk.mdf")
    with pytest.raises(ReconstructorError):
        load_reconstructor("pinv", system_matrix=sm, lam=-1)
    with pytest.raises(ReconstructorError):
        load_reconstructor("ppmpi", system_matrix=sm, device="gpu")
    with pytest.raises(ReconstructorError):
        load_system_matrix("cal.mdf", snr_threshold=1e9)
    with pytest.raises(ReconstructorError):
        simulate_spectra(sm, np.ones(sm.image_shape), float("nan"))
    (tiny_files / "w.pt").write_bytes(b"")
    with pytest.raises(WeightsError):
        get_reconstructor_class("dernet")(sm, weights="w.pt")
    import mpirecon.errors
    readme = open(os.path.join(os.path.dirname(__file__), "..", "README.md")).read()
    assert "## Errors" in readme
    for name in ("MDFError", "ReconstructorError", "WeightsError", "internal error", "MPIRECON_DEBUG"):
        assert name in readme
    assert set(mpirecon.errors.__all__) <= set(dir(mpirecon))
