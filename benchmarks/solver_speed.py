"""Per-frame reconstruction time of each method on the default 19x19 simulated calibration.

Usage: python benchmarks/solver_speed.py [--weights dernet.pt] [--repeats 5]
Prints ms/frame for a single frame and for a batch of 100 frames (set-up excluded), and for
DERnet (default plug-and-play refinement, ``dernet@prox`` the proximal refinement, ``dernet@plain``
the network alone) also frames/s over 2000 frames (its default batches of 1024), with versions, so
the numbers can be quoted with the command that made them.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from mpirecon import load_reconstructor
from mpirecon.io.provenance import versions
from mpirecon.preprocess.selection import selected_system_matrix
from mpirecon.simulation.datasets import SignalRecipe, generate_signals
from mpirecon.simulation.system_matrix import simulate_calibration


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", default=None, help="DERnet weights trained for the default calibration")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    sm = selected_system_matrix(simulate_calibration().calibration)
    sig, _, _ = generate_signals(sm.matrix, sm.image_shape, SignalRecipe(100, (30, 30), seed=1))
    methods = {"pinv": {}, "kaczmarz": {"iterations": 10}, "cgnr": {}, "admm_l1": {}, "admm_tv": {},
               "admm_l1tv": {"iterations": 200}, "ppmpi": {}}
    if args.weights:
        methods.update({"dernet": {}, "dernet@pnp": {"refine": "pnp"}, "dernet@plain": {"refine": False}})
    rows = {}
    for name, params in methods.items():
        method = name.split("@")[0]
        r = load_reconstructor(method, sm, weights=args.weights if method == "dernet" else None, **params)
        r.reconstruct(sig[:2])
        single = min(_time(r, sig[:1]) for _ in range(args.repeats))
        batch = min(_time(r, sig) for _ in range(max(1, args.repeats // 2))) / sig.shape[0]
        rows[name] = {"ms_single": 1e3 * single, "ms_per_frame_batch100": 1e3 * batch}
        print(f"{name:12s} single {1e3 * single:8.3f} ms   batch of 100: {1e3 * batch:8.3f} ms/frame")
        if method == "dernet":
            many = np.tile(sig, (20, 1))
            seconds = min(_time(r, many) for _ in range(max(1, args.repeats // 2)))
            rows[name]["frames_per_second_2000"] = many.shape[0] / seconds
            print(f"{name:12s} throughput {many.shape[0] / seconds:8.0f} frames/s over {many.shape[0]} frames")
    print(json.dumps({"rows_selected": sm.num_rows, "grid": sm.grid, "versions": versions(), "results": rows}))


def _time(r, sig):
    t = time.perf_counter()
    r.reconstruct(sig)
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
