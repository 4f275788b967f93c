"""Deep image prior: discrepancy-principle stop vs a fixed iteration count (and tuned Kaczmarz).

    python benchmarks/dip_stopping.py                      # 8 frames, 12x12 simulation, 4000 iterations
    python benchmarks/dip_stopping.py --frames 8 --grid 12 --iterations 4000 --lr 1e-3

Signals b = A c + n at 20 and 30 dB (holdout phantom families, seeded); the discrepancy runs get
the true per-frame noise level. Kaczmarz's λ is picked on the same frames (an oracle, so its
number is an upper bound). Prints one JSON line per SNR: mean PSNR, mean iterations, seconds.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from mpirecon import load_reconstructor
from mpirecon.metrics import psnr
from mpirecon.preprocess.selection import selected_system_matrix
from mpirecon.simulation.noise import complex_noise, noise_sigma
from mpirecon.simulation.phantoms import HOLDOUT_FAMILIES, mixture
from mpirecon.simulation.scanner import ScannerParams
from mpirecon.simulation.system_matrix import simulate_calibration


def main() -> None:
    """Parse the options, run fixed and discrepancy-stopped DIP and Kaczmarz, print JSON lines."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--grid", type=int, default=12)
    p.add_argument("--iterations", type=int, default=4000)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--tau", type=float, nargs="+", default=[1.0, 1.1])
    p.add_argument("--snr", type=float, nargs="+", default=[20.0, 30.0])
    args = p.parse_args()
    sm = selected_system_matrix(simulate_calibration(ScannerParams(grid=(args.grid, args.grid), subsamples=2)).calibration)
    rng = np.random.default_rng(7)
    images = mixture(args.frames, sm.image_shape, HOLDOUT_FAMILIES, rng)
    clean = images.reshape(args.frames, -1) @ sm.matrix.T
    common = dict(iterations=args.iterations, progress=False, **({"lr": args.lr} if args.lr else {}))
    for snr in args.snr:
        sigma = noise_sigma(clean, snr)  # (F, 1)
        b = clean + complex_noise(clean.shape, sigma, rng)
        noise = np.broadcast_to(sigma, clean.shape)
        row = {"snr": snr, "grid": list(sm.grid[:2]), "rows": sm.num_rows, **common}
        runs = [("fixed", dict(stopping="none"), None)] + [(f"discrepancy tau={t}", dict(tau=t), noise) for t in args.tau]
        for name, params, level in runs:
            t0 = time.perf_counter()
            res = load_reconstructor("dip", sm, **common, **params).reconstruct(b, noise=level)
            row[name] = {"psnr": round(float(np.mean(psnr(res.images, images))), 2),
                         "iterations": float(np.mean(res.extra["iterations"])),
                         "seconds": round(time.perf_counter() - t0, 1)}
        kac = load_reconstructor("kaczmarz", sm)
        row["kaczmarz (oracle lam)"] = max((
            {"psnr": round(float(np.mean(psnr(kac.with_params(lam=lam).reconstruct(b).images, images))), 2), "lam": lam}
            for lam in (1e-3, 3e-3, 1e-2, 3e-2, 0.1)), key=lambda r: r["psnr"])
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
