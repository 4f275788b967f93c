"""Variants of one method on the bench's *validation* splits (never the test split), to choose
defaults and compare trained models.

    python benchmarks/method_validation.py --method ppmpi --samples 60 --protocols realistic paper \\
        --variants base "sigma_start=0.2;sigma_end=0.01" "weights=published"
    python benchmarks/method_validation.py --method dernet --weights dernet19.pt \\
        --variants "refine=false" base "refine=pnp" "refine={'kind': 'pnp', 'sigma_factor': 2.0}"

A variant is ``key=value`` pairs joined by ';' (the method's parameters as ``--param`` reads them,
plus ``weights=FILE|NAME``), or ``base`` for the defaults (with ``--weights``, if given). The
calibration is the built-in simulated 19x19 one. Prints, per protocol and SNR, mean PSNR ± std (dB)
of every variant and of default ADMM-TV for reference, the mean over SNRs, then JSON.
"""
import argparse
import json

import numpy as np

from mpirecon import load_reconstructor, metrics
from mpirecon.bench.runner import BenchConfig, _data, split_seed
from mpirecon.cli.common import parse_params
from mpirecon.io.provenance import versions
from mpirecon.preprocess.selection import selected_system_matrix
from mpirecon.simulation.system_matrix import simulate_calibration


def parse(variant: str, weights=None) -> tuple[dict, object]:
    """(parameters, weights) of a variant string; ``weights`` is the default weights."""
    params = {} if variant == "base" else parse_params(variant.split(";"), "--variants")
    return params, params.pop("weights", weights)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", default="ppmpi")
    ap.add_argument("--weights", default=None, help="weights of every variant that does not name its own")
    ap.add_argument("--samples", type=int, default=60, help="validation phantoms per SNR")
    ap.add_argument("--protocols", nargs="+", default=["realistic"])
    ap.add_argument("--snr", type=float, nargs="+", default=[20.0, 25.0, 30.0, 35.0], help="a subset of the bench's levels")
    ap.add_argument("--variants", nargs="+", default=["base"])
    args = ap.parse_args()
    sim = simulate_calibration()
    sm = selected_system_matrix(sim.calibration)
    cfg = BenchConfig()
    recons = {}
    for v in args.variants:
        params, weights = parse(v, args.weights)
        recons[v] = load_reconstructor(args.method, sm, weights=weights, **params)
    reference = load_reconstructor("admm_tv", sm)
    results = {}
    for protocol in args.protocols:
        means = {v: [] for v in args.variants}
        for snr in args.snr:
            # the bench's validation split of this protocol and SNR (levels numbered in the bench's order)
            seed = split_seed(cfg.seed, protocol, list(cfg.snr_levels).index(snr), validation=True)
            sig, img, noise, _ = _data(protocol, cfg, sim, sm, snr, args.samples, seed)
            ref = metrics.psnr(reference.reconstruct(sig, noise=noise).images, img)
            row = [f"admm_tv default {ref.mean():.2f}"]
            for v, r in recons.items():
                p = metrics.psnr(r.reconstruct(sig, noise=noise).images, img)
                means[v].append(float(p.mean()))
                row.append(f"{v} {p.mean():.2f} ± {p.std():.2f}")
            print(f"{protocol} {snr:g} dB: " + " | ".join(row), flush=True)
        print(f"{protocol} mean over SNRs: " + " | ".join(f"{v} {np.mean(m):.2f}" for v, m in means.items()))
        results[protocol] = means
    print(json.dumps({"method": args.method, "weights": args.weights, "samples": args.samples, "snr": args.snr,
                      "results": results, "versions": versions()}))


if __name__ == "__main__":
    main()
