"""Fuzzing the command line: seeded mutations of small MDF files (tests/cli_fuzz_cases.py)
through ``mpirecon run`` and ``mpirecon info``, in forked children (memory cap, timeout) and a
few real subprocesses of the console script (``RLIMIT_AS`` 2 GB). For every call: exit 0 or 2,
no traceback, an error is ONE line naming the file, no output after a failure, inputs
unchanged, within the memory cap and 60 s. Files that differ only in layout (layout twins) give
the same reconstruction; files a run must refuse are refused; metadata-only mutations that
are accepted leave the result unchanged.

The long campaign (>= 2,000 files, >= 3,000 calls) is ``pytest -m slow -k fuzz -s``.
"""
from __future__ import annotations

import random
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from mdf_io import read_reconstruction

from cli_fuzz_cases import SEED, mutate, problems, run_forked, run_subprocess, twins
from mdf_cases import sha256

#: a call takes about 0.1 s; one still running after this is a hang (the bound asked for is 60 s)
FORKED_TIMEOUT = 20.0
RUN = ["run", "meas.mdf", "--sm", "cal.mdf", "--method", "pinv", "--snr-threshold", "0", "-o", "r.mdf"]


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """Layout twins, and the modules a call imports loaded once (the memory cap counts growth)."""
    import matplotlib.pyplot  # noqa: F401 - imported here, not inside the capped children

    from mpirecon.cli.main import main

    folder = tmp_path_factory.mktemp("twins")
    found = twins(folder)
    meas, cal = found["base"]
    assert main(["run", str(meas), "--sm", str(cal), "--method", "pinv", "--snr-threshold", "0",
                 "-o", str(folder / "warm.mdf"), "--png", str(folder / "warm.png")]) == 0
    return found


def campaign(root: Path, pairs: dict, files: int, *, seed: int, png_every: int = 4, subprocess_every: int = 0):
    """Mutate ``files`` copies of the base pair, call run (+ --png every ``png_every``) and info
    on each; returns (figures, failures)."""
    meas0, cal0 = pairs["base"]
    base_images = read_reconstruction(meas0.parent / "warm.mdf").images
    rng = random.Random(seed)
    stats, failures = Counter(), []
    i = 0
    while stats["files"] < files:
        i += 1
        case_dir = root / f"case{i}"
        case_dir.mkdir()
        meas, cal = case_dir / "meas.mdf", case_dir / "cal.mdf"
        shutil.copy(meas0, meas)
        shutil.copy(cal0, cal)
        case = mutate(rng.choice([meas, cal]), rng)
        if case is None:
            shutil.rmtree(case_dir)
            continue
        stats["files"] += 1
        label = f"#{i} {case.target} {case.kind} {case.field}"
        inputs = {meas: sha256(meas), cal: sha256(cal)}
        data = meas.stat().st_size + cal.stat().st_size
        png = stats["files"] % png_every == 0
        outputs = ["r.mdf"] + (["r.png"] if png else [])
        use_subprocess = subprocess_every and stats["files"] % subprocess_every == 0
        for argv, outs in ((RUN + (["--png", "r.png"] if png else []), outputs),
                           (["info", case.target + ".mdf"], [])):
            out = (run_subprocess(argv, case_dir) if use_subprocess
                   else run_forked(argv, case_dir, data_bytes=data, timeout=FORKED_TIMEOUT))
            stats["calls"] += 1
            stats["subprocess calls" if use_subprocess else "in-process calls"] += 1
            stats[f"{argv[0]} exit {out.rc}"] += 1
            bad = problems(out, case_dir, inputs, outs)
            for b in bad:
                stats[b.split(":")[0].split(" (")[0]] += 1
                failures.append(f"{label}: {argv[0]}: {b}")
            if out.rc is None:
                break  # the next call would hang as well
            if argv[0] != "run" or out.rc != 0:
                continue
            if case.must_refuse:
                stats["accepted invalid"] += 1
                failures.append(f"{label}: accepted invalid")
            elif case.inert and not np.allclose(read_reconstruction(case_dir / "r.mdf").images, base_images):
                stats["wrong results"] += 1
                failures.append(f"{label}: wrong result")
        shutil.rmtree(case_dir)
    return stats, failures


def check_twins(pairs: dict, root: Path) -> list[str]:
    """Reconstruct every layout twin; names of those differing from the base."""
    from mpirecon.cli.main import main

    wrong = []
    base = read_reconstruction(next(iter(pairs.values()))[0].parent / "warm.mdf").images
    for i, (name, (meas, cal)) in enumerate(pairs.items()):
        out = root / f"twin{i}.mdf"
        rc = main(["run", str(meas), "--sm", str(cal), "--method", "pinv", "--snr-threshold", "0", "-o", str(out)])
        if rc != 0 or not np.allclose(read_reconstruction(out).images, base, rtol=1e-6, atol=1e-9):
            wrong.append(name)
    return wrong


def test_layout_twins_give_the_same_reconstruction(pairs, tmp_path):
    assert len(pairs) >= 9
    assert check_twins(pairs, tmp_path) == []


def test_cli_fuzz_short(pairs, tmp_path):
    stats, failures = campaign(tmp_path, pairs, 24, seed=SEED, subprocess_every=3)
    assert failures == [], "\n".join(failures[:20])
    assert stats["subprocess calls"] >= 15 and stats["in-process calls"] >= 30
    assert stats["run exit 2"] > 0 and stats["run exit 0"] > 0  # both outcomes exercised


@pytest.mark.slow
def test_cli_fuzz_campaign(pairs, tmp_path):
    stats, failures = campaign(tmp_path, pairs, 2000, seed=SEED + 1, png_every=8, subprocess_every=100)
    twins_wrong = check_twins(pairs, tmp_path)
    stats["layout twin pairs"] = len(pairs)
    stats["wrong results"] += len(twins_wrong)
    print("\nCLI fuzz campaign:", dict(sorted(stats.items())))
    for line in failures[:50]:
        print("  ", line)
    assert stats["files"] >= 2000 and stats["calls"] >= 3000
    assert failures == [] and twins_wrong == []
