"""On a machine with a GPU: every method with a torch path gives the CPU result on cuda.

Usage: python benchmarks/gpu_consistency.py [--denoiser den.pt] [--frames 1000]
Trains a small DERnet on the GPU (2 epochs, 4000 samples) for the default 19x19 calibration,
then reconstructs 1000 simulated frames (30 dB) in one batch with every classical method (pinv,
kaczmarz, cgnr, admm_l1, admm_tv, admm_l1tv; float64 on both devices) and with dernet and ppmpi,
on cpu and cuda in the same run, printing ms/frame on each and the largest difference relative
to the image maximum.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from mpirecon import load_reconstructor
from mpirecon.preprocess.selection import DEFAULT_SNR_THRESHOLD, selected_system_matrix
from mpirecon.simulation.datasets import SignalRecipe, generate_signals
from mpirecon.simulation.system_matrix import simulate_calibration
from mpirecon_dernet.training import TrainConfig, train_dernet


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--denoiser", default=None, help="also check ppmpi with this denoiser file")
    ap.add_argument("--frames", type=int, default=1000, help="frames reconstructed in one batch")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: nothing to compare")
    sm = selected_system_matrix(simulate_calibration().calibration, DEFAULT_SNR_THRESHOLD)
    sig, _, _ = generate_signals(sm.matrix, sm.image_shape, SignalRecipe(args.frames, (30, 30), seed=5))
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "dernet.pt"
        res = train_dernet(sm, weights, TrainConfig(samples=4000, val_samples=500, epochs=2, device="cuda"),
                           progress=False)
        print(f"dernet trained on cuda: val PSNR {res.best_val_psnr:.2f} dB in {res.seconds:.1f} s")
        classical = [(n, None) for n in ("pinv", "kaczmarz", "cgnr", "admm_l1", "admm_tv", "admm_l1tv")]
        cases = classical + [("dernet", weights), ("ppmpi", None)] + ([("ppmpi", args.denoiser)] if args.denoiser else [])
        for name, w in cases:
            out = {}
            for dev in ("cpu", "cuda"):
                r = load_reconstructor(name, sm, weights=w, device=dev)
                r.reconstruct(sig[:4])
                t = time.perf_counter()
                out[dev] = r.reconstruct(sig).images
                print(f"{name} ({w or 'default weights'}) {dev}: {(time.perf_counter() - t) / len(sig) * 1e3:.3f} ms/frame")
            diff = np.abs(out["cpu"] - out["cuda"]).max() / np.abs(out["cpu"]).max()
            print(f"{name}: max |cpu - cuda| / max |cpu| = {diff:.2e}")


if __name__ == "__main__":
    main()
