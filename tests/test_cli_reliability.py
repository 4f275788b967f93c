"""Regression tests of the reliability issue: one rule for every output (refuse existing unless
--overwrite, never an input, -o and --png as one outcome), no output after a failure, signals
during a write, bad input through the CLI on one line (exit 2), internal errors (exit 1)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mdf_io import MDFError, MDFWriteError, read_reconstruction

from mdf_cases import sha256
from mpirecon.cli.main import main
from mpirecon.io.outputs import check_outputs, writing


RUN = ["run", "meas.mdf", "--sm", "cal.mdf", "--method", "pinv", "--snr-threshold", "0"]


def one_error(capsys, *names) -> str:
    """The single 'mpirecon: error:' line of stderr (the last line), which names ``names``."""
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("mpirecon:")]
    assert len(errors) == 1 and lines[-1] == errors[0] and "Traceback" not in "".join(lines), lines
    for name in names:
        assert name in errors[0], errors[0]
    return errors[0]


def listing(folder) -> set:
    return set(os.listdir(folder))


# -- run -o / --png -----------------------------------------------------------------------------

@pytest.mark.parametrize("extra,named", [
    (["-o", "r.mdf", "--png", "r.mdf"], "r.mdf"),
    (["-o", "r.mdf", "--png", "./r.mdf", "--overwrite"], "r.mdf"),
    (["-o", "r.mdf", "--png", "meas.mdf", "--overwrite"], "meas.mdf"),
    (["-o", "r.mdf", "--png", "cal.mdf"], "cal.mdf"),
    (["-o", "r.mdf", "--png", "nofolder/r.png"], "r.png"),
    (["-o", "meas.mdf", "--overwrite"], "meas.mdf"),
])
def test_run_png_follows_the_output_rules(tiny_files, capsys, extra, named):
    before = listing(tiny_files), sha256("meas.mdf"), sha256("cal.mdf")
    assert main(RUN + extra) == 2
    one_error(capsys, named)
    assert (listing(tiny_files), sha256("meas.mdf"), sha256("cal.mdf")) == before


def test_run_refuses_an_existing_png_unless_overwrite(tiny_files, capsys):
    (tiny_files / "r.png").write_bytes(b"keep me")
    assert main(RUN + ["-o", "r.mdf", "--png", "r.png"]) == 2
    one_error(capsys, "r.png", "--overwrite")
    assert (tiny_files / "r.png").read_bytes() == b"keep me" and not (tiny_files / "r.mdf").exists()
    (tiny_files / "r.mdf").write_bytes(b"old")
    assert main(RUN + ["-o", "r.mdf", "--png", "r.png", "--overwrite"]) == 0
    assert (tiny_files / "r.png").read_bytes()[:4] == b"\x89PNG" and read_reconstruction("r.mdf").images.shape[0] == 3


def test_run_hard_link_to_an_input_is_refused(tiny_files, capsys):
    os.link("meas.mdf", "alias.mdf")
    assert main(RUN + ["-o", "alias.mdf", "--overwrite"]) == 2
    one_error(capsys, "alias.mdf", "input")


def test_png_that_cannot_be_written_leaves_no_output(tiny_files, capsys, monkeypatch):
    import mpirecon.viz.figures

    def broken(*args, **kwargs):
        raise RuntimeError("renderer\nexploded")

    monkeypatch.setattr(mpirecon.viz.figures, "image_png", broken)
    before = listing(tiny_files)
    assert main(RUN + ["-o", "r.mdf", "--png", "r.png"]) == 1
    assert "internal error" in one_error(capsys, "renderer exploded")
    assert listing(tiny_files) == before


def test_an_output_created_meanwhile_is_not_clobbered_and_nothing_is_published(tmp_path):
    a, b = tmp_path / "a.mdf", tmp_path / "a.png"
    check_outputs({"-o": a, "--png": b})
    with pytest.raises(MDFWriteError, match="a.png"):
        with writing([a, b]) as tmps:
            for t in tmps:
                t.write_text("new")
            b.write_text("other process")  # the other writer wins the name
    assert b.read_text() == "other process" and not a.exists() and listing(tmp_path) == {"a.png"}


def test_writer_errors_name_the_final_file_not_the_temporary(tmp_path):
    from mdf_io import Reconstruction, write_reconstruction

    rec = Reconstruction(images=np.full((1, 2, 3), np.nan), grid=(3, 2, 1), fov=np.ones(3), center=np.zeros(3),
                         method="x", parameters={})
    with pytest.raises(MDFError) as info:
        with writing([tmp_path / "r.mdf"]) as (tmp,):
            write_reconstruction(tmp, rec, overwrite=True)
    assert str(tmp_path / "r.mdf") in str(info.value) and ".tmp" not in str(info.value)
    assert listing(tmp_path) == set()


# -- failures after reading: all-background, frames --------------------------------------------

@pytest.mark.parametrize("extra", [[], ["--average"], ["--no-background-correction"]])
def test_all_background_measurement_is_a_one_line_error(tiny_files, capsys, extra):
    import h5py
    with h5py.File("meas.mdf", "a") as f:
        f["measurement/isBackgroundFrame"][...] = 1
    assert main(RUN + ["-o", "r.mdf", "--png", "r.png"] + extra) == 2
    one_error(capsys, "meas.mdf", "field '/measurement/isBackgroundFrame'", "background")
    assert not (tiny_files / "r.mdf").exists() and not (tiny_files / "r.png").exists()


@pytest.mark.parametrize("frames", [["7"], ["3"], ["0,99"]])  # comma list: the --frames syntax
def test_frames_out_of_range(tiny_files, capsys, frames):
    assert main(RUN + ["-o", "r.mdf", "--frames", *frames]) == 2
    one_error(capsys, "meas.mdf", "field '")
    assert not (tiny_files / "r.mdf").exists()


# -- signals during a write ------------------------------------------------------------------------

SLOW = textwrap.dedent("""
    import sys, time
    import mdf_io.writer, mpirecon.viz.figures
    stage = sys.argv[1]
    def slow(original):
        def wrapper(*args, **kwargs):
            if stage == "png":
                sys.stderr.write("WRITING\\n"); sys.stderr.flush(); time.sleep(60)
            result = original(*args, **kwargs)
            if stage == "hdf5":  # inside the open HDF5 file
                sys.stderr.write("WRITING\\n"); sys.stderr.flush(); time.sleep(60)
            return result
        return wrapper
    mdf_io.writer.schema.write_header = slow(mdf_io.writer.schema.write_header)
    mpirecon.viz.figures.save_figure = slow(mpirecon.viz.figures.save_figure)
    from mpirecon.cli.main import main
    sys.exit(main(sys.argv[2:]))
""")


@pytest.mark.parametrize("stage,sig,code", [("hdf5", signal.SIGTERM, 143), ("hdf5", signal.SIGINT, 130),
                                            ("png", signal.SIGTERM, 143), ("png", signal.SIGINT, 130)])
def test_signal_while_writing_leaves_nothing(tiny_files, stage, sig, code):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, "-c", SLOW, stage, *RUN, "-o", "r.mdf", "--png", "r.png"],
                            cwd=tiny_files, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # not ignored (nohup, &)
    try:
        for line in proc.stderr:
            if line.startswith("WRITING"):
                break
        assert any(n.startswith(".") for n in os.listdir(tiny_files)), "no temporary file while writing"
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == code
    finally:
        proc.kill()
        proc.wait()
    assert listing(tiny_files) == {"meas.mdf", "cal.mdf"}


# -- every writer -----------------------------------------------------------------------------------

def test_simulate_outputs(tiny_files, capsys):
    assert main(["simulate", "measurement", "--sm", "cal.mdf", "--phantom", "shape", "-o", "cal.mdf",
                 "--overwrite"]) == 2
    one_error(capsys, "cal.mdf", "input")
    (tiny_files / "x.mdf").write_bytes(b"keep")
    assert main(["simulate", "system-matrix", "--grid", "4", "4", "-o", "x.mdf"]) == 2
    one_error(capsys, "x.mdf", "--overwrite")
    assert (tiny_files / "x.mdf").read_bytes() == b"keep"


@pytest.mark.parametrize("command", [["train", "--sm", "cal.mdf"], ["train-denoiser"]])
@pytest.mark.parametrize("existing", ["w.pt", "w.pt.ckpt"])
def test_train_refuses_existing_weights_or_checkpoint(tiny_files, capsys, command, existing):
    (tiny_files / existing).write_bytes(b"keep")
    assert main(command + ["-o", "w.pt", "--epochs", "1"]) == 2
    one_error(capsys, existing)
    assert (tiny_files / existing).read_bytes() == b"keep" and listing(tiny_files) == {"meas.mdf", "cal.mdf", existing}


@pytest.mark.parametrize("command", [["bench", "--sm", "cal.mdf", "--methods", "pinv"], ["demo"]])
def test_bench_and_demo_refuse_a_folder_that_is_not_empty(tiny_files, capsys, command):
    (tiny_files / "out").mkdir()
    (tiny_files / "out" / "notes.txt").write_text("mine")
    assert main(command + ["-o", "out", "--quiet"]) == 2
    one_error(capsys, "out", "--overwrite")
    assert listing(tiny_files / "out") == {"notes.txt"}


def test_bench_output_folder_rules(tiny_files, capsys):
    args = ["bench", "--sm", "cal.mdf", "--methods", "pinv", "--snr", "30", "--test-samples", "2",
            "--val-samples", "1", "--protocols", "paper", "--no-tuning", "--quiet", "-o", "out"]
    assert main(args) == 0
    assert listing(tiny_files / "out") == {"results.json", "results.md", "examples_paper.png", "psnr_vs_snr_paper.png",
                                          "examples"}  # examples/: the example images, kept for --resume
    assert main(args) == 2  # not empty now
    assert main(args + ["--overwrite"]) == 0
    assert main(["bench", "--sm", "cal.mdf", "--test-samples", "0", "-o", "new"]) == 2
    assert not (tiny_files / "new").exists()


@pytest.mark.slow
def test_demo_publishes_its_files_together(tmp_path, monkeypatch):
    import mpirecon.demo

    monkeypatch.setattr(mpirecon.demo, "_demo_weights", lambda *args: {})  # no DERnet training here
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "--quiet"]) == 0
    names = listing(out)
    assert {"system_matrix.mdf", "comparison.png", "metrics.md", "metrics.json"} <= names
    assert not any(n.startswith(".") for n in names) and "pinv" in (out / "metrics.md").read_text()


def test_demo_that_fails_half_way_publishes_nothing(tmp_path, monkeypatch, capsys):
    import mpirecon.demo

    def half_way(tmp, *args):
        tmp["system_matrix.mdf"].write_text("written")
        raise RuntimeError("training\nfailed")

    monkeypatch.setattr(mpirecon.demo, "_demo_into", half_way)
    assert main(["demo", "-o", str(tmp_path / "demo"), "--quiet"]) == 1
    one_error(capsys, "internal error", "training failed")
    assert listing(tmp_path / "demo") == set()


def test_save_weights_and_figures_refuse_existing_and_leave_no_temporary(tmp_path):
    import torch

    from mpirecon.viz.figures import _pyplot, save_figure
    from mpirecon.learning.weights import WeightsError, load_weights, save_weights

    w = tmp_path / "w.pt"
    save_weights(w, "k", {"a": torch.ones(2)}, {"m": 1})
    with pytest.raises(WeightsError):
        save_weights(w, "k", {"a": torch.zeros(2)}, {})
    assert load_weights(w, "k")[1] == {"m": 1}
    fig = _pyplot().figure()
    with pytest.raises(MDFWriteError):
        save_figure(fig, w)
    with pytest.raises(Exception, match="ickle|lambda"):  # torch.save fails half-way
        save_weights(tmp_path / "v.pt", "k", {"a": torch.ones(1), "f": lambda: 0}, {})
    assert listing(tmp_path) == {"w.pt"}


def test_no_temporary_file_code_outside_the_atomic_helper():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    offenders = []
    for package in ("mdf_io", "mpirecon", "baselines", "mpirecon_dernet", "examples"):
        for folder, _, names in os.walk(os.path.join(root, package)):
            for name in (n for n in names if n.endswith(".py")):
                path = os.path.join(folder, name)
                text = open(path).read()
                if path != os.path.join(root, "mdf_io", "atomic.py"):
                    offenders += [f"{path}: {w}" for w in ("mkstemp", "NamedTemporaryFile", "os.replace(",
                                                           "os.rename(") if w in text]
    assert offenders == []
