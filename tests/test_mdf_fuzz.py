"""Seeded mutation fuzzing of the MDF reader through the public Python API.

Every dataset and group of small files written by our own writer (calibrations and
measurements, time and frequency domain, ``fast_frame_axis`` True and False, a reconstruction)
is mutated (deleted, replaced by a group, retyped, reshaped, set to negative / zero / huge /
NaN values, duplicate or out-of-range indices, external or looping links, external storage,
never-written huge arrays); whole files are truncated or get flipped bytes. For every mutated
file, ``read_system_matrix``, ``read_measurement``, ``read_reconstruction`` and ``describe``
must either succeed or raise an ``MDFError`` whose message is one line naming the file, leave
the file's bytes unchanged, and return within a few seconds. A file breaking the spec in a way
the reader must notice (negative/zero/NaN/overflowing sizes, out-of-range or duplicate indices,
external storage or links) must not be read without an error.

The default run samples ~150 cases; ``pytest -m slow tests/test_mdf_fuzz.py -s`` runs the
larger campaign (3000 cases, >= 2000 mutated files) and prints its figures
(``MDF_FUZZ_ALL=1``: every mutation of every field, ~10500 cases). Cases run in a forked
worker, so a hang or a crash inside the HDF5 library is counted instead of stopping the run.
"""
from __future__ import annotations

import multiprocessing
import os
import queue
import random
import resource
import shutil
import signal
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import h5py
import pytest

from mdf_io import MDFError, describe, read_measurement, read_reconstruction, read_system_matrix

from mdf_cases import calibration, check_error, measurement, reconstruction, sha256
from mdf_mutations import FIELD_OPS, breaks_spec, flip, truncate

CALL_LIMIT_S = 5.0
CASE_LIMIT_S = 30.0
CALLS = (read_system_matrix, read_measurement, read_reconstruction, describe)

BASES = {
    "cal_fast_sel": lambda p: calibration(p, fast=True, selection=(4, 0, 2)),
    "cal_slow_perm": lambda p: calibration(p, fast=False, selection=None, permutation=True),
    "cal_gzip": lambda p: calibration(p, selection=(1, 3), compression="gzip"),
    "meas_td": lambda p: measurement(p, fourier=False, fast=False),
    "meas_td_fast": lambda p: measurement(p, fourier=False, fast=True, permutation=False),
    "meas_fd_sel": lambda p: measurement(p, fourier=True, fast=False, selection=(3, 1, 0)),
    "meas_fd_fast": lambda p: measurement(p, fourier=True, fast=True),
    "recon": reconstruction,
}

#: sizes the spec constrains (> 0, consistent with the data)

class Hang(BaseException):
    """A call ran past CALL_LIMIT_S (BaseException: no safety net may swallow it)."""



# -- the campaign ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    base: str
    op: str
    field: str = ""  # HDF5 path for field mutations; seed for file damage
    seed: int = 0

    def __str__(self):
        return f"{self.base}:{self.op}:{self.field or self.seed}"


def _inventory(path) -> list[tuple[str, bool]]:
    """(HDF5 path, is a group) of every object of a base file."""
    out = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: out.append(("/" + n, isinstance(o, h5py.Group))))
    return out


def all_cases(bases: dict[str, Path], n_file_damage: int) -> list[Case]:
    """Every applicable field mutation of every base, then ``n_file_damage`` seeded truncations
    and byte flips spread over the bases."""
    cases = []
    for base, path in bases.items():
        for name, is_group in _inventory(path):
            cases += [Case(base, op, name) for op, (_, groups, _) in FIELD_OPS.items()
                      if groups or not is_group]
    names = sorted(bases)
    for i in range(n_file_damage):
        cases.append(Case(names[i % len(names)], "truncate" if i % 3 == 0 else "flip", seed=i))
    return cases


def make_file(case: Case, bases: dict[str, Path], workdir: Path):
    """The mutated copy of the case's base (or None when the mutation does not apply)."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "case.mdf"
    shutil.copyfile(bases[case.base], path)
    if case.op in ("truncate", "flip"):
        (truncate if case.op == "truncate" else flip)(path, random.Random(case.seed))
        return path
    mutate = FIELD_OPS[case.op][0]
    with h5py.File(path, "a") as f:
        v = None if isinstance(f[case.field], h5py.Group) else f[case.field][()]
        applied = mutate(f, case.field, v, {"base": bases[case.base], "dir": workdir})
    return None if applied is False else path


def _alarm(signum, frame):
    raise Hang()


def run_case(case: Case, bases, workdir: Path, tally: Counter, failures: list) -> None:
    """Mutate, call every API function, and record the outcome in ``tally``/``failures``."""
    try:
        path = make_file(case, bases, workdir)
    except (ValueError, TypeError, OSError):  # h5py cannot store this mutation
        path = None
    if path is None:
        tally["not applicable"] += 1
        return
    tally["files"] += 1
    rule = FIELD_OPS[case.op][2] if case.op in FIELD_OPS else None
    digest = sha256(path)
    accepted = []
    for call in CALLS:
        tally["calls"] += 1
        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, 2 * CALL_LIMIT_S)
        t0 = time.perf_counter()
        try:
            call(path)
            accepted.append(call.__name__)
        except Hang:
            tally["hangs"] += 1
            failures.append(f"{case} {call.__name__}: hang")
        except MDFError as err:
            problems = check_error(err, path)
            tally["tracebacks" if err.unexpected else "bad messages"] += bool(problems)
            failures += [f"{case} {call.__name__}: {p}" for p in problems]
        except Exception as err:  # noqa: BLE001 - the point of the test
            tally["tracebacks"] += 1
            failures.append(f"{case} {call.__name__}: traceback {type(err).__name__}: {err}")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        elapsed = time.perf_counter() - t0
        tally["max call ms"] = max(tally["max call ms"], int(1000 * elapsed))
        if elapsed > CALL_LIMIT_S:
            tally["slow calls"] += 1
            failures.append(f"{case} {call.__name__}: {elapsed:.1f} s")
    accepted = [name for name in accepted if breaks_spec(rule, case.field, name)]
    if accepted:
        tally["accepted invalid"] += 1
        failures.append(f"{case}: invalid file accepted by {accepted}")
    if sha256(path) != digest:
        tally["modified inputs"] += 1
        failures.append(f"{case}: input file modified")


def _worker(bases, cases, start, workdir, out) -> None:
    """Child process: run ``cases[start:]``, reporting each case's start and outcome."""
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for i in range(start, len(cases)):
        out.put(("start", i))
        tally, failures = Counter({"max call ms": 0}), []
        run_case(cases[i], bases, workdir, tally, failures)
        out.put(("done", dict(tally), failures))
    out.put(("end", (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) // 1024))


def campaign(bases, cases, workdir: Path) -> tuple[Counter, list]:
    """Run ``cases`` in a forked worker; a case that blocks the worker for CASE_LIMIT_S
    (a hang inside HDF5 that no Python signal can interrupt) or kills it (a crash) is counted,
    and the campaign goes on with a new worker from the next case."""
    ctx = multiprocessing.get_context("fork")
    tally, failures = Counter({"max call ms": 0, "max RSS growth MB": 0}), []
    start = 0
    while start < len(cases):
        out = ctx.Queue()
        proc = ctx.Process(target=_worker, args=(bases, cases, start, workdir, out), daemon=True)
        proc.start()
        current, deadline = start, time.monotonic() + CASE_LIMIT_S
        while True:
            try:
                msg = out.get(timeout=0.2)
            except queue.Empty:
                if proc.is_alive() and time.monotonic() < deadline:
                    continue
                kind = "hangs" if proc.is_alive() else "crashes"
                proc.kill()
                proc.join(5)
                tally[kind] += 1
                tally["files"] += 1
                failures.append(f"{cases[current]}: {kind} (worker exit code {proc.exitcode})")
                start = current + 1
                break
            if msg[0] == "start":
                current, deadline = msg[1], time.monotonic() + CASE_LIMIT_S
            elif msg[0] == "done":
                for key, value in msg[1].items():
                    tally[key] = max(tally[key], value) if key.startswith("max") else tally[key] + value
                failures += msg[2]
            else:
                tally["max RSS growth MB"] = max(tally["max RSS growth MB"], msg[1])
                start = len(cases)
                break
        proc.join(5)
    tally["cases"] = len(cases)
    return tally, failures


def _report(tally: Counter) -> str:
    keys = ("cases", "files", "not applicable", "calls", "tracebacks", "hangs", "crashes", "slow calls",
            "accepted invalid", "bad messages", "modified inputs", "max call ms", "max RSS growth MB")
    return "MDF fuzz: " + ", ".join(f"{k}={tally[k]}" for k in keys)


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz_bases")
    out = {}
    for name, make in BASES.items():
        make(d / f"{name}.mdf")
        out[name] = d / f"{name}.mdf"
    return out


def _assert_clean(tally, failures):
    print("\n" + _report(tally))
    for line in sorted(failures, key=lambda line: "accepted by" in line)[:40]:
        print("  " + line)
    assert not failures, f"{len(failures)} failures, e.g. {failures[:5]}"
    assert tally["max RSS growth MB"] < 500


def test_fuzz_sample(bases, tmp_path):
    """~150 seeded cases: a sample of the field mutations plus truncations and byte flips."""
    cases = all_cases(bases, n_file_damage=0)
    rng = random.Random(20240601)
    sample = rng.sample(cases, 120) + all_cases(bases, n_file_damage=30)[len(cases):]
    t0 = time.perf_counter()
    tally, failures = campaign(bases, sample, tmp_path)
    _assert_clean(tally, failures)
    assert tally["files"] >= 100 and time.perf_counter() - t0 < 60


@pytest.mark.slow
def test_fuzz_campaign(bases, tmp_path):
    """2400 seeded field mutations plus 600 truncations / byte flips (MDF_FUZZ_ALL=1: every
    field mutation of every base file plus 1200 truncations / byte flips)."""
    everything = os.environ.get("MDF_FUZZ_ALL") == "1"
    fields = all_cases(bases, n_file_damage=0)
    damage = all_cases(bases, n_file_damage=1200 if everything else 600)[len(fields):]
    if not everything:
        fields = random.Random(20240602).sample(fields, 2400)
    tally, failures = campaign(bases, fields + damage, tmp_path)
    _assert_clean(tally, failures)
    assert tally["files"] >= 2000
