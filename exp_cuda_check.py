"""GPU checks: every torch-capable method gives the CPU result on cuda (experiment script)."""
import time
import numpy as np, torch
from mpirecon.simulation.system_matrix import simulate_calibration
from mpirecon.selection import selected_system_matrix
from mpirecon.registry import load_reconstructor
from mpirecon.simulation.datasets import SignalRecipe, generate_signals
from mpirecon_dernet.training import TrainConfig, train_dernet

sim = simulate_calibration()
sm = selected_system_matrix(sim.calibration, 1.5)
sig, img, _ = generate_signals(sm.matrix, sm.image_shape, SignalRecipe(1000, (30, 30), seed=5))
for dev in ("cuda",):
    res = train_dernet(sm, "/tmp/d.pt", TrainConfig(samples=4000, val_samples=500, epochs=2, device=dev), progress=False)
    print("dernet trained on", dev, res.best_val_psnr, res.seconds)
for name, w in (("dernet", "/tmp/d.pt"), ("ppmpi", None), ("ppmpi", "/tmp/den19.pt")):
    out = {}
    for dev in ("cpu", "cuda"):
        try:
            r = load_reconstructor(name, sm, weights=w, device=dev)
        except Exception as e:
            print(name, dev, "ERR", type(e).__name__, e); continue
        r.reconstruct(sig[:4])
        t = time.perf_counter(); x = r.reconstruct(sig).images; dt = time.perf_counter() - t
        out[dev] = x
        print(name, dev, f"{dt/len(sig)*1e3:.3f} ms/frame batch")
    if len(out) == 2:
        print(name, "max rel diff cpu/cuda", float(np.abs(out["cpu"] - out["cuda"]).max() / np.abs(out["cpu"]).max()))
