"""Time per frame of DERnet's variants against ADMM-L1TV, in one process (same run).

    python benchmarks/dernet_speed.py WEIGHTS [--sm SM]

Single frame: the best of three passes over 20 frames, one frame per call; batch: 100 frames in
one call. Realistic-protocol spectra at 30 dB of the built-in 19x19 calibration (or SM's, which
must carry its simulation).
"""
import argparse
import time

from mpirecon.bench.runner import BenchConfig, _data, _load_calibration
from mpirecon.registry import load_reconstructor
from mpirecon.preprocess.selection import selected_system_matrix


def timing(recon, sig, sigma):
    recon.reconstruct(sig[:2], noise=sigma[:2])  # warm-up
    single = 1e9
    for _ in range(3):
        t = time.perf_counter()
        for i in range(20):
            recon.reconstruct(sig[i:i + 1], noise=sigma[i:i + 1])
        single = min(single, (time.perf_counter() - t) / 20)
    t = time.perf_counter()
    recon.reconstruct(sig, noise=sigma)
    return 1000 * single, 1000 * (time.perf_counter() - t) / sig.shape[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("weights")
    ap.add_argument("--sm", default=None)
    args = ap.parse_args()
    cfg = BenchConfig()
    sim, calib, _ = _load_calibration(args.sm)
    sm = selected_system_matrix(calib, cfg.snr_threshold)
    sig, _, sigma, _ = _data("realistic", cfg, sim, sm, 30.0, 100, 5)
    rows = {"admm_l1tv (defaults)": load_reconstructor("admm_l1tv", sm),
            "dernet (defaults)": load_reconstructor("dernet", sm, weights=args.weights),
            "dernet, pull from the noise only (misfit=false)": load_reconstructor(
                "dernet", sm, weights=args.weights, refine={"kind": "proximal", "misfit": False}),
            "dernet refine iterations=50": load_reconstructor("dernet", sm, weights=args.weights,
                                                             refine={"kind": "proximal", "iterations": 50}),
            "dernet refine=false": load_reconstructor("dernet", sm, weights=args.weights, refine=False),
            "dernet refine=pnp": load_reconstructor("dernet", sm, weights=args.weights, refine="pnp")}
    print("| method | single frame (ms) | per frame, batch of 100 (ms) |\n|---|---|---|")
    for name, recon in rows.items():
        single, batch = timing(recon, sig, sigma)
        print(f"| {name} | {single:.1f} | {batch:.2f} |")


if __name__ == "__main__":
    main()
