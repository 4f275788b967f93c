"""The bench's report: results.md (the paper's Tables 2-4 layout), example and PSNR-vs-SNR figures.

Example images are kept as ``examples/{protocol}_{method}.npy`` beside results.json, so that a
resumed run draws the same figures as an uninterrupted one.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mpirecon import metrics
from mpirecon.io.outputs import writing

PROTOCOL_DESCRIPTIONS = {
    "paper": "signals simulated with the reconstructing matrix, training-prior phantoms (inverse crime)",
    "holdout": "signals simulated with the reconstructing matrix, phantom families unseen in training",
    "realistic": "physics-model signals + background, noisy calibration, phantom families unseen in training and "
                 "the OpenMPI designs",
    "physics-shift": "measured with other particles and a drifted scanner than the calibration (MDF, background "
                     "frames), unseen phantom families and the OpenMPI designs",
}



def save_example(folder: Path, protocol: str, method: str, images: np.ndarray, truth: np.ndarray) -> None:
    """Keep a method's first example images (k, Ny, Nx) and their truths for the figures."""
    for name, arr in ((f"{protocol}_{method}.npy", images), (f"{protocol}_{method}_truth.npy", truth)):
        with writing([folder / name], overwrite=True) as (tmp,):
            with open(tmp, "wb") as fh:
                np.save(fh, np.asarray(arr))


def _examples(folder: Path, protocol: str, methods: list[str]):
    """(truth, {method: images}) of the methods whose examples exist, or None."""
    rows, truth = {}, None
    for m in methods:
        f = folder / f"{protocol}_{m}.npy"
        if f.exists():
            rows[m] = np.load(f)
            t = np.load(folder / f"{protocol}_{m}_truth.npy")
            truth = t if truth is None or len(t) < len(truth) else truth
    if not rows:
        return None
    n = min(len(truth), *(len(r) for r in rows.values()))  # slow methods may have fewer test samples
    return truth[:n], {m: r[:n] for m, r in rows.items()}


def write_report(out: Path, results: dict, methods: list[str], snr_levels) -> None:
    """results.md, examples_{protocol}.png and psnr_vs_snr_{protocol}.png in ``out``, replaced
    together (:func:`mpirecon.io.outputs.writing`)."""
    from mpirecon.viz.figures import comparison_grid, line_plot

    protocols = list(results["protocols"])
    examples = {p: _examples(out / "examples", p, methods) for p in protocols}
    examples = {p: e for p, e in examples.items() if e is not None}
    names = ["results.md"] + [f"examples_{p}.png" for p in examples] + [f"psnr_vs_snr_{p}.png" for p in protocols]
    with writing([out / n for n in names], overwrite=True) as tmps:
        tmp = dict(zip(names, tmps))
        tmp["results.md"].write_text(results_markdown(results, methods))
        mip = (lambda a: a.max(axis=1) if a.ndim == 4 else a)  # 3D: maximum intensity projection along z
        for protocol, (truth, rows) in examples.items():
            comparison_grid(tmp[f"examples_{protocol}.png"], mip(truth), {m: mip(r) for m, r in rows.items()},
                            psnrs={m: metrics.psnr(r, truth) for m, r in rows.items()}, overwrite=True)
        for protocol in protocols:
            levels = results["protocols"][protocol]
            series = {m: ([levels[f"{s:g}"][m]["psnr"]["mean"] for s in snr_levels],
                          [levels[f"{s:g}"][m]["psnr"]["std"] for s in snr_levels]) for m in methods}
            line_plot(tmp[f"psnr_vs_snr_{protocol}.png"], snr_levels, series, xlabel="signal SNR (dB)",
                      ylabel="PSNR (dB)", title=f"{protocol} protocol", overwrite=True)


def results_markdown(results: dict, methods: list[str]) -> str:
    """Markdown tables (PSNR per SNR like Table 3, all metrics at 30 dB like Table 2, times like Table 4)."""
    cfg = results["config"]
    lines = ["# mpirecon bench", "",
             f"System matrix: {results['system_matrix']} - {results['rows_selected']} of {results['rows_total']} rows "
             f"(SNR > {cfg['snr_threshold']}), grid {results['grid']}.",
             f"Test samples per SNR: {cfg['test_samples']}; tuning on {cfg['val_samples']} validation samples "
             f"({'on' if cfg['tune'] else 'off'}); seed {cfg['seed']}. Versions: "
             + ", ".join(f"{k} {v}" for k, v in results["versions"].items() if k in ("mpirecon", "torch", "numpy")), ""]
    for note in results.get("notes", []):
        lines += [f"> {note}", ""]
    fewer = {m: e["test_samples"] for levels in results["protocols"].values() for entries in levels.values()
             for m, e in entries.items() if e.get("test_samples", cfg["test_samples"]) < cfg["test_samples"]}
    for m, n in sorted(fewer.items()):
        lines += [f"> {m}: {n} test samples per SNR (a slow method; the paper's Table 3 used 50).", ""]
    for protocol, levels in results["protocols"].items():
        desc = PROTOCOL_DESCRIPTIONS.get(protocol, protocol)
        lines += [f"## Protocol `{protocol}`: {desc}", "", "PSNR (dB), mean ± std:", "",
                  "| SNR | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
        for snr, entries in levels.items():
            lines.append(f"| {snr} dB | " + " | ".join(
                f"{entries[m]['psnr']['mean']:.2f} ± {entries[m]['psnr']['std']:.2f}" for m in methods) + " |")
        ref = f"{cfg['example_snr']:g}" if f"{cfg['example_snr']:g}" in levels else next(iter(levels))
        e = levels[ref]
        lines += ["", f"At {ref} dB:", "", "| metric | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
        for metric, fmt in (("nrmse", ".3f"), ("ssim", ".3f"), ("psnr", ".2f")):
            lines.append(f"| {metric.upper()} | " + " | ".join(
                f"{e[m][metric]['mean']:{fmt}} ± {e[m][metric]['std']:{fmt}}" for m in methods) + " |")
        lines.append("| PSNR with defaults | " + " | ".join(
            (f"{e[m]['psnr_defaults']['mean']:.2f}" if "psnr_defaults" in e[m] else "-") for m in methods) + " |")
        fams = sorted({f for m in methods for f in e[m].get("psnr_by_family", {})})
        for fam in fams:
            lines.append(f"| PSNR {fam} | " + " | ".join(
                (f"{e[m]['psnr_by_family'][fam]['mean']:.2f} (SSIM {e[m]['ssim_by_family'][fam]['mean']:.3f})"
                 if fam in e[m].get("psnr_by_family", {}) else "-") for m in methods) + " |")
        lines.append("| ms/frame (batch) | " + " | ".join(f"{1e3 * e[m]['seconds_per_frame_batch']:.3f}" for m in methods) + " |")
        lines.append("| ms (single frame) | " + " | ".join(f"{1e3 * e[m]['seconds_single_frame']:.2f}" for m in methods) + " |")
        lines.append("")
    return "\n".join(lines) + "\n"
