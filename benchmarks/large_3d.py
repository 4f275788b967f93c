"""Classical methods on a simulated 3D calibration (OpenMPI-like: 3 channels, ~5,000 rows).

Usage: python benchmarks/large_3d.py [--grid 37] [--rows 5000] [--methods pinv kaczmarz ...]
       [--batch 100] [--dtype float32] [--out result.json]

Simulates a calibration of an N^3 grid with :func:`mpirecon.simulation.scanner.scanner_3d`
(the strongest ``--frequencies`` frequency bins of 3 channels), keeps the ``--rows`` rows of
highest SNR (SNR > 1.5), simulates ``--batch`` phantoms of random balls at 30 dB, then runs each
method in its own process through the normal API (``load_reconstructor(name, sm)``, strategy
"auto") and reports, as JSON: set-up (bind) seconds, seconds per frame for one frame and in a
batch, peak memory of the process (VmHWM) and mean PSNR against the truth of the batch.
The machine's other load is not controlled: quote numbers with the command and the load.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
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
    """Simulate calibration + batch into ``folder`` (npy files); return a description."""
    from mpirecon.selection import selected_system_matrix
    from mpirecon.simulation.measurement import realistic_signals
    from mpirecon.simulation.scanner import scanner_3d
    from mpirecon.simulation.system_matrix import simulate_calibration

    t0 = time.perf_counter()
    scanner = scanner_3d((args.grid,) * 3, max_frequency=args.max_frequency, num_frequencies=args.frequencies)
    sim = simulate_calibration(scanner)
    sim.raw_frames = None  # not written here; frees one (P, R) array
    seconds = time.perf_counter() - t0
    snr = sim.calibration.snr
    threshold = max(1.5, float(np.sort(snr)[-args.rows - 1])) if snr.size > args.rows else 1.5
    rng = np.random.default_rng(args.seed)
    truth = ball_phantoms(args.batch, scanner.grid3[::-1], rng)
    spectra = realistic_signals(sim, truth, 30.0, rng)
    sm = selected_system_matrix(sim.calibration, snr_threshold=threshold)
    keep = np.flatnonzero(snr > threshold)
    np.save(folder / "matrix.npy", sm.matrix)
    np.save(folder / "spectra.npy", spectra[:, keep])
    np.save(folder / "truth.npy", truth)
    np.savez(folder / "rows.npz", period=sm.rows.period, channel=sm.rows.channel,
             frequency_index=sm.rows.frequency_index, frequencies=sm.frequencies, snr=sm.snr,
             grid=np.asarray(sm.grid), fov=sm.fov, center=sm.center,
             receiver=np.asarray([sm.bandwidth, sm.num_sampling_points]))
    return {"grid": list(sm.grid), "voxels": sm.num_voxels, "rows_simulated": int(snr.size),
            "rows_selected": sm.num_rows, "snr_threshold": threshold, "simulation_seconds": seconds,
            "simulation_peak_rss_gb": _peak_gb()}


def load(folder: Path):
    """The selected system matrix, spectra (F, R) and truth (F, Nz, Ny, Nx) saved by :func:`simulate`."""
    from mdf_io import RowIndex, SystemMatrix

    r = np.load(folder / "rows.npz")
    sm = SystemMatrix(matrix=np.load(folder / "matrix.npy"),
                      rows=RowIndex(r["period"], r["channel"], r["frequency_index"]),
                      frequencies=r["frequencies"], snr=r["snr"], grid=tuple(int(g) for g in r["grid"]),
                      fov=r["fov"], center=r["center"], bandwidth=float(r["receiver"][0]),
                      num_sampling_points=int(r["receiver"][1]))
    return sm, np.load(folder / "spectra.npy"), np.load(folder / "truth.npy")


def run_method(name: str, folder: Path, params: dict) -> dict:
    """Bind ``name`` to the saved calibration and time it (runs inside a worker process)."""
    from mpirecon import load_reconstructor
    from mpirecon.metrics import psnr

    sm, spectra, truth = load(folder)
    t0 = time.perf_counter()
    recon = load_reconstructor(name, sm, **params)
    setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    single = recon.reconstruct(spectra[:1]).images
    t_single = time.perf_counter() - t0
    t0 = time.perf_counter()
    batch = recon.reconstruct(spectra).images
    t_batch = (time.perf_counter() - t0) / spectra.shape[0]
    return {"parameters": params, "strategy": getattr(recon, "strategy", None) or recon.op.strategy(recon.config.strategy),
            "setup_s": setup, "single_s_per_frame": t_single, "batch_s_per_frame": t_batch,
            "batch_frames": int(spectra.shape[0]), "psnr_db": float(np.mean(psnr(batch, truth))),
            "single_equals_batch_frame0": float(np.abs(single[0] - batch[0]).max() / max(np.abs(batch[0]).max(), 1e-300)),
            "peak_rss_gb": _peak_gb()}


def _peak_gb() -> float:
    """Peak resident memory of this process (GiB): VmHWM, which, unlike ru_maxrss, is not
    inherited from the parent across fork/exec; ru_maxrss where /proc is missing."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2 ** 20  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", type=int, default=37, help="voxels per axis (37 or 19 like OpenMPI)")
    ap.add_argument("--rows", type=int, default=5000, help="rows kept (highest SNR, SNR > 1.5)")
    ap.add_argument("--frequencies", type=int, default=1800, help="strongest frequency bins simulated (x3 channels)")
    ap.add_argument("--max-frequency", type=float, default=625e3, help="Hz")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--methods", nargs="+", default=CLASSICAL)
    ap.add_argument("--dtype", default="float32", help="working precision of every method")
    ap.add_argument("--set", nargs="*", default=[], metavar="METHOD.KEY=VALUE",
                    help="extra parameters, e.g. admm_tv.iterations=50")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="also write the JSON here")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--data", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(run_method(args.worker, Path(args.data), json.loads(args.set[0]))))
        return
    from mpirecon.provenance import versions as _versions

    extra = {}
    for item in args.set:
        key, _, value = item.partition("=")
        method, _, field = key.partition(".")
        extra.setdefault(method, {})[field] = json.loads(value)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        report = {"command": " ".join(sys.argv), "load_average_start": os.getloadavg(),
                  "problem": simulate(args, folder), "versions": _versions(), "results": {}}
        print(json.dumps(report["problem"]), flush=True)
        for name in args.methods:
            params = dict({"dtype": args.dtype}, **extra.get(name, {}))
            proc = subprocess.run([sys.executable, __file__, "--worker", name, "--data", str(folder),
                                   "--set", json.dumps(params)], capture_output=True, text=True)
            if proc.returncode != 0:
                report["results"][name] = {"error": proc.stderr.strip().splitlines()[-1:]}
            else:
                report["results"][name] = json.loads(proc.stdout.strip().splitlines()[-1])
            print(name, json.dumps(report["results"][name]), flush=True)
        report["load_average_end"] = os.getloadavg()
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
