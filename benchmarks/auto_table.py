"""Auto vs tuned vs default PSNR table from an ``mpirecon bench`` results.json holding entries
``NAME`` (tuned per SNR, with its defaults' PSNR) and ``NAME@auto`` (the automatic parameter).

    mpirecon bench --methods pinv pinv@auto ... --params pinv@auto=lam=auto ... --protocols realistic -o auto-bench
    python benchmarks/auto_table.py auto-bench/results.json
"""
from __future__ import annotations

import json
import sys


def table(results: dict, protocol: str = "realistic") -> str:
    """Markdown: one row per method and SNR with tuned, default, auto PSNR (dB) and auto - tuned."""
    levels = results["protocols"][protocol]
    methods = [m for m in next(iter(levels.values())) if "@" not in m]
    lines = ["| method | SNR | tuned | default | auto | auto - tuned | auto - default |", "|---|---|---|---|---|---|---|"]
    for m in methods:
        for snr, entries in levels.items():
            if f"{m}@auto" not in entries:
                continue
            t, a = entries[m]["psnr"]["mean"], entries[f"{m}@auto"]["psnr"]["mean"]
            d = entries[m].get("psnr_defaults", entries[m]["psnr"])["mean"]
            lines.append(f"| {m} | {snr} | {t:.2f} | {d:.2f} | {a:.2f} | {a - t:+.2f} | {a - d:+.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(json.load(open(sys.argv[1])), sys.argv[2] if len(sys.argv) > 2 else "realistic"))
