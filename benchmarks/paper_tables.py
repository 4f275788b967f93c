"""The DERnet paper's Tables 2-4 (eight methods) from an ``mpirecon bench`` results.json.

    mpirecon bench --sm sm19.mdf --methods pinv kaczmarz cgnr admm_l1 admm_tv admm_l1tv ppmpi dip admm_net dernet \\
        --weights admm_net=an.pt --weights dernet=dernet.pt --protocols paper realistic \\
        --test-samples 300 --val-samples 60 -o bench8
    python benchmarks/paper_tables.py bench8/results.json

Prints, per protocol: Table 3 (PSNR mean ± std per SNR), Table 2 (NRMSE, PSNR, SSIM at 30 dB) and
Table 4 (ms per frame, single frame and in a batch), with the number of test samples per method.
When a method ran on fewer test samples than the others (DIP: 50, as the paper), Table 3 is also
given on those first samples for every method (the same phantoms and noise), from the per-sample
values the bench records.
"""
from __future__ import annotations

import json
import sys

import numpy as np

#: the paper's eight methods (ART = Kaczmarz), in its order
PAPER_METHODS = ["kaczmarz", "admm_l1", "admm_tv", "admm_l1tv", "ppmpi", "dip", "admm_net", "dernet"]


def tables(results: dict) -> str:
    """Markdown tables of ``results`` (a bench's results.json) for the paper's methods it holds."""
    out = []
    for protocol, levels in results["protocols"].items():
        first = next(iter(levels.values()))
        methods = [m for m in PAPER_METHODS if m in first]
        head = "| | " + " | ".join(methods) + " |\n|---|" + "---|" * len(methods)
        out += [f"### {protocol}: Table 3, PSNR (dB) mean ± std", head]
        for snr, e in levels.items():
            out.append(f"| {snr} dB | " + " | ".join(f"{e[m]['psnr']['mean']:.2f} ± {e[m]['psnr']['std']:.2f}"
                                                    for m in methods) + " |")
        fewest = min(first[m].get("test_samples", 0) for m in methods)
        if fewest < max(first[m].get("test_samples", 0) for m in methods) and all(
                "samples" in e[m] for e in levels.values() for m in methods):
            out += ["", f"### {protocol}: Table 3 on the first {fewest} test samples of every method "
                        "(PSNR dB mean ± std)", head]
            for snr, e in levels.items():
                out.append(f"| {snr} dB | " + " | ".join(_mean_std(e[m]["samples"]["psnr"][:fewest]) for m in methods)
                           + " |")
        e = levels.get("30", first)
        out += ["", f"### {protocol}: Table 2 at 30 dB", head]
        for metric, fmt in (("nrmse", ".3f"), ("psnr", ".2f"), ("ssim", ".3f")):
            out.append(f"| {metric.upper()} | " + " | ".join(f"{e[m][metric]['mean']:{fmt}}" for m in methods) + " |")
        out.append("| test samples | " + " | ".join(str(e[m].get("test_samples", "")) for m in methods) + " |")
        out += ["", f"### {protocol}: Table 4, time per frame (ms) at 30 dB", head,
                "| single frame | " + " | ".join(f"{1e3 * e[m]['seconds_single_frame']:.1f}" for m in methods) + " |",
                "| in a batch | " + " | ".join(f"{1e3 * e[m]['seconds_per_frame_batch']:.2f}" for m in methods) + " |", ""]
    return "\n".join(out)


def _mean_std(values) -> str:
    """``mean ± std`` of ``values`` with two decimals."""
    return f"{np.mean(values):.2f} ± {np.std(values):.2f}"


if __name__ == "__main__":
    print(tables(json.load(open(sys.argv[1]))))
