"""Simulate an FFP system matrix, write it as MDF v2, and plot frequency components to a PNG.

    python examples/simulate_system_matrix.py [--grid 19 19] [--out-dir example-output]

The plotted rows are the familiar Chebyshev-like patterns of 2D Lissajous MPI: each mixing
frequency's system-matrix row, reshaped to the grid (real part).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mdf_io import read_system_matrix
from mpirecon.viz.figures import _pyplot, save_figure
from mpirecon.simulation.scanner import ScannerParams
from mpirecon.simulation.system_matrix import simulate_calibration


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--grid", type=int, nargs=2, default=(19, 19))
    ap.add_argument("--out-dir", default="example-output")
    args = ap.parse_args(argv)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sim = simulate_calibration(ScannerParams(grid=tuple(args.grid)))
    sim.write(out / "system_matrix.mdf", overwrite=True)
    sm = read_system_matrix(out / "system_matrix.mdf")
    order = np.argsort(-sm.snr)[:16]  # the 16 rows with the highest SNR
    plt = _pyplot()
    fig, axes = plt.subplots(4, 4, figsize=(8, 8))
    for ax, r in zip(axes.ravel(), order):
        ax.imshow(sm.matrix[r].real.reshape(sm.image_shape), origin="lower", cmap="RdBu")
        ax.set_title(f"ch {sm.rows.channel[r]}, {sm.frequencies[r] / 1e3:.1f} kHz", fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    save_figure(fig, out / "frequency_components.png", overwrite=True)
    print(f"wrote {out / 'system_matrix.mdf'} and {out / 'frequency_components.png'}")


if __name__ == "__main__":
    main()
