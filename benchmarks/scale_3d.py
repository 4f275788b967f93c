"""37^3 with the defaults: an independent-style OpenMPI-scale calibration written with plain h5py,
and every classical method run through ``mpirecon run`` with no option but ``-o``.

Usage:
    python benchmarks/scale_3d.py write DIR [--grid 37] [--frequencies 1700] [--seed 0]
    python benchmarks/scale_3d.py run DIR [--methods pinv kaczmarz ...] [--limit-gb 12] [--run-args "..."]
                                          [--out r.json]

``write`` simulates a 3D Lissajous calibration (:func:`mpirecon.simulation.scanner.scanner_3d`,
the ``--frequencies`` strongest frequency bins of 3 channels) and writes it the way another
writer would, **without mdf_io**: ``/measurement/data`` complex64 J x C x K x N with the frame
axis fast (``isFastFrameAxis`` = 1), a 1-based ``frequencySelection``, 20 empty-scanner frames
after the voxel frames (``isBackgroundFrame``, ``isBackgroundCorrected`` = 0), variable-length
UTF-8 strings. Two measurements (time domain N x J x C x V float32, 10 background frames, 30 dB
over the signal rows, signals from the noise-free physics model, so not the matrix that
reconstructs them): ``meas2.mdf`` (2 frames) and ``meas101.mdf`` (101 frames), of phantoms
unlike the project's training families (a bent tube, a smooth ellipsoidal organ, a dot cluster),
with the truth in ``truth2.npy`` / ``truth101.npy``.

``run`` runs ``mpirecon run MEAS --sm sm.mdf --method M -o OUT`` for each method and each
measurement under ``/usr/bin/time -v`` and an address-space limit (``ulimit -v``), and reports
wall time, peak RSS, set-up / first-frame / per-frame times (from run's timing line) and the
PSNR of every frame against the truth next to the PSNR of an all-zero image. The machine's
other load is not controlled: quote the numbers with the command and the load average.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

CLASSICAL = ["pinv", "kaczmarz", "cgnr", "admm_l1", "admm_tv", "admm_l1tv"]
BACKGROUND_FRAMES = 20


def phantoms(n: int, shape, rng: np.random.Generator) -> np.ndarray:
    """(n, Nz, Ny, Nx) phantoms in [0, 1]: a bent tube (catheter), a smooth ellipsoidal 'organ'
    with a concentration gradient and a cluster of 2-voxel dots, each at random positions."""
    zz, yy, xx = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij")
    out = np.zeros((n,) + tuple(shape))
    for i in range(n):
        c = rng.uniform(-0.4, 0.4, 3)
        bend = rng.uniform(-0.6, 0.6)
        axis_y = c[1] + bend * (xx - c[2]) ** 2  # a tube along x, bent in y
        tube = ((yy - axis_y) ** 2 + (zz - c[0]) ** 2) < rng.uniform(0.08, 0.15) ** 2
        out[i] += rng.uniform(0.6, 1.0) * tube
        e = rng.uniform(-0.4, 0.4, 3)
        radii = rng.uniform(0.2, 0.45, 3)
        r2 = ((zz - e[0]) / radii[0]) ** 2 + ((yy - e[1]) / radii[1]) ** 2 + ((xx - e[2]) / radii[2]) ** 2
        out[i] += np.where(r2 < 1, rng.uniform(0.3, 0.7) * (1.2 - r2) * (1 + 0.5 * xx), 0.0)
        for _ in range(rng.integers(3, 7)):
            p = rng.uniform(-0.7, 0.7, 3)
            out[i] += rng.uniform(0.5, 1.0) * (((zz - p[0]) ** 2 + (yy - p[1]) ** 2 + (xx - p[2]) ** 2) < 0.06 ** 2)
    return np.clip(out, 0.0, 1.0)


def _common_groups(f, sim, frames: int, name: str) -> None:
    """Root, study, experiment, scanner and acquisition groups, written field by field."""
    s = sim.scanner
    text = h5_text()
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    f.create_dataset("version", data="2.1.0", dtype=text)
    f.create_dataset("uuid", data=str(uuid.uuid4()), dtype=text)
    f.create_dataset("time", data=now, dtype=text)
    for group, fields in {
        "study": {"name": "scale-3d", "number": 1, "uuid": str(uuid.uuid4()), "description": ""},
        "experiment": {"name": name, "number": 1, "uuid": str(uuid.uuid4()), "description": "independent writer",
                       "subject": "phantom", "isSimulation": np.int8(1)},
        "scanner": {"facility": "bench", "manufacturer": "h5py", "name": "3D FFP", "operator": "",
                    "topology": "FFP"},
    }.items():
        for key, value in fields.items():
            f.create_dataset(f"{group}/{key}", data=value, dtype=text if isinstance(value, str) else None)
    a = "acquisition"
    f[f"{a}/numAverages"] = np.int64(1)
    f[f"{a}/numFrames"] = np.int64(frames)
    f[f"{a}/numPeriodsPerFrame"] = np.int64(1)
    f.create_dataset(f"{a}/startTime", data=now, dtype=text)
    f[f"{a}/gradient"] = np.diag([float(g) for g in s.gradient]).reshape(1, 1, 3, 3)
    d = f"{a}/drivefield"
    f[f"{d}/baseFrequency"] = float(s.base_frequency)
    f[f"{d}/cycle"] = s.num_sampling_points / s.base_frequency
    f[f"{d}/divider"] = np.array([[v] for v in s.dividers], np.int64)
    f[f"{d}/numChannels"] = np.int64(3)
    f[f"{d}/phase"] = np.zeros((1, 3, 1))
    f[f"{d}/strength"] = np.array(s.drive_amplitude, float).reshape(1, 3, 1)
    f.create_dataset(f"{d}/waveform", data=[["sine"]] * 3, dtype=text)
    r = f"{a}/receiver"
    f[f"{r}/bandwidth"] = float(s.bandwidth)
    f[f"{r}/numChannels"] = np.int64(s.receive_channels)
    f[f"{r}/numSamplingPoints"] = np.int64(s.num_sampling_points)
    f.create_dataset(f"{r}/unit", data="V", dtype=text)


def _flags(f, **values) -> None:
    for key in ("isFourierTransformed", "isFastFrameAxis", "isBackgroundCorrected", "isFrequencySelection",
                "isFramePermutation", "isSpectralLeakageCorrected", "isTransferFunctionCorrected",
                "isSparsityTransformed"):
        f[f"measurement/{key}"] = np.int8(values.get(key, 0))


def h5_text():
    import h5py
    return h5py.string_dtype("utf-8")


def write_calibration(path: Path, sim) -> None:
    """The calibration as J x C x K x N complex64 with a fast frame axis (plain h5py)."""
    import h5py
    cal = sim.calibration
    c, k = sim.scanner.receive_channels, cal.num_rows // sim.scanner.receive_channels
    p = cal.num_voxels
    kept = np.asarray(cal.rows.frequency_index[:k])
    with h5py.File(path, "w") as f:
        _common_groups(f, sim, p + BACKGROUND_FRAMES, "calibration")
        _flags(f, isFourierTransformed=1, isFastFrameAxis=1, isFrequencySelection=1)
        f["measurement/frequencySelection"] = kept.astype(np.int64) + 1  # 1-based
        is_bg = np.zeros(p + BACKGROUND_FRAMES, np.int8)
        is_bg[p:] = 1
        f["measurement/isBackgroundFrame"] = is_bg
        ds = f.create_dataset("measurement/data", (1, c, k, p + BACKGROUND_FRAMES), np.complex64)
        raw = sim.raw_frames  # (P, R) uncorrected voxel frames, rows channel-major
        rng = np.random.default_rng(123)
        bg = sim.background  # static scanner background (R,)
        sigma = np.std(sim.background_frames, axis=0).mean()
        empties = bg[None] + sigma * (rng.standard_normal((BACKGROUND_FRAMES, bg.size))
                                      + 1j * rng.standard_normal((BACKGROUND_FRAMES, bg.size))) / np.sqrt(2)
        for ch in range(c):
            rows = slice(ch * k, (ch + 1) * k)
            ds[0, ch, :, :p] = raw[:, rows].T.astype(np.complex64)
            ds[0, ch, :, p:] = empties[:, rows].T.astype(np.complex64)
        f["calibration/snr"] = cal.snr.reshape(1, c, k)
        f["calibration/size"] = np.array(cal.grid, np.int64)
        f.create_dataset("calibration/method", data="robot", dtype=h5_text())
        f.create_dataset("calibration/order", data="xyz", dtype=h5_text())
        f["calibration/fieldOfView"] = np.asarray(cal.fov, float)
        f["calibration/fieldOfViewCenter"] = np.asarray(cal.center, float)


def write_measurement(path: Path, sim, truth: np.ndarray, seed: int, snr_db: float = 30.0) -> None:
    """Time-domain frames N x J x C x V float32 (foreground, then background frames)."""
    import h5py
    from mpirecon.simulation.measurement import simulate_spectra, to_time_domain
    meas = simulate_spectra(sim, truth, snr_db, background_frames=10, seed=seed)
    frames = np.concatenate([meas.foreground, meas.background])
    signals = to_time_domain(frames, meas.rows, sim.scanner.num_sampling_points).astype(np.float32)
    with h5py.File(path, "w") as f:
        _common_groups(f, sim, frames.shape[0], "measurement")
        _flags(f)
        is_bg = np.zeros(frames.shape[0], np.int8)
        is_bg[meas.foreground.shape[0]:] = 1
        f["measurement/isBackgroundFrame"] = is_bg
        f["measurement/data"] = signals


def write(args) -> None:
    from mpirecon.simulation.scanner import scanner_3d
    from mpirecon.simulation.system_matrix import simulate_calibration
    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    scanner = scanner_3d((args.grid,) * 3, max_frequency=625e3, num_frequencies=args.frequencies)
    sim = simulate_calibration(scanner)
    write_calibration(folder / "sm.mdf", sim)
    rng = np.random.default_rng(args.seed)
    for frames in (2, 101):
        truth = phantoms(frames, scanner.grid3[::-1], rng)
        write_measurement(folder / f"meas{frames}.mdf", sim, truth, args.seed + frames)
        np.save(folder / f"truth{frames}.npy", truth)
    info = {"grid": args.grid, "rows_stored": int(sim.calibration.num_rows),
            "rows_snr_above_1.5": int(np.sum(sim.calibration.snr > 1.5)),
            "file_gb": (folder / "sm.mdf").stat().st_size / 1e9, "seconds": time.perf_counter() - t0,
            "command": " ".join(sys.argv)}
    (folder / "problem.json").write_text(json.dumps(info, indent=1))
    print(json.dumps(info))


def run_one(folder: Path, method: str, frames: int, limit_gb: float, extra: str = "") -> dict:
    """``mpirecon run meas{frames}.mdf --sm sm.mdf --method M -o OUT [extra]`` under time -v and ulimit -v."""
    from mdf_io import read_reconstruction
    from mpirecon.metrics import psnr
    out = folder / f"rec_{method}_{frames}.mdf"
    if out.exists():
        out.unlink()
    cmd = (f"ulimit -v {int(limit_gb * 2 ** 20)}; /usr/bin/time -v {sys.executable} -m mpirecon.cli.main run "
           f"{folder}/meas{frames}.mdf --sm {folder}/sm.mdf --method {method} -o {out} {extra}")
    t0 = time.perf_counter()
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    res = {"command": f"mpirecon run meas{frames}.mdf --sm sm.mdf --method {method} -o {out.name} {extra}".strip(),
           "exit": proc.returncode, "wall_s": round(wall, 1),
           "peak_rss_gb": round(int(peak.group(1)) / 2 ** 20, 2) if peak else None}
    if proc.returncode != 0:
        res["error"] = [line for line in proc.stderr.splitlines() if line.startswith("mpirecon")][-2:]
        return res
    timing = re.search(r"set-up ([\d.]+) s .*first frame ([\d.]+) ms(?:.*solve ([\d.]+) ms/frame)?", proc.stdout)
    truth = np.load(folder / f"truth{frames}.npy")
    images = np.asarray(read_reconstruction(out).images).reshape(truth.shape)
    res.update(setup_s=float(timing.group(1)), first_frame_s=float(timing.group(2)) / 1e3,
               per_frame_batch_s=float(timing.group(3)) / 1e3 if timing.group(3) else None,
               psnr_db=round(float(np.mean(psnr(images, truth))), 2),
               psnr_zero_image_db=round(float(np.mean(psnr(np.zeros_like(truth), truth))), 2),
               memory_line=[line for line in proc.stderr.splitlines() if "memory" in line][:2])
    out.unlink()
    return res


def run(args) -> None:
    from mpirecon.io.provenance import versions
    folder = Path(args.folder)
    report = {"command": " ".join(sys.argv), "load_average_start": os.getloadavg(), "versions": versions(),
              "problem": json.loads((folder / "problem.json").read_text()), "results": {}}
    for method in args.methods:
        for frames in args.frames:
            r = run_one(folder, method, frames, args.limit_gb, args.run_args)
            report["results"][f"{method}/{frames}"] = r
            print(method, frames, json.dumps(r), flush=True)
    report["load_average_end"] = os.getloadavg()
    text = json.dumps(report, indent=1)
    if args.out:
        Path(args.out).write_text(text)
    print(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="step", required=True)
    w = sub.add_parser("write", help="write sm.mdf, meas2.mdf, meas101.mdf and the truths into FOLDER")
    w.add_argument("folder")
    w.add_argument("--grid", type=int, default=37)
    w.add_argument("--frequencies", type=int, default=1700, help="frequency bins stored per channel")
    w.add_argument("--seed", type=int, default=0)
    r = sub.add_parser("run", help="run the methods on the files in FOLDER")
    r.add_argument("folder")
    r.add_argument("--methods", nargs="+", default=CLASSICAL)
    r.add_argument("--frames", nargs="+", type=int, default=[2, 101], choices=[2, 101])
    r.add_argument("--limit-gb", type=float, default=12.0, help="address-space limit of each run (ulimit -v)")
    r.add_argument("--run-args", default="", help="extra options of mpirecon run, e.g. '--memory-limit 4G'")
    r.add_argument("--out", default=None, help="also write the JSON report here")
    args = ap.parse_args()
    write(args) if args.step == "write" else run(args)


if __name__ == "__main__":
    main()
