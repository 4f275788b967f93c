"""Time the deep image prior: seconds per frame for one frame and for a batch of frames.

    python benchmarks/dip_speed.py                       # 19x19 built-in simulation, 4000 iterations
    python benchmarks/dip_speed.py --iterations 500 --batch 8 --channels 16 --depth 2

Every frame runs all iterations (``stopping=none``), so the numbers are the worst case of the
discrepancy stop. Prints one JSON line per run (frames, seconds, seconds per frame, threads).
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from mpirecon import load_reconstructor
from mpirecon.preprocess.selection import selected_system_matrix
from mpirecon.simulation.phantoms import HOLDOUT_FAMILIES, mixture
from mpirecon.simulation.system_matrix import simulate_calibration


def main() -> None:
    """Parse the options, time one frame and one batch, print the results as JSON lines."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iterations", type=int, default=4000)
    p.add_argument("--batch", type=int, nargs="+", default=[16], help="batch sizes to time besides 1 frame")
    p.add_argument("--channels", type=int, default=None)
    p.add_argument("--depth", type=int, default=None)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    sm = selected_system_matrix(simulate_calibration().calibration)
    images = mixture(max(args.batch), sm.image_shape, HOLDOUT_FAMILIES, np.random.default_rng(0))
    spectra = images.reshape(images.shape[0], -1) @ sm.matrix.T
    params = {k: v for k, v in (("channels", args.channels), ("depth", args.depth)) if v is not None}
    recon = load_reconstructor("dip", sm, iterations=args.iterations, stopping="none", progress=False,
                               dtype=args.dtype, device=args.device, **params)
    for frames in [1] + list(args.batch):
        t0 = time.perf_counter()
        recon.reconstruct(spectra[:frames])
        seconds = time.perf_counter() - t0
        print(json.dumps({"frames": frames, "iterations": args.iterations, "seconds": round(seconds, 2),
                          "seconds_per_frame": round(seconds / frames, 3), "grid": list(sm.grid[:2]),
                          "rows": sm.num_rows, "parameters": {k: recon.parameters[k] for k in ("channels", "depth", "dtype", "device")},
                          "torch_threads": torch.get_num_threads()}), flush=True)


if __name__ == "__main__":
    main()
