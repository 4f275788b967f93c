"""Markdown tables of a bench run for docs/dernet.md: per protocol and SNR the best tuned classical
method, ppmpi and every learned entry; the OpenMPI designs per method; the done-when margins.

    python benchmarks/dernet_tables.py RESULTS_DIR [--default dernet] [--net dernet@net]
"""
import argparse
import json
from pathlib import Path

CLASSICAL = ("kaczmarz", "pinv", "cgnr", "admm_l1", "admm_tv", "admm_l1tv")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("folder")
    ap.add_argument("--default", default="dernet")
    ap.add_argument("--net", default="dernet@net")
    args = ap.parse_args()
    res = json.loads((Path(args.folder) / "results.json").read_text())
    for protocol, levels in res["protocols"].items():
        methods = list(levels[next(iter(levels))])
        snrs = [s for s in levels if set(methods) <= set(levels[s])]  # complete levels (an interrupted run)
        print(f"\n**{protocol}** (PSNR dB / SSIM, {levels[snrs[0]][methods[0]]['test_samples']} test samples per SNR)\n")
        print("| method | " + " | ".join(f"{s} dB" for s in snrs) + " |")
        print("|---|" + "---|" * len(snrs))
        best = []
        for s in snrs:
            name = max((m for m in CLASSICAL if m in levels[s]), key=lambda m: levels[s][m]["psnr"]["mean"])
            best.append((name, levels[s][name]["psnr"]["mean"], levels[s][name]["ssim"]["mean"]))
        print("| best tuned classical | " + " | ".join(f"{p:.2f} / {q:.3f} ({n})" for n, p, q in best) + " |")
        for m in methods:
            if m in CLASSICAL:
                continue
            print(f"| {m} | " + " | ".join(f"{levels[s][m]['psnr']['mean']:.2f} / {levels[s][m]['ssim']['mean']:.3f}"
                                         for s in snrs) + " |")
        for label, m in (("default - best classical", args.default), ("network - best classical", args.net),
                         ("default - ppmpi", args.default)):
            if m not in levels[snrs[0]]:
                continue
            ref = [b[1] for b in best] if "classical" in label else [levels[s]["ppmpi"]["psnr"]["mean"] for s in snrs]
            print(f"| *{label}* | " + " | ".join(f"{levels[s][m]['psnr']['mean'] - r:+.2f}" for s, r in zip(snrs, ref))
                  + " |")
        fams = sorted(f for f in levels[snrs[0]][methods[0]]["psnr_by_family"] if f.startswith("openmpi"))
        if fams:
            print(f"\nOpenMPI designs, {protocol}, PSNR dB at " + "/".join(snrs) + " dB:\n")
            print("| method | " + " | ".join(fams) + " |\n|---|" + "---|" * len(fams))
            for m in [args.default, args.net, "ppmpi", "admm_l1tv", "kaczmarz"]:
                if m in levels[snrs[0]]:
                    print(f"| {m} | " + " | ".join("/".join(f"{levels[s][m]['psnr_by_family'][f]['mean']:.1f}" for s in snrs)
                                                  for f in fams) + " |")
        times = {m: (1000 * levels[snrs[-1]][m]["seconds_single_frame"], 1000 * levels[snrs[-1]][m]["seconds_per_frame_batch"])
                 for m in methods}
        print(f"\nTime per frame at {snrs[-1]} dB (single / batch, ms): " +
              ", ".join(f"{m} {a:.0f} / {b:.1f}" for m, (a, b) in times.items()))


if __name__ == "__main__":
    main()
