"""How strong each part of the physics-shift protocol is: Kaczmarz and ADMM-L1TV (defaults) on
60 samples at 30 dB with one part of the shift at a time (the built-in 19x19 calibration).

    python benchmarks/physics_shift_parts.py
"""
import numpy as np

from mpirecon import metrics
from mpirecon.bench.runner import BenchConfig, _data, _load_calibration
from mpirecon.registry import load_reconstructor
from mpirecon.preprocess.selection import selected_system_matrix
from mpirecon.simulation.shift import PhysicsShift, shifted_physics

NONE = dict(relaxation_time=None, core_diameter=None, drive_amplitude_error=0.0, receive_cutoff=None, receive_delay=0.0)
PARTS = {"none": {}, "relaxation 5 us": dict(relaxation_time=5e-6), "relaxation 3 us": dict(relaxation_time=3e-6),
         "cores 27 nm": dict(core_diameter=27e-9), "cores 28 nm": dict(core_diameter=28e-9),
         "drive +3 %": dict(drive_amplitude_error=0.03), "drive +5 %": dict(drive_amplitude_error=0.05),
         "low-pass 2 MHz": dict(receive_cutoff=2e6), "low-pass 3 MHz": dict(receive_cutoff=3e6),
         "delay 20 ns": dict(receive_delay=20e-9), "default shift": None}


def main() -> None:
    cfg = BenchConfig()
    sim, calib, _ = _load_calibration(None)
    sm = selected_system_matrix(calib, cfg.snr_threshold)
    pos = sim.calibration.rows.positions_of(sm.rows)
    ref = sim.physics.matrix[pos]
    print("| shift | row change | kaczmarz | admm_l1tv |\n|---|---|---|---|")
    for name, part in PARTS.items():
        shift = PhysicsShift() if part is None else PhysicsShift(**dict(NONE, **part))
        matrix = shifted_physics(sim, shift)
        sig, img, sigma, _ = _data("physics-shift", cfg, sim, sm, 30.0, 60, 5, matrix)
        change = np.linalg.norm(ref - matrix[pos]) / np.linalg.norm(ref)
        psnr = [metrics.psnr(load_reconstructor(m, sm).reconstruct(sig, noise=sigma).images, img).mean()
                for m in ("kaczmarz", "admm_l1tv")]
        print(f"| {name} | {change:.3f} | {psnr[0]:.2f} | {psnr[1]:.2f} |")


if __name__ == "__main__":
    main()
