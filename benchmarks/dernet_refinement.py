"""DERnet with and without data-consistent refinement on the bench's test sets.

Usage: python benchmarks/dernet_refinement.py --weights dernet19.pt [--samples 300]
       [--protocols paper,holdout,realistic] [--errors 0.03,0.1,0.3]

The calibration is the built-in simulated 19x19 one (the weights must be trained for it, e.g.
``mpirecon simulate system-matrix -o sm19.mdf && mpirecon train --sm sm19.mdf -o dernet19.pt``).
Each test set is the one ``mpirecon bench`` draws (same seeds); every frame's noise level is
given, as the bench does. Variants: the network alone, the default (plug-and-play) refinement, and
the proximal refinement (``refine=proximal``) for each ``--errors`` value of its ``error``.
Prints mean PSNR (dB) per protocol, SNR and variant, then JSON.
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from mpirecon import load_reconstructor
from mpirecon.bench.runner import BenchConfig, _data, split_seed
from mpirecon.metrics import psnr
from mpirecon.io.provenance import versions
from mpirecon.preprocess.selection import selected_system_matrix
from mpirecon.simulation.system_matrix import simulate_calibration


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", required=True)
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--protocols", default="paper,holdout,realistic")
    ap.add_argument("--errors", default="0.03,0.1,0.3", help="error values of the proximal refinement")
    args = ap.parse_args()
    sim = simulate_calibration()
    sm = selected_system_matrix(sim.calibration)
    cfg = BenchConfig()
    variants = {"network": {"refine": False}, "plug-and-play": {"refine": "pnp"}}
    variants.update({f"proximal error={e}": {"refine": {"kind": "proximal", "error": float(e)}}
                     for e in args.errors.split(",")})
    recons = {k: load_reconstructor("dernet", sm, weights=args.weights, **v) for k, v in variants.items()}
    out = {}
    for protocol in args.protocols.split(","):
        for si, snr in enumerate(cfg.snr_levels):
            seed = split_seed(cfg.seed, protocol, si)
            sig, img, noise, _ = _data(protocol, cfg, sim, sm, snr, args.samples, seed)
            row = {k: float(np.mean(psnr(r.reconstruct(sig, noise=noise).images, img))) for k, r in recons.items()}
            out[f"{protocol}/{snr:g}"] = row
            print(protocol, f"{snr:g} dB", "  ".join(f"{k}: {v:.2f}" for k, v in row.items()), flush=True)
    print(json.dumps({"weights": args.weights, "samples": args.samples, "results": out, "versions": versions()}))


if __name__ == "__main__":
    main()
