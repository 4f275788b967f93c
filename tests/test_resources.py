"""Running out of memory or disk is an expected condition: a one-line error, exit 2, no file left.

The disk-full tests write to a 200 kB tmpfs (mounted here; skipped where mounting is not allowed).
"""
import os
import subprocess

import numpy as np
import pytest

from mdf_io import MDFDiskFullError, atomic_output
from mpirecon import load_reconstructor
from mpirecon.cli.main import main
from mpirecon.memory import MemoryBudgetError, parse_size, plan_precision
from mpirecon.registry import get_reconstructor_class

CLASSICAL = ["pinv", "kaczmarz", "cgnr", "admm_l1", "admm_tv", "admm_l1tv"]


@pytest.fixture()
def tiny_fs(tmp_path):
    """A 200 kB tmpfs folder (root only; skipped where mount is not permitted)."""
    folder = tmp_path / "fs"
    folder.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(folder)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def one_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    lines = [line for line in err if line.startswith("mpirecon: ")]
    assert len(lines) == 1, err
    return lines[0]


def assert_disk_full(rc, capsys, out) -> str:
    line = one_error(capsys)
    assert rc == 2, line
    assert line.startswith(f"mpirecon: error: cannot write {out}: no space left on device (needs ")
    assert "internal error" not in line
    return line


@pytest.fixture(scope="module")
def many_frames(sim_files):
    """``meas400.mdf``: 400 frames of the 10 x 8 calibration in ``sim_files``."""
    path = sim_files / "meas400.mdf"
    if not path.exists():
        assert main(["simulate", "measurement", "--sm", str(sim_files / "sm.mdf"), "--phantom", "shape",
                     "--frames", "400", "-o", str(path)]) == 0
    return path


def test_run_on_a_full_device(sim_files, many_frames, tiny_fs, capsys):
    out = tiny_fs / "rec.mdf"
    # 400 frames of 80 voxels: the images alone need 256 kB > 200 kB, refused before the work
    rc = main(["run", str(many_frames), "--sm", str(sim_files / "sm.mdf"), "--method", "pinv", "-o", str(out)])
    assert "needs about 1.2 MB" in assert_disk_full(rc, capsys, out)
    assert not any(tiny_fs.iterdir())
    (tiny_fs / "filler").write_bytes(b"\0" * 190_000)  # now even one frame's file does not fit
    rc = main(["run", str(sim_files / "meas.mdf"), "--sm", str(sim_files / "sm.mdf"), "--method", "pinv",
               "-o", str(out), "--png", str(tiny_fs / "rec.png")])
    assert_disk_full(rc, capsys, out)
    assert [p.name for p in tiny_fs.iterdir()] == ["filler"]


def test_simulate_on_a_full_device(tiny_fs, capsys):
    out = tiny_fs / "sm.mdf"
    rc = main(["simulate", "system-matrix", "-o", str(out), "--grid", "19", "19"])
    assert_disk_full(rc, capsys, out)
    assert not any(tiny_fs.iterdir())


def test_export_and_bench_on_a_full_device(sim_files, many_frames, tiny_fs, capsys, tmp_path):
    rec = tmp_path / "rec.mdf"
    assert main(["run", str(many_frames), "--sm", str(sim_files / "sm.mdf"), "--method", "pinv",
                 "-o", str(rec), "--frames", "0:40"]) == 0
    capsys.readouterr()
    for name in ("movie.gif", "frames.png"):
        out = tiny_fs / name
        rc = main(["export", str(rec), "-o", str(out)])
        line = one_error(capsys)
        assert rc == 2 and "no space left on device (needs" in line and "internal error" not in line, line
        assert not any(tiny_fs.iterdir())
    out = tiny_fs / "bench"
    (tiny_fs / "filler").write_bytes(b"\0" * 180_000)  # the bench's report does not fit the rest
    rc = main(["bench", "--sm", str(sim_files / "sm.mdf"), "--methods", "pinv", "--snr", "30", "--test-samples",
               "3", "--val-samples", "2", "--protocols", "paper", "--quiet", "-o", str(out)])
    line = one_error(capsys)
    assert rc == 2 and "no space left on device (needs" in line, line
    assert not out.exists()
    (tiny_fs / "filler").unlink()


def test_atomic_output_turns_a_full_device_into_one_error(tiny_fs):
    out = tiny_fs / "big.bin"
    with pytest.raises(MDFDiskFullError, match=r"cannot write .*big.bin: no space left on device \(needs more than"):
        with atomic_output(out) as tmp:
            tmp.write_bytes(b"\0" * 400_000)
    with pytest.raises(MDFDiskFullError, match=r"needs about 1.0 MB"):  # known size: refused before writing
        with atomic_output(out, needs=2 ** 20):
            raise AssertionError("not reached")
    assert not any(tiny_fs.iterdir())


def test_train_checks_its_space_before_training(sim_files, tiny_fs, capsys):
    pytest.importorskip("torch")
    out = tiny_fs / "den.pt"
    rc = main(["train", "--method", "ppmpi", "--sm", str(sim_files / "sm.mdf"), "-o", str(out), "--samples", "32",
               "--epochs", "1", "--batch-size", "16", "--quiet"])
    assert_disk_full(rc, capsys, out)
    assert not any(tiny_fs.iterdir())


# -- memory ---------------------------------------------------------------------------------------
def test_parse_size():
    assert parse_size("4G") == 4 * 2 ** 30 and parse_size("500M") == 500 * 2 ** 20
    assert parse_size("2.5GB") == int(2.5 * 2 ** 30) and parse_size("1024") == 1024
    for bad in ("4x", "", "-1G", "0"):
        with pytest.raises(ValueError):
            parse_size(bad)


@pytest.mark.parametrize("method", CLASSICAL + ["ppmpi"])
def test_tiny_memory_limit_refuses_before_reading(method, sim_files, tmp_path, capsys, monkeypatch):
    import mdf_io.system_matrix
    monkeypatch.setattr(mdf_io.system_matrix, "read_rows_into", None)  # reading the matrix would fail loudly
    out = tmp_path / "rec.mdf"
    rc = main(["run", str(sim_files / "meas.mdf"), "--sm", str(sim_files / "sm.mdf"), "--method", method,
               "-o", str(out), "--memory-limit", "2M"])
    line = one_error(capsys)
    assert rc == 2 and line.startswith(f"mpirecon: error: {method}: needs about "), line
    assert "memory budget 2 MB (--memory-limit)" in line and "rows x 80 voxels" in line
    assert not out.exists()


def test_memory_limit_picks_float32_when_float64_does_not_fit():
    cls = get_reconstructor_class("kaczmarz")
    big = plan_precision(cls, {}, 5100, 50653, 2, 2 ** 40, "test")
    assert big.precision == "float64" and big.strategy == "large"
    f64 = cls.memory_estimate(cls._validated({}), 5100, 50653, 2).total
    f32 = cls.memory_estimate(cls._validated({"dtype": "float32"}), 5100, 50653, 2).total
    assert f32 < f64
    assert plan_precision(cls, {}, 5100, 50653, 2, (f32 + f64) // 2, "test").precision == "float32"
    with pytest.raises(MemoryBudgetError, match="kaczmarz: needs about .* memory budget"):
        plan_precision(cls, {"dtype": "float64"}, 5100, 50653, 2, (f32 + f64) // 2, "test")


def test_the_compressed_strategy_works_in_float32_unless_told():
    cls = get_reconstructor_class("admm_l1")
    est = plan_precision(cls, {}, 5100, 50653, 2, 2 ** 40, "test")
    assert est.strategy == "compressed" and est.precision == "float32"
    assert plan_precision(cls, {"dtype": "float64"}, 5100, 50653, 2, 2 ** 40, "test").precision == "float64"
    small = plan_precision(cls, {}, 700, 361, 2, 2 ** 40, "test")  # 19x19: dense, float64
    assert small.strategy == "dense" and small.precision == "float64"


def test_run_within_a_limit_records_its_plan(sim_files, tmp_path, capsys):
    from mdf_io import read_reconstruction
    out = tmp_path / "rec.mdf"
    assert main(["run", str(sim_files / "meas.mdf"), "--sm", str(sim_files / "sm.mdf"), "--method", "kaczmarz",
                 "-o", str(out), "--memory-limit", "4G"]) == 0
    plan = read_reconstruction(out).parameters["memory"]
    assert plan["precision"] == "float64" and plan["budget"] == "--memory-limit"
    assert 0 < plan["estimate_bytes"] <= plan["budget_bytes"] and plan["peak_bytes"] > 0


def test_out_of_memory_is_an_error_not_a_bug(sim_files, tmp_path, capsys, monkeypatch):
    from baselines.pinv import PseudoInverse

    def no_memory(self, spectra):
        raise MemoryError("Unable to allocate 37.2 GiB for an array with shape (50653, 100000)")
    monkeypatch.setattr(PseudoInverse, "_solve", no_memory)
    out = tmp_path / "rec.mdf"
    rc = main(["run", str(sim_files / "meas.mdf"), "--sm", str(sim_files / "sm.mdf"), "--method", "pinv",
               "-o", str(out)])
    line = one_error(capsys)
    assert rc == 2 and line.startswith("mpirecon: error: run: out of memory (MemoryError: Unable to allocate"), line
    assert not out.exists()


def test_kaczmarz_keeps_one_copy_of_the_matrix(small_sm):
    """The numpy sweeps read the system matrix's own rows: no copy of it in the operator's cache."""
    from mdf_io import SystemMatrix
    sm = SystemMatrix.from_arrays(small_sm.matrix.copy(), grid=small_sm.grid)  # a fresh cache
    rec = load_reconstructor("kaczmarz", sm, iterations=2)
    rec.reconstruct(sm.matrix[:, :1].T)
    for value in rec.operator._cache.values():
        for block in value if isinstance(value, list) else []:
            at = block[2]
            assert np.shares_memory(at, sm.matrix)
    assert not any(isinstance(v, np.ndarray) and v.size >= sm.matrix.size for v in rec.operator._cache.values())
