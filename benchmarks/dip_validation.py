"""DIP variants vs default Kaczmarz on the bench's realistic *validation* split (never the test split).

    python benchmarks/dip_validation.py 16 "lr=0.01,lr=0.03,lr=0.06"

Argument 1: phantoms per SNR; argument 2: comma-separated variants, each ``key=value`` pairs joined
by ';' (DIP parameters), or ``base`` for the defaults. Prints mean PSNR (dB), median iterations
used and wall time per SNR.
"""
import sys, time, numpy as np
from mpirecon.bench.runner import BenchConfig, _data
from mpirecon.simulation.system_matrix import simulate_calibration
from mpirecon.preprocess.selection import selected_system_matrix
from mpirecon import load_reconstructor, metrics
sim = simulate_calibration(); sm = selected_system_matrix(sim.calibration)
cfg = BenchConfig(); n = int(sys.argv[1]) if len(sys.argv) > 1 else 16
variants = sys.argv[2].split(",") if len(sys.argv) > 2 else ["base"]
for si, snr in enumerate([20.0, 25.0, 30.0, 35.0]):
    sig, img, noise, fam = _data("realistic", cfg, sim, sm, snr, n, cfg.seed + 1000 + 10*si + 5)
    k = load_reconstructor("kaczmarz", sm)
    row = [f"kacz {np.mean(metrics.psnr(k.reconstruct(sig, noise=noise).images, img)):.2f}"]
    for v in variants:
        params = dict(progress=False)
        if v != "base":
            for kv in v.split(";"):
                key, val = kv.split("=", 1)
                params[key] = val if val == "auto" else type(getattr(load_reconstructor("dip", None).config, key))(val)
        r = load_reconstructor("dip", sm, **params)
        t = time.time(); res = r.reconstruct(sig, noise=noise)
        its = res.extra.get("iterations")
        row.append(f"{v} {np.mean(metrics.psnr(res.images, img)):.2f} (its med {int(np.median(its))}, {time.time()-t:.0f}s)")
    print(snr, " | ".join(row), flush=True)
