"""How an untrained model-based network reconstructs as a function of its ADMM penalty ρ.

An untrained ADMM-Net (each stage's CNN ends in a zero layer) is K iterations of non-negative
least-squares ADMM with penalty ρ: where it starts training. This script prints its mean PSNR on
validation volumes of the training prior for absolute penalties ρ (and ρ in the operator's unit,
``ρ / unit``), beside the zero image's, on a calibration file::

    python benchmarks/unrolled_rho.py sm.mdf --stages 5 8 --rho 0.1 1 3 10 100 --samples 16

It reads the calibration in complex64 and builds the networks' factors as training does (the
compressed operator on a 37^3 calibration). Seeded; prints one line per (ρ, K).
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sm")
    ap.add_argument("--stages", type=int, nargs="+", default=[5, 8])
    ap.add_argument("--rho", type=float, nargs="+", default=[0.1, 1.0, 3.0, 10.0, 100.0], help="absolute penalties")
    ap.add_argument("--samples", type=int, default=16, help="validation volumes of the training prior")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from baselines.learned.admm_net_model import ADMMNet, ADMMNetHyperParams, predict
    from baselines.learned.admm_net_training import ADMMNetTrainConfig
    from mdf_io import read_system_matrix
    from mpirecon.learning.unrolled import factors_for
    from mpirecon.metrics import psnr
    from mpirecon.preprocess.selection import selected_system_matrix

    t0 = time.perf_counter()
    sm = selected_system_matrix(read_system_matrix(args.sm, dtype=np.complex64), 1.5)
    factors = factors_for(sm, "float32", "cpu")
    signals, images = ADMMNetTrainConfig(samples=1, val_samples=args.samples, seed=args.seed).pairs(sm).validation
    images = images.numpy()
    print(json.dumps({"sm": args.sm, "grid": list(sm.image_shape), "rows": sm.num_rows, "unit": factors.unit,
                      "zero_image_psnr": round(float(psnr(np.zeros_like(images), images).mean()), 2),
                      "set_up_s": round(time.perf_counter() - t0, 1)}), flush=True)
    with torch.no_grad():
        for rho in args.rho:
            for k in args.stages:
                net = ADMMNet(ADMMNetHyperParams(image_shape=tuple(sm.image_shape), stages=k, channels=2, layers=2,
                                                 rho0=rho))
                out = predict(net, signals, factors).numpy()
                print(json.dumps({"rho": rho, "rho_in_unit": round(rho / factors.unit, 4), "stages": k,
                                  "psnr": round(float(psnr(out, images).mean()), 2)}), flush=True)


if __name__ == "__main__":
    main()
