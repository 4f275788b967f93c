"""Re-score the classical methods of a finished bench on the first N test samples of each cell.

    python benchmarks/same_samples.py bench8/results.json --sm sm19.mdf [--samples 50]

A method capped to fewer test samples (DIP: 50, as the paper's Table 3) is scored on the first N
samples of the test split, the others on all of them; their means are then not comparable. This
script rebuilds each cell's test split exactly as the bench did (same seeds), runs every
classical method with the parameters the bench tuned for that cell (read from results.json) on
the first N samples, and prints PSNR mean ± std next to the capped methods' own numbers. Bench
runs that record per-sample values (``samples`` in each entry) do not need it:
``benchmarks/paper_tables.py`` compares those directly.
"""
from __future__ import annotations

import argparse
import json

import numpy as np

CLASSICAL = ["pinv", "kaczmarz", "cgnr", "admm_l1", "admm_tv", "admm_l1tv"]


def main():
    from mpirecon import load_reconstructor, metrics
    from mpirecon.bench.runner import BenchConfig, _data, _load_calibration, split_seed
    from mpirecon.preprocess.selection import selected_system_matrix

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results")
    ap.add_argument("--sm", required=True, help="the calibration the bench ran on")
    ap.add_argument("--samples", type=int, default=50)
    args = ap.parse_args()
    results = json.load(open(args.results))
    cfg = BenchConfig(**results["config"])
    sim, calib, _ = _load_calibration(args.sm)
    sm = selected_system_matrix(calib, cfg.snr_threshold)
    n = args.samples
    for protocol, levels in results["protocols"].items():
        print(f"### {protocol}: PSNR (dB) on the first {n} test samples")
        for si, snr in enumerate(cfg.snr_levels):
            cell = levels[f"{snr:g}"]
            seed = split_seed(cfg.seed, protocol, si)
            sig, img, noise, _ = _data(protocol, cfg, sim, sm, snr, cfg.test_samples, seed)
            row = []
            for name, entry in cell.items():
                if entry.get("test_samples") == n:
                    row.append(f"{name} {entry['psnr']['mean']:.2f} ± {entry['psnr']['std']:.2f}")
                elif name in CLASSICAL:
                    params = {k: v for k, v in entry["parameters"].items() if k not in ("device",)}
                    ps = metrics.psnr(load_reconstructor(name, sm, **params).reconstruct(
                        sig[:n], noise=noise[:n] if cfg.known_noise else None).images, img[:n])
                    row.append(f"{name} {np.mean(ps):.2f} ± {np.std(ps):.2f}")
            print(f"| {snr:g} dB | " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
