"""DERnet's slice route beside the 3D methods, on the bench's 3D realistic protocol.

DERnet's fully connected domain transform maps the selected rows to one image, so on a 3D
calibration it is trained for one slice (``mpirecon train --sm sm.mdf --slice z=K``) and
reconstructs that slice from the measurement of the whole volume, as the DERnet paper did. This
script draws the very test split of ``mpirecon bench --protocols realistic`` (same seed, same
SNR levels), reconstructs it with DERnet on slice K and with the 3D methods of a finished bench
run (their tuned parameters from its results.json), and reports PSNR and SSIM on slice K of the
truth for every method (3D methods: slice K of their volumes).

Usage:
    python benchmarks/slice_route_3d.py BENCH_DIR --sm sm.mdf --dernet dernet_z9.pt [--slice 9]
        [--methods admm_l1 ppmpi admm_net] [--weights admm_net=an.pt] [--out slice_route.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from mdf_io import MDFFile, read_system_matrix
from mpirecon import metrics
from mpirecon.bench.runner import BenchConfig, _data, method_class, split_seed
from mpirecon.preprocess.selection import selected_system_matrix
from mpirecon.registry import get_reconstructor_class
from mpirecon.simulation.system_matrix import simulation_from_file


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bench_dir")
    ap.add_argument("--sm", required=True)
    ap.add_argument("--dernet", required=True, help="DERnet weights trained on the slice (--slice z=K)")
    ap.add_argument("--slice", type=int, default=None, help="z index K (default: the central slice)")
    ap.add_argument("--methods", nargs="+", default=["admm_l1", "ppmpi", "admm_net"])
    ap.add_argument("--weights", nargs="*", default=[], help="METHOD=FILE for the 3D methods")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    results = json.loads((Path(args.bench_dir) / "results.json").read_text())
    cfg = BenchConfig(**results["config"])
    weights = dict(w.split("=", 1) for w in args.weights)
    with MDFFile(args.sm) as mdf:
        sim = simulation_from_file(mdf)
    sm_sel = selected_system_matrix(read_system_matrix(args.sm), cfg.snr_threshold)
    k = sm_sel.image_shape[0] // 2 if args.slice is None else args.slice
    sm_slice = sm_sel.take_slice("z", k)
    dernet = get_reconstructor_class("dernet")(sm_slice, weights=args.dernet)
    report = {"command": " ".join(sys.argv), "slice_z": k, "bench": str(args.bench_dir), "levels": {}}
    for si, snr in enumerate(cfg.snr_levels):
        level = results["protocols"]["realistic"].get(f"{snr:g}")
        if level is None:
            continue
        sig, img, noise, fams = _data("realistic", cfg, sim, sm_sel, snr, cfg.test_samples,
                                      split_seed(cfg.seed, "realistic", si))
        truth = img[:, k]
        rows = {}
        t0 = time.perf_counter()
        rows["dernet (slice route)"] = dernet.reconstruct(sig, noise=noise).images.reshape(truth.shape)
        times = {"dernet (slice route)": (time.perf_counter() - t0) / len(sig)}
        for name in args.methods:
            params = dict(level[name]["parameters"]) if name in level else {}
            params = {p: v for p, v in params.items() if p in method_class(name).Config.model_fields}
            recon = method_class(name)(sm_sel, weights=weights.get(name, level.get(name, {}).get("weights")), **params)
            t0 = time.perf_counter()
            rows[name] = recon.reconstruct(sig, noise=noise).images[:, k]
            times[name] = (time.perf_counter() - t0) / len(sig)
        report["levels"][f"{snr:g}"] = {
            m: {"psnr": metrics.summarize(metrics.psnr(r, truth)), "ssim": metrics.summarize(metrics.ssim(r, truth)),
                "seconds_per_frame": t} for (m, r), t in zip(rows.items(), times.values())}
        print(snr, {m: round(v["psnr"]["mean"], 2) for m, v in report["levels"][f"{snr:g}"].items()}, flush=True)
    text = json.dumps(report, indent=1)
    if args.out:
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
