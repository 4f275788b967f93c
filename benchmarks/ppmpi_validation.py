"""PP-MPI variants on the bench's *validation* splits (never the test split), to choose defaults.

    python benchmarks/ppmpi_validation.py --samples 60 --protocols realistic paper \\
        --variants base "sigma_start=0.2;sigma_end=0.01" "weights=published"

A variant is ``key=value`` pairs joined by ';' (ppmpi parameters, plus ``weights=FILE|shipped|published``),
or ``base`` for the defaults. Prints, per protocol and SNR, mean PSNR ± std (dB) of every variant and of
tuned-free default ADMM-TV for reference, and the mean over SNRs.
"""
import argparse

import numpy as np

from mpirecon import load_reconstructor, metrics
from mpirecon.bench import PROTOCOL_SEED_OFFSETS, BenchConfig, _data
from mpirecon.selection import selected_system_matrix
from mpirecon.simulation.system_matrix import simulate_calibration


def parse(variant: str) -> tuple[dict, object]:
    """(ppmpi parameters, weights) of a variant string."""
    params, weights = {}, None
    if variant != "base":
        for kv in variant.split(";"):
            key, val = kv.split("=", 1)
            if key == "weights":
                weights = val
            else:
                params[key] = int(val) if key == "iterations" else val if val == "auto" else float(val)
    return params, weights


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=60, help="validation phantoms per SNR")
    ap.add_argument("--protocols", nargs="+", default=["realistic"])
    ap.add_argument("--snr", type=float, nargs="+", default=[20.0, 25.0, 30.0, 35.0])
    ap.add_argument("--variants", nargs="+", default=["base"])
    args = ap.parse_args()
    sim = simulate_calibration()
    sm = selected_system_matrix(sim.calibration)
    cfg = BenchConfig()
    recons = {v: load_reconstructor("ppmpi", sm, weights=parse(v)[1], **parse(v)[0]) for v in args.variants}
    reference = load_reconstructor("admm_tv", sm)
    for protocol in args.protocols:
        means = {v: [] for v in args.variants}
        for si, snr in enumerate(args.snr):
            # the bench's validation split of this protocol and SNR (seeds as mpirecon.bench.run_bench)
            seed = cfg.seed + 1000 * PROTOCOL_SEED_OFFSETS[protocol] + 10 * si + 5
            sig, img, noise, _ = _data(protocol, cfg, sim, sm, snr, args.samples, seed)
            ref = metrics.psnr(reference.reconstruct(sig, noise=noise).images, img)
            row = [f"admm_tv default {ref.mean():.2f}"]
            for v, r in recons.items():
                p = metrics.psnr(r.reconstruct(sig, noise=noise).images, img)
                means[v].append(p.mean())
                row.append(f"{v} {p.mean():.2f} ± {p.std():.2f}")
            print(f"{protocol} {snr:g} dB: " + " | ".join(row), flush=True)
        print(f"{protocol} mean over SNRs: " + " | ".join(f"{v} {np.mean(m):.2f}" for v, m in means.items()))


if __name__ == "__main__":
    main()
