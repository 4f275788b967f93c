"""Reconstruct an MDF measurement with two methods and compare them.

    python examples/reconstruct_and_compare.py                         # shipped real data
    python examples/reconstruct_and_compare.py --sm sm.mdf --measurement meas.mdf \
        --methods kaczmarz admm_l1tv --out-dir compare

With no files given, the shipped measured data (``examples/data/buaa-encoding-array``: a real
8 x 8 calibration with 40 receive rows and five phantom signals, MIT licence, see its
PROVENANCE.md) are first converted from MATLAB to MDF v2, so the rest of the script is exactly
what you would run on your own scanner's files. For every method it writes an MDF file with a
``/reconstruction`` group, and a figure with one row per method; it prints the time per frame
and the data residual ``||A x - b|| / ||b||`` of each (real data have no ground truth).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import h5py
import numpy as np

from mdf_io import Measurement, SystemMatrix, write_measurement, write_reconstruction, write_system_matrix
from mpirecon import DEFAULT_SNR_THRESHOLD, load_reconstructor
from mpirecon.viz.figures import _pyplot, save_figure
from mpirecon.io.loading import load_measurement_for, load_system_matrix

SHIPPED = Path(__file__).resolve().parent / "data" / "buaa-encoding-array"


def _mat_complex(path: Path, name: str) -> np.ndarray:
    """A complex array from a MATLAB v7.3 file, in MATLAB's axis order."""
    with h5py.File(path, "r") as f:
        raw = f[name][()]
    return (raw["real"] + 1j * raw["imag"]).T  # h5py sees MATLAB arrays transposed


def convert_shipped_data(out: Path) -> tuple[Path, Path]:
    """Write the shipped .mat calibration and signals as MDF files; returns (sm, measurement).

    MATLAB stores the 8 x 8 voxels column-major (row index fastest); MDF wants x fastest, so the
    columns are reordered. The rows have no frequency axis: they are written as one channel with
    frequency indices 0..39 and an SNR of +inf (every row kept by the frequency selection)."""
    s = _mat_complex(SHIPPED / "S.mat", "S")  # (40 rows, 64 voxels), voxel = y + 8 x
    rows, voxels = s.shape
    n = int(round(np.sqrt(voxels)))
    s = s.reshape(rows, n, n).transpose(0, 2, 1).reshape(rows, voxels)  # voxel = x + 8 y
    signals = np.concatenate([_mat_complex(SHIPPED / f"b{k}.mat", f"b{k}").reshape(1, rows) for k in range(1, 6)])
    sm_path, meas_path = out / "buaa_system_matrix.mdf", out / "buaa_measurements.mdf"
    write_system_matrix(sm_path, SystemMatrix.from_arrays(s, (n, n)), overwrite=True)
    write_measurement(meas_path, Measurement.from_arrays(signals), overwrite=True)
    return sm_path, meas_path


def data_residual(sm: SystemMatrix, images: np.ndarray, spectra: np.ndarray) -> np.ndarray:
    """Relative residual ``||A x - b|| / ||b||`` per frame; images (F, Ny, Nx), spectra (F, R)."""
    pred = images.reshape(images.shape[0], -1) @ sm.matrix.T
    return np.linalg.norm(pred - spectra, axis=1) / np.linalg.norm(spectra, axis=1)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sm", help="MDF calibration file (default: the shipped real data)")
    ap.add_argument("--measurement", help="MDF measurement file")
    ap.add_argument("--methods", nargs=2, default=["kaczmarz", "admm_l1tv"])
    ap.add_argument("--snr-threshold", type=float, default=DEFAULT_SNR_THRESHOLD)
    ap.add_argument("--out-dir", default="compare-output")
    args = ap.parse_args(argv)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if (args.sm is None) != (args.measurement is None):
        ap.error("give both --sm and --measurement, or neither (shipped data)")
    sm_path, meas_path = (args.sm, args.measurement) if args.sm else convert_shipped_data(out)

    sm = load_system_matrix(sm_path, snr_threshold=args.snr_threshold)
    meas = load_measurement_for(meas_path, sm)
    print(f"{sm_path}: {sm.num_rows} rows kept, grid {sm.grid[:2]}; {meas_path}: {meas.num_frames} frame(s)")
    summary = {}
    for name in args.methods:
        recon = load_reconstructor(name, sm)
        t0 = time.perf_counter()
        result = recon.reconstruct(meas)
        per_frame = (time.perf_counter() - t0) / meas.num_frames
        write_reconstruction(out / f"reconstruction_{name}.mdf", result.to_reconstruction(), overwrite=True)
        summary[name] = {"images": result.images, "ms_per_frame": 1e3 * per_frame,
                         "residual": data_residual(sm, result.images, meas.data)}
        print(f"{name:12s} {1e3 * per_frame:8.3f} ms/frame   residual per frame "
              + " ".join(f"{r:.3f}" for r in summary[name]["residual"]))
    a, b = (summary[m]["images"].reshape(meas.num_frames, -1) for m in args.methods)
    agreement = [float(np.corrcoef(x, y)[0, 1]) if x.std() > 0 and y.std() > 0 else 0.0 for x, y in zip(a, b)]
    print("correlation between the two methods per frame: " + " ".join(f"{c:.2f}" for c in agreement))

    plt = _pyplot()
    frames = meas.num_frames
    fig, axes = plt.subplots(2, frames, figsize=(1.9 * frames + 1, 4), squeeze=False)
    for i, name in enumerate(args.methods):
        for j in range(frames):
            axes[i, j].imshow(summary[name]["images"][j], origin="lower", cmap="gray")
            axes[i, j].set_title(f"frame {j}: res {summary[name]['residual'][j]:.2f}", fontsize=7)
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
        axes[i, 0].set_ylabel(name)
    save_figure(fig, out / "comparison.png", overwrite=True)
    print(f"wrote {out / 'comparison.png'} and reconstruction_<method>.mdf files to {out}")
    return {"summary": summary, "agreement": agreement}


if __name__ == "__main__":
    main()
