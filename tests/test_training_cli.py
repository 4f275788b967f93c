"""`mpirecon train --method`, `mpirecon methods [NAME]` and the robustness of weights loading."""
import subprocess
import sys

import pytest
import torch

import mdf_io
from mpirecon import ReconstructorError, load_reconstructor
from mpirecon.cli.main import main
from mpirecon.learning.weights import WeightsError, load_weights, save_weights

TINY_DENOISER = ["--samples", "32", "--epochs", "1", "--batch-size", "16", "--set", "features=4",
                 "--set", "blocks=1", "--set", "layers=1", "--set", "growth=4", "--quiet"]


@pytest.fixture(scope="module")
def files(sim_files):
    return sim_files


def errors(capsys):
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("mpirecon: error:")]


def test_train_ppmpi_then_run_with_its_denoiser(files, capsys):
    den = files / "den.pt"
    assert main(["train", "--method", "ppmpi", "--sm", str(files / "sm.mdf"), "-o", str(den), *TINY_DENOISER]) == 0
    _, meta = load_weights(den, "ppmpi-denoiser")
    assert meta["training"]["grid"] == [10, 8] and meta["architecture"]["features"] == 4
    assert not (files / "den.pt.ckpt").exists()  # removed after a successful run
    out = files / "rec.mdf"
    assert main(["run", str(files / "meas.mdf"), "--sm", str(files / "sm.mdf"), "--method", "ppmpi", "--weights",
                 str(den), "--param", "iterations=2", "-o", str(out)]) == 0
    assert mdf_io.read_reconstruction(out).images.shape == (1, 8, 10)


def test_train_resumes_its_checkpoint(files, capsys):
    out = files / "den_resume.pt"
    args = ["train", "--method", "ppmpi", "--sm", str(files / "sm.mdf"), "-o", str(out), *TINY_DENOISER,
            "--epochs", "2"]
    assert main(args + ["--max-minutes", "1e-6", "--set", "keep_checkpoint=true"]) == 0
    _, meta = load_weights(out, "ppmpi-denoiser")
    assert len(meta["history"]) == 1 and (files / "den_resume.pt.ckpt").exists()
    assert main(args + ["--resume", str(files / "den_resume.pt.ckpt")]) == 0  # its own output may exist
    _, meta = load_weights(out, "ppmpi-denoiser")
    assert len(meta["history"]) == 2 and not (files / "den_resume.pt.ckpt").exists()


def test_train_refuses_existing_output_inputs_and_untrainable_methods(files, capsys):
    existing = files / "existing.pt"
    existing.write_bytes(b"precious")
    assert main(["train", "--method", "ppmpi", "--sm", str(files / "sm.mdf"), "-o", str(existing),
                 *TINY_DENOISER]) == 2
    err = errors(capsys)
    assert len(err) == 1 and "exists" in err[0] and existing.read_bytes() == b"precious"
    assert main(["train", "--sm", str(files / "sm.mdf"), "-o", str(files / "sm.mdf"), "--overwrite"]) == 2
    assert "input" in errors(capsys)[0]
    assert main(["train", "--method", "pinv", "--sm", str(files / "sm.mdf"), "-o", str(files / "p.pt")]) == 2
    err = errors(capsys)
    assert len(err) == 1 and "not trainable" in err[0] and not (files / "p.pt").exists()
    assert main(["train", "--method", "ppmpi", "--sm", str(files / "sm.mdf"), "-o", str(files / "q.pt"),
                 "--snr-min", "3"]) == 2  # a DERnet shortcut ppmpi does not take
    err = errors(capsys)
    assert len(err) == 1 and "snr_min" in err[0] and "noise_std" in err[0]


def test_methods_lists_without_importing_torch_and_describes_one(capsys):
    code = "import sys; from mpirecon.cli.main import main; main(['methods']); print('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "dernet" in r.stdout and "pinv" in r.stdout and r.stdout.strip().endswith("False")
    assert main(["methods", "dernet"]) == 0
    out = capsys.readouterr().out
    assert "batch_size (int, default 1024, >= 1)" in out and "needs weights: yes" in out
    assert "trainable (mpirecon train): yes" in out and "resample_phantoms" in out
    assert main(["methods", "nope"]) == 2


@pytest.fixture(scope="module")
def dernet_weights(small_sm, tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "dernet.pt"
    from mpirecon.registry import get_reconstructor_class
    get_reconstructor_class("dernet").train(small_sm, path, dict(samples=32, val_samples=16, epochs=1, c5=8,
                                                                 max_minutes=None), progress=False)
    return load_weights(path, "dernet")


@pytest.mark.parametrize("change", ["drop kappa", "drop rows", "drop hyperparameters", "kappa text",
                                    "c5 text", "grid text", "rows not a dict"])
def test_broken_dernet_metadata_names_the_file(dernet_weights, tmp_path, change):
    state, meta = dernet_weights
    meta = dict(meta, hyperparameters=dict(meta["hyperparameters"]))
    what, _, how = change.partition(" ")
    if what == "drop":
        del meta[how]
    elif what == "rows":
        meta["rows"] = [1, 2]
    elif what in meta:
        meta[what] = "abc"
    else:
        meta["hyperparameters"][what] = "abc"
    path = tmp_path / "broken.pt"
    save_weights(path, "dernet", state, meta)
    with pytest.raises(ReconstructorError, match="broken.pt"):
        load_reconstructor("dernet", weights=path)


@pytest.mark.parametrize("content", [b"", b"garbage" * 10, "plain dict", "tensor dict", "no architecture",
                                     "metadata list"])
def test_broken_weights_files_name_the_file(tmp_path, content):
    path = tmp_path / "bad.pt"
    if content == "plain dict":
        torch.save({"a": 1, "b": "x"}, path)
    elif content == "tensor dict":
        torch.save({"conv0.weight": torch.zeros(2, 1, 3, 3)}, path)
    elif content == "no architecture":
        save_weights(path, "ppmpi-denoiser", {}, {"noise_std": 0.1})
    elif content == "metadata list":
        torch.save({"format": "mpirecon-weights", "format_version": 1, "kind": "ppmpi-denoiser",
                    "state_dict": {}, "metadata_json": "[1, 2]"}, path)
    else:
        path.write_bytes(content)
    for method in ("ppmpi", "dernet"):
        with pytest.raises(ReconstructorError, match="bad.pt"):
            load_reconstructor(method, weights=path)
    if content == b"" or content == "metadata list":
        with pytest.raises(WeightsError, match="bad.pt"):
            load_weights(path, "ppmpi-denoiser")


def test_save_weights_refuses_to_overwrite(tmp_path):
    path = tmp_path / "w.pt"
    save_weights(path, "k", {}, {})
    with pytest.raises(WeightsError, match="exists"):
        save_weights(path, "k", {}, {})
    save_weights(path, "k", {"x": torch.ones(1)}, {}, overwrite=True)
    assert load_weights(path, "k")[0]["x"].item() == 1.0
