"""DERnet's slice route on the 3D realistic protocol, beside the 3D methods (issue #27).

    python benchmarks/dernet_slice_3d.py SM3D DERNET_WEIGHTS [--slice z=9] [--snr 25 30 35]
        [--samples 30] [--seed 2026] [--methods admm_l1 ppmpi] [--params ppmpi=rho=0.3 ...]

DERnet reconstructs one slice: its weights come from ``mpirecon train --sm SM3D --slice z=K``, and the
signal of the other slices is model error to it (as when the paper took OpenMPI's tenth z slice). The
test volumes are those of ``mpirecon bench --protocols realistic --test-samples N`` on SM3D with the
same seed and N = ``--samples`` (the hold-out 3D families, measured through a scanner's MDF file with
background frames; another N draws other volumes). Every 3D
method reconstructs the whole volume; all are scored on slice K. The slice's PSNR takes the
volume's peak as its peak (a slice can be empty). Methods run with their defaults plus ``--params``
(not tuned). Prints a Markdown table: slice PSNR, slice SSIM, volume PSNR (3D methods), s/frame.
"""
import argparse
import time

import numpy as np

from mpirecon import metrics
from mpirecon.cli.common import parse_params
from mpirecon.bench.runner import BenchConfig, _data, _load_calibration, split_seed
from mpirecon.io.loading import parse_slice
from mpirecon.preprocess.selection import selected_system_matrix
from mpirecon.registry import load_reconstructor


def slice_psnr(images: np.ndarray, volumes: np.ndarray, index: int) -> np.ndarray:
    """PSNR (n,) of slice images (n, Ny, Nx) against z slice ``index`` of volumes (n, Nz, Ny, Nx),
    with each volume's maximum as the peak (dB)."""
    err = np.mean((images.reshape(len(images), -1) - volumes[:, index].reshape(len(volumes), -1)) ** 2, axis=1)
    peak = volumes.reshape(len(volumes), -1).max(axis=1)
    return 10 * np.log10(peak ** 2 / np.maximum(err, 1e-300))


def method_params(items) -> dict:
    """``METHOD=KEY=VALUE`` items -> {method: {key: value}} (values parsed as ``mpirecon bench --params``)."""
    out = {}
    for item in items:
        method, rest = item.split("=", 1)
        out.setdefault(method, {}).update(parse_params([rest], "--params"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sm")
    ap.add_argument("dernet_weights")
    ap.add_argument("--slice", default="z=9")
    ap.add_argument("--snr", nargs="+", type=float, default=[25.0, 30.0, 35.0])
    ap.add_argument("--samples", type=int, default=30)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--methods", nargs="*", default=["admm_l1", "ppmpi"])
    ap.add_argument("--params", nargs="*", default=[])
    args = ap.parse_args()
    axis, index = parse_slice(args.slice)
    if axis != "z":
        raise SystemExit("only z slices: the protocol's volumes are (Nz, Ny, Nx)")
    cfg = BenchConfig(methods=[], snr_levels=args.snr, seed=args.seed, protocols=["realistic"])
    sim, calib, _ = _load_calibration(args.sm)
    sm = selected_system_matrix(calib, cfg.snr_threshold)
    params = method_params(args.params)
    recons = {m: load_reconstructor(m, sm, **params.get(m, {})) for m in args.methods}
    sliced = sm.take_slice(axis, index)
    recons[f"dernet ({args.slice})"] = load_reconstructor("dernet", sliced, weights=args.dernet_weights)
    recons[f"dernet ({args.slice}), network alone"] = load_reconstructor("dernet", sliced, weights=args.dernet_weights,
                                                                         refine=False)
    rows = {name: [] for name in recons}
    for si, snr in enumerate(args.snr):  # the bench's split seeds: the bench's test volumes
        sig, vol, sigma, _ = _data("realistic", cfg, sim, sm, snr, args.samples, split_seed(args.seed, "realistic", si))
        for name, recon in recons.items():
            t = time.perf_counter()
            images = recon.reconstruct(sig, noise=sigma).images
            seconds = (time.perf_counter() - t) / len(sig)
            images = images.reshape((len(sig),) + (vol.shape[1:] if images[0].size == vol[0].size else vol.shape[2:]))
            cut = images[:, index] if images.ndim == 4 else images
            ps = slice_psnr(cut, vol, index)
            ss = metrics.ssim(cut, vol[:, index])
            full = metrics.psnr(images, vol).mean() if images.ndim == 4 else float("nan")
            rows[name].append((ps.mean(), np.nanmean(ss), full, seconds))
            print(f"{snr:g} dB {name}: slice {ps.mean():.2f} dB, SSIM {np.nanmean(ss):.3f}, volume {full:.2f} dB, "
                  f"{seconds:.3f} s/frame", flush=True)
    head = " | ".join(f"{s:g} dB" for s in args.snr)
    print(f"\n| method | {head} | s/frame (last SNR) |\n|---|" + "---|" * (len(args.snr) + 1))
    for name, r in rows.items():
        cells = " | ".join(f"{p:.2f} ({s:.3f}; volume {f:.2f})" if f == f else f"{p:.2f} ({s:.3f})" for p, s, f, _ in r)
        print(f"| {name} | {cells} | {r[-1][3]:.3f} |")


if __name__ == "__main__":
    main()
