"""Our Kaczmarz against a re-implementation of the MDF repository's python reference ``kaczmarzReg``.

Usage: python benchmarks/kaczmarz_reference.py [--grid 19] [--rows 5000] [--frames 100] [--reference-frames 3]
       python benchmarks/kaczmarz_reference.py --two-d [--two-d-rows 1219]   (the default 2D 19x19 calibration)

The reference (MagneticParticleImaging/MDF, python example ``kaczmarzReg(A, b, iterations,
lambd, enforceReal, enforcePositive, shuffle)``) is a plain per-row Python loop with an absolute
lambda; re-written here from its published form::

    for each sweep:  for each row k (in order, rows of zero energy skipped):
        beta = (b[k] - A[k]·x - sqrt(λ) residual[k]) / (||A[k]||² + λ)
        x += beta * conj(A[k]);   residual[k] += sqrt(λ) * beta
    after each sweep: enforceReal -> x.imag = 0; enforcePositive -> x = x * (x.real > 0)

With ``lam = λ / a²`` (a = the operator's matrix scale, :func:`mpirecon.physics.operator.matrix_scale`)
our solver's iterates are the same (its ``v`` is ``residual / sqrt(λ)`` in scaled units): this
script asserts that the images agree to rounding after 10 sweeps with enforceReal and
enforcePositive on, on the same matrix and measurement, and reports the time of one frame and
per frame in a batch (the reference handles one frame per call, so its per-frame time in a batch
is its single-frame time, measured on ``--reference-frames`` frames). Each time is the median
of its repeats: ``--repeats`` frames reconstructed one after another (a stream), 3 batches,
``--reference-frames`` reference frames. The calibration is the
simulated 3D one of ``benchmarks/large_3d.py``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import large_3d  # noqa: E402  (the benchmark's simulation and loading)


def kaczmarz_reg(A, b, iterations=10, lambd=0.0, enforceReal=False, enforcePositive=False):
    """The reference row loop (module docstring): A (M, N) complex, b (M,) -> x (N,)."""
    M = A.shape[0]
    x = np.zeros(A.shape[1], dtype=b.dtype)
    residual = np.zeros(M, dtype=x.dtype)
    energy = np.array([np.linalg.norm(A[m, :]) for m in range(M)])
    for _ in range(iterations):
        for k in range(M):
            if energy[k] > 0:
                beta = (b[k] - A[k, :].dot(x) - np.sqrt(lambd) * residual[k]) / (energy[k] ** 2 + lambd)
                x[:] += beta * A[k, :].conjugate()
                residual[k] += np.sqrt(lambd) * beta
        if enforceReal and np.iscomplexobj(x):
            x.imag = 0
        if enforcePositive:
            x = x * (x.real > 0)
    return x


def default_2d(frames: int, rows=None):
    """The default 2D 19x19 calibration (SNR > 1.5, or its ``rows`` rows of highest SNR) and
    ``frames`` simulated signals (as solver_speed.py)."""
    from mpirecon.preprocess.selection import selected_system_matrix
    from mpirecon.simulation.datasets import SignalRecipe, generate_signals
    from mpirecon.simulation.system_matrix import simulate_calibration

    cal = simulate_calibration().calibration
    sm = selected_system_matrix(cal, snr_threshold=0.0, num_used_freqs=rows) if rows else selected_system_matrix(cal)
    sig, _, _ = generate_signals(sm.matrix, sm.image_shape, SignalRecipe(frames, (30, 30), seed=1))
    return sm, sig, {"grid": list(sm.grid), "voxels": sm.num_voxels, "rows_selected": sm.num_rows}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", type=int, default=19)
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--frequencies", type=int, default=1800)
    ap.add_argument("--max-frequency", type=float, default=625e3)
    ap.add_argument("--frames", type=int, default=100, help="batch size for our solver")
    ap.add_argument("--reference-frames", type=int, default=3, help="frames run through the reference loop")
    ap.add_argument("--repeats", type=int, default=10, help="frames our solver reconstructs one at a time")
    ap.add_argument("--lam-relative", type=float, default=1e-2, help="λ relative to ||A||_F²/P")
    ap.add_argument("--sweeps", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--two-d", action="store_true", help="the default 2D 19x19 calibration instead of 3D")
    ap.add_argument("--two-d-rows", type=int, default=None,
                    help="with --two-d: the R rows of highest SNR instead of SNR > 1.5 (the issue quotes R = 1219)")
    args = ap.parse_args()
    from mpirecon import load_reconstructor
    from mpirecon.io.provenance import versions as _versions
    from mpirecon.physics.operator import matrix_scale

    if args.two_d:
        sm, spectra, problem = default_2d(args.frames, args.two_d_rows)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            args.batch = args.frames - 1  # simulate() writes batch + 1 frames
            problem = large_3d.simulate(args, Path(tmp))
            sm, spectra, _ = large_3d.load(Path(tmp), args.rows)
    sm.matrix = sm.matrix.astype(np.complex128)
    spectra = np.asarray(spectra, dtype=np.complex128)  # the reference works in b's precision
    scale = matrix_scale(sm.matrix)
    lam_abs = args.lam_relative * scale ** 2
    ours = load_reconstructor("kaczmarz", sm, lam=lam_abs / scale ** 2, iterations=args.sweeps,
                              nonneg=True, enforce_real=True)
    ours.reconstruct(spectra)  # warm-up
    t_single = []
    for f in range(args.repeats):  # a stream of frames reconstructed one at a time
        t0 = time.perf_counter()
        out = ours.reconstruct(spectra[f % spectra.shape[0]:][:1]).images.reshape(1, -1)
        t_single.append(time.perf_counter() - t0)
        single = out if f == 0 else single
    t_batch = []
    for _ in range(3):
        t0 = time.perf_counter()
        batch = ours.reconstruct(spectra).images.reshape(spectra.shape[0], -1)
        t_batch.append((time.perf_counter() - t0) / spectra.shape[0])
    t_single, t_batch = float(np.median(t_single)), float(np.median(t_batch))

    ref, t_ref = [], []
    for f in range(args.reference_frames):
        t0 = time.perf_counter()
        ref.append(kaczmarz_reg(sm.matrix, spectra[f], args.sweeps, lam_abs, True, True).real)
        t_ref.append(time.perf_counter() - t0)
    ref = np.asarray(ref)
    diff = float(np.abs(batch[: len(ref)] - ref).max() / np.abs(ref).max())
    np.testing.assert_allclose(batch[: len(ref)], ref, rtol=0, atol=1e-8 * np.abs(ref).max())
    np.testing.assert_allclose(single[0], ref[0], rtol=0, atol=1e-8 * np.abs(ref).max())
    t_ref_frame = float(np.median(t_ref))
    report = {"command": " ".join(sys.argv), "load_average": os.getloadavg(), "problem": problem,
              "strategy": ours.strategy, "block_rows": ours.config.block_rows, "lambda_absolute": lam_abs,
              "sweeps": args.sweeps, "max_relative_difference": diff,
              "reference_s_per_frame": t_ref_frame, "ours_single_s": t_single,
              "ours_batch_s_per_frame": t_batch,
              "statistic": "median over --repeats single frames, 3 batches and --reference-frames frames", "batch_frames": int(spectra.shape[0]),
              "speedup_single": t_ref_frame / t_single, "speedup_batch": t_ref_frame / t_batch,
              "versions": _versions()}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
