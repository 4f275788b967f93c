"""Cases for the CLI fuzz test (tests/test_cli_fuzz.py): seeded mutations of small MDF files
(built with tests/mdf_cases.py), layout twins (the same data stored differently), and a runner
that calls ``mpirecon`` in a forked child (memory cap, timeout) or a subprocess."""
from __future__ import annotations

import io
import os
import random
import resource
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from mdf_io import Calibration, write_mdf
from mdf_io.file import MDFFile

from mdf_cases import header, sha256

SEED = 20240611
GRID = (3, 2, 1)
#: frequency indices of the calibration (the measurement stores all 5 of V = 8 samples)
CAL_FREQS = np.array([0, 2, 4])
#: sizes run must check (a zero, negative, huge, NaN or missing value must be refused)
SIZE_FIELDS = {"/acquisition/numFrames", "/acquisition/numPeriodsPerFrame", "/acquisition/receiver/numChannels",
               "/acquisition/receiver/numSamplingPoints", "/calibration/size"}
INDEX_FIELDS = {"/measurement/frequencySelection", "/measurement/framePermutation"}
#: metadata groups that do not take part in a reconstruction: an accepted mutation there must
#: not change the result
INERT_PREFIXES = ("/study", "/experiment", "/scanner", "/tracer", "/_note", "/uuid", "/time")
MB = 2 ** 20


# -- base files and layout twins ----------------------------------------------------------------

def base_calibration(path, *, fast=True, order=(0, 1, 2), permutation=None) -> None:
    """Calibration: J=1, C=2, frequencies :data:`CAL_FREQS` stored in ``order``, 6 voxels + 2
    background frames (frames optionally stored permuted). Twins differ only in layout."""
    rng = np.random.default_rng(SEED)
    n, k = int(np.prod(GRID)) + 2, CAL_FREQS.size
    data = rng.normal(size=(n, 1, 2, k)) + 1j * rng.normal(size=(n, 1, 2, k))
    snr = rng.uniform(2, 10, size=(1, 2, k))
    order = np.asarray(order)
    write_mdf(path, header(calib=Calibration(size=GRID), tracer=True), data[..., order], fourier=True,
              is_background_frame=np.arange(n) >= n - 2, fast_frame_axis=fast, frequency_selection=CAL_FREQS[order],
              frame_permutation=permutation, snr=snr[..., order])


def base_measurement(path, *, fast=False, permutation=None) -> None:
    """Time-domain measurement (float32, 3 foreground + 2 background frames, V = 8)."""
    rng = np.random.default_rng(SEED + 1)
    data = rng.normal(size=(5, 1, 2, 8)).astype(np.float32)
    write_mdf(path, header(tracer=True), data, fourier=False, is_background_frame=np.arange(5) >= 3,
              fast_frame_axis=fast, frame_permutation=permutation, user_fields={"_note": {"a": 1}})


def frequency_twin(time_file, path, *, order=(0, 1, 2, 3, 4), fast=False) -> None:
    """The measurement ``time_file`` as stored spectra, frequencies in ``order``."""
    with MDFFile(time_file) as mdf:
        spectra = mdf.read_spectra()
        bg = np.asarray(mdf.layout.is_background_frame)
    order = np.asarray(order)
    write_mdf(path, header(tracer=True), spectra[..., order], fourier=True, is_background_frame=bg,
              fast_frame_axis=fast, frequency_selection=order)


def twins(folder: Path) -> dict[str, tuple[Path, Path]]:
    """{name: (measurement, calibration)}: every pair stores the same data in another layout
    (frame axis, frame permutation, time or frequency domain, frequencySelection order); all
    must give the reconstruction of ``"base"``."""
    folder.mkdir(parents=True, exist_ok=True)
    f = lambda name: folder / name  # noqa: E731
    base_measurement(f("m_base.mdf"))
    base_measurement(f("m_fast.mdf"), fast=True)
    base_measurement(f("m_perm.mdf"), permutation=[4, 0, 3, 1, 2])
    frequency_twin(f("m_base.mdf"), f("m_freq.mdf"))
    frequency_twin(f("m_base.mdf"), f("m_freq_shuffled.mdf"), order=(3, 0, 4, 2, 1), fast=True)
    base_calibration(f("c_base.mdf"))
    base_calibration(f("c_slow.mdf"), fast=False)
    base_calibration(f("c_order.mdf"), order=(2, 0, 1))
    base_calibration(f("c_perm.mdf"), order=(1, 2, 0), permutation=[7, 2, 0, 1, 6, 3, 4, 5])
    m, c = f("m_base.mdf"), f("c_base.mdf")
    return {"base": (m, c), "meas fast frame axis": (f("m_fast.mdf"), c), "meas permuted": (f("m_perm.mdf"), c),
            "meas frequency domain": (f("m_freq.mdf"), c),
            "meas frequencySelection shuffled": (f("m_freq_shuffled.mdf"), c),
            "cal slow frame axis": (m, f("c_slow.mdf")), "cal frequencySelection order": (m, f("c_order.mdf")),
            "cal permuted + order": (m, f("c_perm.mdf")),
            "both changed": (f("m_freq_shuffled.mdf"), f("c_perm.mdf"))}


# -- mutations ------------------------------------------------------------------------------------

def _replace(f, name, value, **kw):
    del f[name]
    f.create_dataset(name, data=value, **kw)


def _numeric(v) -> bool:
    return isinstance(v, (np.ndarray, np.generic)) and v.dtype.kind in "iufb"


def _op(fn, numeric=False, index=False):
    def apply(f, name, v):
        if (numeric or index) and not _numeric(v):
            return False
        if index and (np.ndim(v) != 1 or np.size(v) < 2):
            return False
        return fn(f, name, np.array(v) if isinstance(v, (np.ndarray, np.generic)) else v)
    return apply


def _dup(f, name, a):
    a = a.astype(np.int64)
    a[1] = a[0]
    _replace(f, name, a)


def _oob(f, name, a):
    a = a.astype(np.int64)
    a[0] = a.max() + 1000
    _replace(f, name, a)


def _link(f, name, target):
    del f[name]
    f[name] = target


def _soft_loop(f, name, v):
    _link(f, name, h5py.SoftLink(name + "_loop"))
    f[name + "_loop"] = h5py.SoftLink(name)


def _huge_empty(f, name, v):
    dtype = f[name].dtype
    del f[name]
    f.create_dataset(name, shape=(2 ** 40,), dtype=dtype, chunks=(4096,))


def _shrink(f, name, a):
    if np.ndim(a) == 0 or np.shape(a)[-1] < 1:
        return False
    _replace(f, name, a[..., :-1])


FIELD_OPS = {
    "delete": lambda f, name, v: f.__delitem__(name),
    "group": lambda f, name, v: (f.__delitem__(name), f.create_group(name)),
    "string": lambda f, name, v: _replace(f, name, "garbage"),
    "complex": _op(lambda f, name, a: _replace(f, name, a.astype(np.complex128) + 1j), numeric=True),
    "float": _op(lambda f, name, a: _replace(f, name, a.astype(np.float64) + 0.5), numeric=True),
    "grow": _op(lambda f, name, a: _replace(f, name, np.stack([a, a])), numeric=True),
    "shrink": _op(_shrink, numeric=True),
    "negative": _op(lambda f, name, a: _replace(f, name, -np.abs(a.astype(np.float64)) - 1), numeric=True),
    "zero": _op(lambda f, name, a: _replace(f, name, np.zeros_like(a)), numeric=True),
    "huge": _op(lambda f, name, a: _replace(f, name, np.full(a.shape, 2 ** 62, np.int64)), numeric=True),
    "nan": _op(lambda f, name, a: _replace(f, name, np.full(a.shape, np.nan)), numeric=True),
    "dup_index": _op(_dup, index=True),
    "oob_index": _op(_oob, index=True),
    "ext_link": lambda f, name, v: _link(f, name, h5py.ExternalLink("/etc/hostname", "/x")),
    "soft_loop": _soft_loop,
    "huge_empty": _op(_huge_empty, numeric=True),
    "bad_utf8": lambda f, name, v: False if _numeric(v) else _replace(f, name, np.bytes_(b"\xff\xfe\xc3\x28")),
    "opaque": lambda f, name, v: _replace(f, name, np.void(b"\x01\x02\x03")),
}
#: ops after which a size or index field can no longer be valid (a missing numPeriodsPerFrame is
#: tolerated: the data's shape gives it)
BREAKING = {"delete", "group", "string", "complex", "negative", "zero", "huge", "nan", "ext_link", "soft_loop",
            "huge_empty", "bad_utf8", "opaque"}
#: ops after which /measurement/data can no longer be valid (other values are just other data)
DATA_BREAKING = BREAKING - {"negative", "zero", "huge", "complex"}


def datasets(path) -> list[str]:
    """Every dataset of ``path`` ('/a/b')."""
    names = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, obj: names.append("/" + n) if isinstance(obj, h5py.Dataset) else None)
    return sorted(names)


@dataclass
class Case:
    """One mutated file: what was done, and whether the CLI must refuse it."""

    target: str  # "meas" or "cal"
    kind: str  # field op name, or whole-file damage
    field: str = ""
    must_refuse: bool = False
    inert: bool = False  # accepted -> the result must equal the base reconstruction


def mutate(path: Path, rng: random.Random) -> Case | None:
    """Mutate ``path`` in place (one field op or whole-file damage); None if the op does not apply."""
    target = "cal" if "cal" in path.name else "meas"
    if rng.random() < 0.2:
        blob = bytearray(path.read_bytes())
        kind = rng.choice(["truncate", "flip", "empty", "zero_block"])
        if kind == "truncate":
            blob = blob[: rng.randrange(0, len(blob))]
        elif kind == "flip":
            for _ in range(rng.randint(1, 8)):
                blob[rng.randrange(len(blob))] ^= 1 << rng.randrange(8)
        elif kind == "empty":
            blob = bytearray()
        else:
            start = rng.randrange(len(blob))
            blob[start:start + 512] = bytes(len(blob[start:start + 512]))
        path.write_bytes(bytes(blob))
        return Case(target, kind, must_refuse=kind in ("empty",))
    name = rng.choice(datasets(path))
    kind = rng.choice(sorted(FIELD_OPS))
    with h5py.File(path, "a") as f:
        value = f[name][()]
        if FIELD_OPS[kind](f, name, value) is False:
            return None
    breaks = kind in BREAKING and name in SIZE_FIELDS - {"/acquisition/numPeriodsPerFrame"}
    breaks |= kind in DATA_BREAKING and name == "/measurement/data"
    breaks |= kind in ("dup_index", "oob_index", "delete", "ext_link", "soft_loop") and name in INDEX_FIELDS
    inert = name.startswith(INERT_PREFIXES) and kind not in ("ext_link", "soft_loop", "huge_empty")
    return Case(target, kind, name, must_refuse=breaks, inert=inert)


# -- running mpirecon -------------------------------------------------------------------------------

@dataclass
class Outcome:
    """What one ``mpirecon`` call did."""

    rc: int | None  # None: killed after the timeout (a hang)
    stderr: str
    seconds: float
    signal: int = 0


def _vm_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def run_forked(argv, cwd: Path, *, data_bytes: int, timeout: float = 60.0) -> Outcome:
    """``mpirecon.cli.main.main(argv)`` in a forked child (cwd ``cwd``) whose address space may
    grow by at most twice the data present + 500 MB; killed after ``timeout`` s."""
    from mpirecon.cli.main import main

    err = cwd.parent / f".{cwd.name}.stderr"
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # child: never returns
        rc = 99
        try:
            fd = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            sys.stderr = io.TextIOWrapper(os.fdopen(fd, "wb"), write_through=True)
            sys.stdout = open(os.devnull, "w")
            os.chdir(cwd)
            limit = _vm_bytes() + 2 * data_bytes + 500 * MB
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            try:
                rc = main([str(a) for a in argv])
            except SystemExit as exc:
                rc = exc.code if isinstance(exc.code, int) else 2
        except BaseException:  # noqa: BLE001 - report it as a traceback
            traceback.print_exc()
        finally:
            sys.stderr.flush()
            os._exit(rc if isinstance(rc, int) else 98)
    deadline = t0 + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.perf_counter() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return Outcome(None, err.read_text(errors="replace"), time.perf_counter() - t0)
        time.sleep(0.005)
    text = err.read_text(errors="replace")
    err.unlink()
    if os.WIFSIGNALED(status):
        return Outcome(-os.WTERMSIG(status), text, time.perf_counter() - t0, os.WTERMSIG(status))
    return Outcome(os.WEXITSTATUS(status), text, time.perf_counter() - t0)


def run_subprocess(argv, cwd: Path, *, timeout: float = 60.0, cap_bytes: int = 2 * 1024 * MB) -> Outcome:
    """``python -m mpirecon.cli.main argv`` under ``RLIMIT_AS = cap_bytes``."""
    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (cap_bytes, cap_bytes))

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    t0 = time.perf_counter()
    try:
        r = subprocess.run([sys.executable, "-m", "mpirecon.cli.main", *map(str, argv)], cwd=cwd, env=env,
                           capture_output=True, text=True, timeout=timeout, preexec_fn=cap)
    except subprocess.TimeoutExpired as exc:
        return Outcome(None, str(exc.stderr or ""), time.perf_counter() - t0)
    return Outcome(r.returncode, r.stderr, time.perf_counter() - t0)


def problems(out: Outcome, case_dir: Path, inputs: dict, outputs: list[str], *, mutated: Path | None = None,
             timeout: float = 60.0) -> list[str]:
    """What is wrong with ``out`` (empty: fine): the exit code, tracebacks, the error line,
    outputs left after a failure, changed inputs (``inputs``: {path: sha256}), time."""
    bad = []
    if out.rc is None:
        return [f"hang (> {timeout:.0f} s)"]
    if out.rc not in (0, 2):
        bad.append(f"exit {out.rc}")
    if "Traceback" in out.stderr:
        bad.append("traceback")
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("mpirecon:")]
    if out.rc != 0:
        if len(errors) != 1 or lines[-1] != errors[0]:
            bad.append(f"not one error line: {lines[-3:]}")
        elif not any(str(p) in errors[0] or Path(p).name in errors[0] for p in inputs):
            bad.append(f"error names no input: {errors[0]}")
        left = [n for n in os.listdir(case_dir) if n in outputs or n.startswith(".")]
        if left:
            bad.append(f"partial output after failure: {left}")
    else:
        missing = [n for n in outputs if not (case_dir / n).is_file()]
        if missing or any(n.startswith(".") for n in os.listdir(case_dir)):
            bad.append(f"success without complete outputs: missing {missing}")
    for path, digest in inputs.items():
        if sha256(path) != digest:
            bad.append(f"input changed: {path}")
    if out.seconds > timeout:
        bad.append(f"slow: {out.seconds:.1f} s")
    return bad
