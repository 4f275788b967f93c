"""The automatic parameters after frame averaging: with the noise estimate that follows the averaging
(σ / sqrt(n), the default) and with the single-frame σ that was recorded before the fix.

    python benchmarks/auto_after_averaging.py DIR      # writes DIR/sm.mdf, DIR/meas.mdf, prints a table

The measurement is the issue's case: the built-in 19x19 calibration, the shape phantom at 15 dB SNR,
100 frames and 20 background frames, averaged into one frame through a :class:`ReconstructionPlan`.
PSNR against the phantom (peak of the truth, as ``mpirecon bench``).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from mpirecon.cli.main import main
from mpirecon.metrics import psnr
from mpirecon.plan import PlanCache, ReconstructionPlan
from mpirecon.io.loading import load_measurement_for
from mpirecon.preprocess.noise import from_background
from mpirecon.simulation.phantoms import named_phantom

CASES = {"kaczmarz": {"lam": "auto"}, "pinv": {"lam": "auto"}, "admm_l1tv": {"mu": "auto"}}


def main_(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    sm, meas = folder / "sm.mdf", folder / "meas.mdf"
    if not sm.exists():
        assert main(["simulate", "system-matrix", "-o", str(sm)]) == 0
    if not meas.exists():
        assert main(["simulate", "measurement", "--sm", str(sm), "--phantom", "shape", "--snr", "15",
                     "--frames", "100", "--background-frames", "20", "-o", str(meas)]) == 0
    truth = named_phantom("shape", (19, 19))[None]
    cache = PlanCache()
    print("| method | parameter | PSNR, σ follows the average | PSNR, single-frame σ (before the fix) | "
          "σ single / σ average |\n|---|---|---|---|---|")
    for method, params in CASES.items():
        plan = ReconstructionPlan(inputs={"measurement": str(meas), "calibration": str(sm)},
                                  frames={"average": True}, method={"name": method, "parameters": params})
        now = plan.run(cache=cache).images
        recon = next(v for k, v in cache._bound.items() if k[1] == method)  # the plan's bound method
        m = load_measurement_for(meas, recon.system_matrix, average=True)
        single = from_background(m.background, m.background_subtracted, 1)  # what was recorded before
        averaged = from_background(m.background, m.background_subtracted, m.frames_averaged)
        before = recon.with_params(**params).reconstruct(m, noise=single).images
        score = lambda x: float(psnr(x.reshape(1, -1), truth.reshape(1, -1))[0])
        ratio = float(np.median(single.sigma / averaged.sigma))
        print(f"| {method} | {params} | {score(now):.2f} | {score(before):.2f} | {ratio:.2f} |")


if __name__ == "__main__":
    main_(Path(sys.argv[1]))
