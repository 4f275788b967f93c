"""Daily-workflow features end to end through the CLI: frames, export, provenance, umask, timing,
scanner consistency, transfer function, row handling, bench resume."""
import json
import os

import numpy as np
import pytest

import mdf_io
from mpirecon.cli.main import main
from mpirecon.frames import FrameSelectionError, parse_frames


def cli(*args, capsys=None):
    code = main([str(a) for a in args])
    return code


@pytest.fixture(scope="module")
def wf(tmp_path_factory):
    d = tmp_path_factory.mktemp("wf")
    cwd = os.getcwd()
    os.chdir(d)
    try:
        assert main(["simulate", "system-matrix", "-o", "sm.mdf", "--grid", "10", "8"]) == 0
        assert main(["simulate", "measurement", "--sm", "sm.mdf", "--phantom", "shape", "--snr", "30",
                     "--frames", "6", "--background-frames", "4", "-o", "meas.mdf"]) == 0
    finally:
        os.chdir(cwd)
    return d


@pytest.fixture()
def at(wf, monkeypatch):
    monkeypatch.chdir(wf)
    return wf


def test_parse_frames_python_style():
    assert parse_frames("5", 10).tolist() == [5]
    assert parse_frames("0:4", 10).tolist() == [0, 1, 2, 3]
    assert parse_frames("0:10:3", 10).tolist() == [0, 3, 6, 9]
    assert parse_frames("0:2,5,-1", 10).tolist() == [0, 1, 5, 9]
    assert parse_frames("-3:", 10).tolist() == [7, 8, 9]
    assert parse_frames([1, -2], 10).tolist() == [1, 8]
    assert parse_frames(None, 10) is None
    for bad in ("10", "-11", "a", "0:0", "1:2:0", "0:20", ""):
        with pytest.raises(FrameSelectionError):
            parse_frames(bad, 10)


def test_run_frames_average_blocks_background_frames(at, capsys):
    assert main(["run", "meas.mdf", "--sm", "sm.mdf", "--method", "pinv", "--frames", "0:4,-1", "-o", "f.mdf"]) == 0
    rec = mdf_io.read_reconstruction("f.mdf")
    assert rec.images.shape == (5, 8, 10)
    assert rec.parameters["frames"]["frame_indices"] == [0, 1, 2, 3, 5]
    assert main(["run", "meas.mdf", "--sm", "sm.mdf", "--method", "pinv", "--frames", "0:4", "--average-blocks", "2",
                 "--background-frames", "0:2", "-o", "b.mdf"]) == 0
    rec = mdf_io.read_reconstruction("b.mdf")
    assert rec.images.shape == (2, 8, 10) and rec.parameters["frames"]["frame_indices"] == [0, 2]
    assert main(["run", "meas.mdf", "--sm", "sm.mdf", "--method", "pinv", "--average", "-o", "a.mdf"]) == 0
    assert mdf_io.read_reconstruction("a.mdf").images.shape == (1, 8, 10)
    capsys.readouterr()
    for bad in (["--frames", "6"], ["--frames", "0:3", "--average-blocks", "2"], ["--background-frames", "4"]):
        assert main(["run", "meas.mdf", "--sm", "sm.mdf", "--method", "pinv", *bad, "-o", "bad.mdf"]) == 2
        err = [ln for ln in capsys.readouterr().err.splitlines() if "error" in ln]
        assert len(err) == 1 and err[0].startswith("mpirecon: error: meas.mdf"), err
    assert not os.path.exists("bad.mdf")
    from mpirecon.loading import load_measurement_for, load_system_matrix
    sm = load_system_matrix("sm.mdf")
    assert load_measurement_for("meas.mdf", sm, frames="1:3").data.shape[0] == 2
    assert load_measurement_for("meas.mdf", sm, frames=[0, -1]).frame_indices.tolist() == [0, 5]


def test_provenance_own_uuid_inputs_and_info(at, capsys):
    assert main(["run", "meas.mdf", "--sm", "sm.mdf", "--method", "kaczmarz", "--param", "lam=0.02",
                 "--frames", "0:3", "-o", "prov.mdf"]) == 0
    out = capsys.readouterr()
    meas_uuid = mdf_io.MDFFile("meas.mdf").header.general.uuid
    sm_uuid = mdf_io.MDFFile("sm.mdf").header.general.uuid
    rec_file = mdf_io.MDFFile("prov.mdf")
    assert rec_file.header.general.uuid not in (meas_uuid, sm_uuid)
    inputs = rec_file.read_reconstruction().parameters["inputs"]
    assert inputs["measurement"] == {"path": "meas.mdf", "uuid": meas_uuid}
    assert inputs["system_matrix"] == {"path": "sm.mdf", "uuid": sm_uuid}
    # timing: set-up and per-frame solve reported separately
    assert "set-up" in out.out and "ms/frame over the other 2 frame(s)" in out.out
    assert main(["info", "prov.mdf"]) == 0
    info = capsys.readouterr().out
    assert "method:      kaczmarz" in info and "lam=0.02" in info and "snr_threshold=1.5" in info
    assert f"measurement: meas.mdf (uuid {meas_uuid})" in info and f"(uuid {sm_uuid})" in info
    assert "frames:      average=False" in info and "frames=0:3" in info
