"""Train DERnet for your own system matrix and check it against a classical solver.

    python examples/train_dernet_on_your_matrix.py --sm your_sm.mdf -o dernet.pt
    python examples/train_dernet_on_your_matrix.py              # a simulated 15 x 15 matrix, quick

The network is tied to the calibration it was trained for: the same frequency selection (here
SNR > --snr-threshold), the same rows, the same matrix (a fingerprint is stored in the weights).
Training data are simulated with that matrix, b = A c + n, on the default phantom prior, so no
measured training data are needed. The CLI equivalent is ``mpirecon train --sm your_sm.mdf -o
dernet.pt`` (the documented recipe: 12 000 samples, 8 epochs, about 8 min on 2 CPU cores);
this script defaults to a quick run so you can see the whole path first. Afterwards
``mpirecon run meas.mdf --sm your_sm.mdf --method dernet --weights dernet.pt -o rec.mdf``
reconstructs your measurements.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mpirecon import DEFAULT_SNR_THRESHOLD, load_reconstructor
from mpirecon.io.loading import load_system_matrix
from mpirecon.metrics import psnr
from mpirecon.simulation.datasets import SignalRecipe, generate_signals
from mpirecon.simulation.scanner import ScannerParams
from mpirecon.simulation.system_matrix import simulate_calibration
from mpirecon_dernet.training import TrainConfig, train_dernet


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sm", help="MDF calibration (default: simulate a 15 x 15 one into --out-dir)")
    ap.add_argument("-o", "--output", default=None, help="weights file (default OUT_DIR/dernet.pt)")
    ap.add_argument("--out-dir", default="train-output")
    ap.add_argument("--snr-threshold", type=float, default=DEFAULT_SNR_THRESHOLD)
    ap.add_argument("--samples", type=int, default=6000, help="training samples (recipe: 12000)")
    ap.add_argument("--epochs", type=int, default=6, help="epochs (recipe: 8)")
    ap.add_argument("--test-snr", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sm_path = args.sm
    if sm_path is None:
        sm_path = out / "simulated_sm.mdf"
        simulate_calibration(ScannerParams(grid=(15, 15))).write(sm_path, overwrite=True)
    weights = Path(args.output) if args.output else out / "dernet.pt"

    sm = load_system_matrix(sm_path, snr_threshold=args.snr_threshold)
    print(f"{sm_path}: {sm.num_rows} of {sm.selection['num_rows_total']} rows with SNR > {args.snr_threshold}, "
          f"grid {sm.grid[:2]}")
    cfg = TrainConfig(samples=args.samples, val_samples=max(args.samples // 8, 64), epochs=args.epochs,
                      seed=args.seed, device=args.device, max_minutes=None)
    result = train_dernet(sm, weights, cfg)
    print(f"best epoch {result.best_epoch}: validation PSNR {result.best_val_psnr:.2f} dB, "
          f"{result.seconds / 60:.1f} min -> {weights}")

    # held-out test signals simulated with the same matrix (the paper's protocol)
    test = SignalRecipe(200, (args.test_snr, args.test_snr), seed=args.seed + 99)
    signals, images, _ = generate_signals(sm.matrix, sm.image_shape, test)
    scores = {}
    for name, w in (("dernet", weights), ("admm_l1tv", None)):
        recon = load_reconstructor(name, sm, weights=w, device=args.device) if w else load_reconstructor(name, sm)
        scores[name] = float(np.mean(psnr(recon.reconstruct(signals).images, images)))
        print(f"{name:10s} PSNR {scores[name]:.2f} dB on 200 test phantoms at {args.test_snr:g} dB SNR")
    return {"weights": weights, "scores": scores, "result": result}


if __name__ == "__main__":
    main()
