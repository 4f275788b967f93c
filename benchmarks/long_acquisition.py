"""Long acquisitions through the plan pipeline: 200,000 frames of a 19x19 measurement reconstructed
block by block, peak memory bounded by the block, the output complete, and nothing left when the
run is killed midway.

    python benchmarks/long_acquisition.py write DIR [--frames 200000]   # sm.mdf + long.mdf (plain h5py, ~2.6 GB)
    python benchmarks/long_acquisition.py run DIR --method kaczmarz [--block-size 1000] [--weights W] [--select 0:20000]
    python benchmarks/long_acquisition.py kill DIR --method kaczmarz   # SIGTERM and SIGINT midway

``write`` simulates the built-in 19x19 calibration and 100 noisy frames of the shape phantom
(+ 10 empty-scanner frames), then tiles the 100 frames into a time-domain float32 file of
``--frames`` foreground frames with plain h5py, block by block. ``run`` runs ``mpirecon run`` under
``/usr/bin/time``-style accounting (peak RSS of the child from ``wait4``) and checks the output.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def write(folder: Path, frames: int) -> None:
    """``folder/sm.mdf`` (built-in 19x19) and ``folder/long.mdf`` (``frames`` + 10 background frames)."""
    import h5py
    folder.mkdir(parents=True, exist_ok=True)
    mp = [sys.executable, "-m", "mpirecon.cli.main"]
    if not (folder / "sm.mdf").exists():
        subprocess.run(mp + ["simulate", "system-matrix", "-o", str(folder / "sm.mdf")], check=True)
    seed = folder / "seed.mdf"
    if not seed.exists():
        subprocess.run(mp + ["simulate", "measurement", "--sm", str(folder / "sm.mdf"), "--phantom", "shape",
                             "--frames", "100", "--background-frames", "10", "--snr", "25", "-o", str(seed)], check=True)
    out, tmp = folder / "long.mdf", folder / "long.mdf.part"
    with h5py.File(seed, "r") as src, h5py.File(tmp, "w") as dst:
        for name in src:
            if name != "measurement":
                src.copy(name, dst)
        mg = dst.create_group("measurement")
        for name, item in src["measurement"].items():
            if name not in ("data", "isBackgroundFrame"):
                src["measurement"].copy(name, mg)
        block = src["measurement/data"][...]                      # (110, J, C, V): 100 frames + 10 empty
        fg, bg = block[:100], block[100:]
        data = mg.create_dataset("data", shape=(frames + 10,) + fg.shape[1:], dtype=fg.dtype,
                                 chunks=(100,) + fg.shape[1:])
        for start in range(0, frames, 10000):
            n = min(10000, frames - start)
            data[start:start + n] = np.tile(fg, (n // 100 + 1, 1, 1, 1))[:n]
        data[frames:] = bg
        mg.create_dataset("isBackgroundFrame", data=(np.arange(frames + 10) >= frames).astype(np.int8))
        dst["acquisition/numFrames"][...] = frames + 10
    os.replace(tmp, out)
    print(f"wrote {out}: {frames} frames + 10 background, {out.stat().st_size / 1e9:.2f} GB")


def mpirecon_run(folder: Path, method: str, block: int | None, weights: str | None, out: Path,
                 frames: str | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "mpirecon.cli.main", "run", str(folder / "long.mdf"), "--sm", str(folder / "sm.mdf"),
           "--method", method, "-o", str(out), "--overwrite"]
    if block:
        cmd += ["--block-size", str(block)]
    if weights:
        cmd += ["--weights", weights]
    if frames:
        cmd += ["--frames", frames]
    return cmd


def run(folder: Path, method: str, block: int | None, weights: str | None, frames: str | None = None) -> None:
    """One ``mpirecon run`` on long.mdf (``frames``: a selection, e.g. 0:20000): wall time, peak RSS,
    output frames."""
    import mdf_io
    out = folder / f"rec_{method}_{block or 'default'}.mdf"
    t0 = time.perf_counter()
    proc = subprocess.Popen(mpirecon_run(folder, method, block, weights, out, frames), stderr=subprocess.PIPE,
                            text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"mpirecon run failed:\n{err}")
    a_frames = frames or "all"
    with mdf_io.MDFFile(out) as f:
        data = f.h5["reconstruction/data"]
        frames, finite = data.shape[0], all(np.isfinite(data[i:i + 10000]).all() for i in range(0, data.shape[0], 10000))
    print(f"{method} block {block or 'default'}, frames {a_frames}: {frames} frames written, all finite: {finite}; wall {wall:.0f} s "
          f"({1e3 * wall / frames:.3f} ms/frame overall); peak RSS {usage.ru_maxrss / 1024:.0f} MB; "
          f"output {out.stat().st_size / 1e6:.0f} MB")


def kill(folder: Path, method: str, weights: str | None, signals=("SIGTERM", "SIGINT")) -> None:
    """Start a run, stop it midway with SIGTERM, then SIGINT: no output file, no temporary file left."""
    for sig in (getattr(signal, name) for name in signals):
        out = folder / f"killed_{sig.name}.mdf"
        before = set(folder.iterdir())
        # a job started in the background ignores SIGINT; the run gets the default (Python: KeyboardInterrupt)
        proc = subprocess.Popen(mpirecon_run(folder, method, 1000, weights, out), stderr=subprocess.PIPE, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.time() + 600
        while time.time() < deadline and not (set(folder.iterdir()) - before):  # the temporary output exists
            time.sleep(0.5)
        time.sleep(5)  # some blocks written
        proc.send_signal(sig)
        code = proc.wait()
        left = sorted(p.name for p in set(folder.iterdir()) - before)
        print(f"{sig.name} after the first blocks: exit {code}, files left: {left or 'none'}; "
              f"last stderr line: {proc.stderr.read().strip().splitlines()[-1]}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("step", choices=["write", "run", "kill"])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--frames", type=int, default=200000)
    ap.add_argument("--method", default="kaczmarz")
    ap.add_argument("--block-size", type=int, default=None)
    ap.add_argument("--weights", default=None)
    ap.add_argument("--signals", nargs="+", default=["SIGTERM", "SIGINT"], help="kill: the signals tried")
    ap.add_argument("--select", default=None, help="run: a frame selection, e.g. 0:20000 (default: all)")
    a = ap.parse_args()
    if a.step == "write":
        write(a.folder, a.frames)
    elif a.step == "run":
        run(a.folder, a.method, a.block_size, a.weights, a.select)
    else:
        kill(a.folder, a.method, a.weights, a.signals)
