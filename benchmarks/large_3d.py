"""Classical methods on a simulated 3D calibration (OpenMPI-like: 3 channels, ~5,000 rows), run
through ``mpirecon run`` as a user would.

Usage: python benchmarks/large_3d.py [--grid 37] [--rows 5000] [--methods pinv kaczmarz ...]
       [--batch 100] [--dtype float32] [--set admm_tv.iterations=50] [--keep DIR] [--out result.json]

Simulates a calibration of an N^3 grid with :func:`mpirecon.simulation.scanner.scanner_3d`
(the strongest ``--frequencies`` frequency bins of 3 channels, stored through
``frequencySelection``) and a measurement of ``--batch`` + 1 phantoms of random balls at 30 dB
with 10 background frames, both as MDF files. Then, for each method, ``mpirecon run meas.mdf
--sm sm.mdf --method M --num-used-freqs ROWS --param dtype=...`` runs in its own process under
``/usr/bin/time -v`` and the report takes, as JSON: set-up seconds (reading the file, selection,
the method's per-matrix set-up), the first frame alone (single, warm-up included), seconds per
frame of the other ``--batch`` frames in one batch (all from run's own timing line), the
process's peak memory (maximum resident set) and mean PSNR of all frames against the truth.
The machine's other load is not controlled: quote numbers with the command and the load.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CLASSICAL = ["pinv", "kaczmarz", "cgnr", "admm_l1", "admm_tv", "admm_l1tv"]


def ball_phantoms(n: int, shape: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    """(n, Nz, Ny, Nx) phantoms: 1-3 balls each, radius 10-25 % of the grid, concentration 0.3-1."""
    zz, yy, xx = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij")
    out = np.zeros((n,) + tuple(shape))
    for i in range(n):
        for _ in range(rng.integers(1, 4)):
            c = rng.uniform(-0.6, 0.6, 3)
            r = rng.uniform(0.2, 0.5)
            out[i] += rng.uniform(0.3, 1.0) * (((zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2) < r ** 2)
    return np.minimum(out, 1.0)


def simulate(args, folder: Path) -> dict:
    """Write ``sm.mdf``, ``meas.mdf`` and ``truth.npy`` (F, Nz, Ny, Nx) into ``folder``; return a description."""
    from mpirecon.simulation.measurement import simulate_spectra, write_time_domain_measurement
    from mpirecon.simulation.scanner import scanner_3d
    from mpirecon.simulation.system_matrix import simulate_calibration

    t0 = time.perf_counter()
    scanner = scanner_3d((args.grid,) * 3, max_frequency=args.max_frequency, num_frequencies=args.frequencies)
    sim = simulate_calibration(scanner)
    sim.write(folder / "sm.mdf")
    truth = ball_phantoms(args.batch + 1, scanner.grid3[::-1], np.random.default_rng(args.seed))
    meas = simulate_spectra(sim, truth, 30.0, background_frames=10, seed=args.seed)
    write_time_domain_measurement(folder / "meas.mdf", sim, meas, name="random balls")
    np.save(folder / "truth.npy", truth)
    snr = sim.calibration.snr
    return {"grid": list(sim.calibration.grid), "voxels": int(sim.calibration.num_voxels),
            "rows_simulated": int(snr.size), "rows_with_snr_above_1.5": int(np.sum(snr > 1.5)),
            "rows_used": args.rows, "frames": args.batch + 1, "simulation_seconds": time.perf_counter() - t0,
            "calibration_file_gb": (folder / "sm.mdf").stat().st_size / 2 ** 30}


def load(folder: Path, rows: int):
    """The calibration (its ``rows`` rows of highest SNR, SNR > 1.5), the measurement's spectra
    (F, R) and the truth (F, Nz, Ny, Nx) written by :func:`simulate`, read as ``mpirecon run`` does."""
    from mpirecon.io.loading import load_measurement_for, load_system_matrix

    sm = load_system_matrix(folder / "sm.mdf", num_used_freqs=rows)
    return sm, load_measurement_for(folder / "meas.mdf", sm).data, np.load(folder / "truth.npy")


def run_method(name: str, folder: Path, args, params: dict) -> dict:
    """``mpirecon run`` with ``name`` on the files in ``folder`` under ``/usr/bin/time -v``."""
    from mdf_io import read_reconstruction
    from mpirecon.metrics import psnr

    out = folder / f"rec_{name}.mdf"
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "mpirecon.cli.main", "run", str(folder / "meas.mdf"),
           "--sm", str(folder / "sm.mdf"), "--method", name, "--num-used-freqs", str(args.rows),
           "-o", str(out), "--overwrite"] + [f"--param={k}={v}" for k, v in params.items()]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-3:], "command": " ".join(cmd[2:])}
    timing = re.search(r"set-up ([\d.]+) s .*first frame ([\d.]+) ms .*solve ([\d.]+) ms/frame", proc.stdout)
    peak_kb = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    images = np.asarray(read_reconstruction(out).images)
    truth = np.load(folder / "truth.npy")
    return {"parameters": params, "setup_s": float(timing.group(1)), "single_s": float(timing.group(2)) / 1e3,
            "batch_s_per_frame": float(timing.group(3)) / 1e3, "batch_frames": args.batch, "wall_s": wall,
            "peak_rss_gb": int(peak_kb.group(1)) / 2 ** 20,
            "psnr_db": float(np.mean(psnr(images.reshape(truth.shape), truth))),
            "command": " ".join(["mpirecon"] + cmd[5:])}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", type=int, default=37, help="voxels per axis (37 or 19 like OpenMPI)")
    ap.add_argument("--rows", type=int, default=5000, help="rows used (--num-used-freqs: highest SNR)")
    ap.add_argument("--frequencies", type=int, default=1800, help="strongest frequency bins simulated (x3 channels)")
    ap.add_argument("--max-frequency", type=float, default=625e3, help="Hz")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--methods", nargs="+", default=CLASSICAL)
    ap.add_argument("--dtype", default="float32", help="working precision of every method")
    ap.add_argument("--set", nargs="*", default=[], metavar="METHOD.KEY=VALUE",
                    help="extra parameters, e.g. admm_tv.iterations=50")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", default=None, help="folder for the simulated files (reused when present)")
    ap.add_argument("--out", default=None, help="also write the JSON here")
    args = ap.parse_args()
    from mpirecon.io.provenance import versions as _versions

    extra = {}
    for item in args.set:
        key, _, value = item.partition("=")
        method, _, field = key.partition(".")
        extra.setdefault(method, {})[field] = value
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        report = {"command": " ".join(sys.argv), "load_average_start": os.getloadavg(), "versions": _versions(),
                  "results": {}}
        problem = folder / "problem.json"
        if not problem.exists():
            problem.write_text(json.dumps(simulate(args, folder)))
        report["problem"] = json.loads(problem.read_text())
        print(json.dumps(report["problem"]), flush=True)
        for name in args.methods:
            params = dict({"dtype": args.dtype}, **extra.get(name, {}))
            report["results"][name] = run_method(name, folder, args, params)
            print(name, json.dumps(report["results"][name]), flush=True)
        report["load_average_end"] = os.getloadavg()
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
