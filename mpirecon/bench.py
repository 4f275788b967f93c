"""Benchmark of reconstruction methods: the DERnet paper's Tables 2-4 protocol, twice.

* ``paper``: test signals b = A c + n simulated with the very calibration matrix A that
  reconstructs them, phantoms from the training prior. This "inverse crime" flatters learned
  methods.
* ``holdout``: as ``paper`` (same matrix), but on phantom families never used for training: how
  far a learned prior carries beyond what it was trained on, without the model mismatch.
* ``realistic``: signals from the noise-free physics model plus scanner background and noise,
  background-corrected with empty-scanner frames, reconstructed with the noisy calibration,
  on phantom families never used for training. This is what a scanner user gets.

``paper`` and ``realistic`` run by default. Every method gets the per-frame noise level of the
signals (what empty-scanner frames tell a user; only the noise-aware, e.g. dip's discrepancy
stop, read it). Classical parameters are tuned per SNR and protocol
on a separate validation split (small grid search, maximising mean PSNR, recorded); learned
methods use one weights file for all SNRs.
"""
from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Optional

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mdf_io import MDFFile, read_system_matrix

from . import metrics
from .errors import ReconstructorError
from .outputs import check_output_dir, refuse_inputs, writing
from .progress import Progress
from .provenance import versions
from .reconstructor import check_device
from .registry import get_reconstructor_class, list_reconstructors
from .selection import DEFAULT_SNR_THRESHOLD, selected_system_matrix
from .simulation.datasets import SignalRecipe, generate_chunk
from .simulation.measurement import realistic_signals
from .simulation.phantoms import HOLDOUT_FAMILIES, TRAINING_FAMILIES, mixture
from .simulation.system_matrix import SimulatedCalibration, simulate_calibration, simulation_from_file

#: parameter grids searched per SNR on the validation split
TUNING_GRIDS: dict[str, dict[str, list]] = {
    "pinv": {"lam": [1e-3, 3e-3, 1e-2, 3e-2, 0.1]},
    "kaczmarz": {"lam": [1e-3, 3e-3, 1e-2, 3e-2, 0.1]},
    "cgnr": {"iterations": [5, 10, 20, 40]},
    "admm_l1": {"mu": [1e-4, 1e-3, 3e-3], "rho": [0.1, 1.0, 10.0]},
    "admm_tv": {"mu": [3e-5, 1e-4, 3e-4, 1e-3], "rho": [0.01, 0.1, 1.0]},
    "admm_l1tv": {"mu": [3e-5, 1e-4, 3e-4, 1e-3], "rho": [0.01, 0.1], "alpha_tv": [0.5, 0.8]},
    "ppmpi": {"rho": [0.1, 0.3, 1.0], "iterations": [10, 30]},
}


PROTOCOL_DESCRIPTIONS = {
    "paper": "signals simulated with the reconstructing matrix, training-prior phantoms (inverse crime)",
    "holdout": "signals simulated with the reconstructing matrix, phantom families unseen in training",
    "realistic": "physics-model signals + background, noisy calibration, phantom families unseen in training",
}


PROTOCOL_SEED_OFFSETS = {"paper": 0, "realistic": 1, "holdout": 2}


class BenchConfig(BaseModel):
    """Benchmark parameters (recorded in results.json)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    methods: Optional[list[str]] = None
    weights: dict[str, str] = Field(default_factory=dict)
    snr_levels: list[float] = Field(default_factory=lambda: [20.0, 25.0, 30.0, 35.0], min_length=1)
    test_samples: int = Field(500, ge=1)
    val_samples: int = Field(100, ge=1)
    protocols: list[str] = Field(default_factory=lambda: ["paper", "realistic"])
    tune: bool = True
    seed: int = 1234
    device: Optional[str] = None
    snr_threshold: float = DEFAULT_SNR_THRESHOLD
    training_families: tuple[str, ...] = TRAINING_FAMILIES
    holdout_families: tuple[str, ...] = HOLDOUT_FAMILIES
    example_snr: float = 30.0


def _load_calibration(path) -> tuple[SimulatedCalibration | None, object, str]:
    if path is None:
        sim = simulate_calibration()
        return sim, sim.calibration, "built-in simulated 19x19 calibration (mpirecon simulate system-matrix defaults)"
    with MDFFile(path) as mdf:
        sim = simulation_from_file(mdf)
    return sim, read_system_matrix(path), str(path)


def base_name(entry: str) -> str:
    """Registered method of a bench entry: ``NAME`` or ``NAME@LABEL``, a second configuration of
    the same method (e.g. ``ppmpi@own`` with its own ``--weights``)."""
    return entry.split("@", 1)[0]


def method_class(entry: str):
    """Reconstructor class of a bench entry (see :func:`base_name`)."""
    return get_reconstructor_class(base_name(entry))


def usable_methods(cfg: BenchConfig) -> list[str]:
    """Requested methods, or every registered one whose needs are met (weights given) and that
    is not left out of the default list (``Capabilities.in_default_bench``, e.g. the slow dip)."""
    names = cfg.methods or list_reconstructors()
    out = []
    for name in names:
        cls = method_class(name)
        if not cfg.methods and not cls.capabilities.in_default_bench:
            continue
        if cls.capabilities.needs_weights and name not in cfg.weights:
            if cfg.methods:
                raise ReconstructorError(f"method '{name}' needs --weights {name}=FILE")
            continue
        out.append(name)
    return out


def _make(name, sm, params, cfg):
    cls = method_class(name)
    p = dict(params)
    if cfg.device:
        p["device"] = cfg.device
    return cls(sm, weights=cfg.weights.get(name), **p)


def _grid(name: str) -> list[dict]:
    grid = TUNING_GRIDS.get(base_name(name))
    if not grid:
        return [{}]
    keys = list(grid)
    return [dict(zip(keys, vals)) for vals in itertools.product(*(grid[k] for k in keys))]


def _data(protocol, cfg, sim, sm_sel, snr, n, seed):
    """Test or validation split: spectra (n, R), images (n, Ny, Nx), the per-frame noise level
    σ (n, R) of the spectra, as a scanner user estimates it from empty-scanner frames (here: the
    RMS of the simulated noise of each frame, model mismatch excluded), and the phantom family of
    each sample (n,)."""
    rng = np.random.default_rng(seed)
    shape = sm_sel.image_shape
    if protocol in ("paper", "holdout"):
        families = cfg.training_families if protocol == "paper" else cfg.holdout_families
        recipe = SignalRecipe(n, (snr, snr), families, seed, chunk_size=max(n, 1))
        sig, img, _, fams = generate_chunk(sm_sel.matrix, shape, recipe, 0, labels=True)
        clean = img.reshape(n, -1) @ sm_sel.matrix.T
    else:
        img, fams = mixture(n, shape, cfg.holdout_families, rng, labels=True)
        pos = sim.calibration.rows.positions_of(sm_sel.rows)
        sig = realistic_signals(sim, img, snr, rng)[:, pos]
        clean = img.reshape(n, -1) @ sim.physics.matrix[pos].T
    sigma = np.sqrt(np.mean(np.abs(sig - clean) ** 2, axis=1, keepdims=True))
    return sig, img, np.broadcast_to(sigma, sig.shape), fams


def by_family(values: np.ndarray, families: np.ndarray) -> dict:
    """{family: summary} of per-sample metric ``values`` (n,) grouped by ``families`` (n,)."""
    return {str(f): metrics.summarize(values[families == f]) for f in sorted(set(families.tolist()))}


def result_files(protocols) -> list[str]:
    """Names of the files a benchmark of ``protocols`` may write into its folder."""
    return ["results.json", "results.md"] + [f"{kind}_{p}.png" for p in protocols
                                             for kind in ("examples", "psnr_vs_snr")]


def check_bench(cfg: BenchConfig, system_matrix_path=None, output="bench-results", overwrite: bool = False) -> list[str]:
    """Everything a benchmark can check before its slow work: the output folder (new or empty
    unless ``overwrite``; no input among its files), the methods, their weights and the device.
    Returns the methods."""
    folder = check_output_dir(output, overwrite=overwrite)
    refuse_inputs({name: folder / name for name in result_files(cfg.protocols)},
                  [system_matrix_path, *cfg.weights.values()])
    methods = usable_methods(cfg)
    for name in methods:
        check_device(name, cfg.device or "cpu", method_class(name).capabilities.supports_gpu)
    return methods


def run_bench(cfg: BenchConfig, system_matrix_path=None, output="bench-results", progress: bool = True,
              overwrite: bool = False) -> Path:
    """Run the benchmark and write results.md, results.json and figures to ``output`` (a new or
    empty folder unless ``overwrite``), all of them together at the end, or none."""
    methods = check_bench(cfg, system_matrix_path, output, overwrite)
    sim, calib, sm_desc = _load_calibration(system_matrix_path)
    sm_sel = selected_system_matrix(calib, cfg.snr_threshold)
    protocols = [p for p in cfg.protocols if p != "realistic" or sim is not None]
    notes = []
    if len(protocols) < len(cfg.protocols):
        notes.append("realistic protocol skipped: the calibration file carries no physics model (/_simulation)")
    results = {"config": cfg.model_dump(mode="json"), "system_matrix": sm_desc,
               "rows_selected": sm_sel.num_rows, "rows_total": calib.num_rows, "grid": list(sm_sel.grid),
               "versions": versions(), "notes": notes, "protocols": {}}
    total = len(protocols) * len(cfg.snr_levels) * len(methods)
    bar = Progress(total, "bench", enabled=progress)
    examples = {}
    for protocol in protocols:
        pi = PROTOCOL_SEED_OFFSETS[protocol]  # fixed per protocol: test splits do not depend on the list
        proto = results["protocols"].setdefault(protocol, {})
        for si, snr in enumerate(cfg.snr_levels):
            seed = cfg.seed + 1000 * pi + 10 * si
            all_test = _data(protocol, cfg, sim, sm_sel, snr, cfg.test_samples, seed)
            val_sig, val_img, val_noise, _ = _data(protocol, cfg, sim, sm_sel, snr, cfg.val_samples, seed + 5)
            level = proto.setdefault(f"{snr:g}", {})
            for name in methods:
                cls = method_class(name)
                test_sig, test_img, test_noise, test_fam = (a[:cls.capabilities.bench_test_samples] for a in all_test)
                tuned, tuning = {}, []
                t_tune = time.perf_counter()
                if cfg.tune and not cls.capabilities.needs_weights and len(_grid(name)) > 1:
                    base = _make(name, sm_sel, {}, cfg)
                    for params in _grid(name):  # with_params shares the operator's cached set-up
                        r = base.with_params(**params)
                        score = float(np.mean(metrics.psnr(r.reconstruct(val_sig, noise=val_noise).images, val_img)))
                        tuning.append({"params": params, "val_psnr": score})
                    tuned = max(tuning, key=lambda t: t["val_psnr"])["params"]
                tuning_seconds = time.perf_counter() - t_tune
                recon = _make(name, sm_sel, tuned, cfg)
                recon.reconstruct(test_sig[:2], noise=test_noise[:2])  # warm-up (lazy allocations, threads)
                t0 = time.perf_counter()
                res = recon.reconstruct(test_sig, noise=test_noise)
                per_frame = (time.perf_counter() - t0) / test_sig.shape[0]
                t1 = time.perf_counter()
                recon.reconstruct(test_sig[:1], noise=test_noise[:1])
                single = time.perf_counter() - t1
                psnrs, ssims = metrics.psnr(res.images, test_img), metrics.ssim(res.images, test_img)
                entry = {"parameters": recon.parameters, "weights": cfg.weights.get(name), "tuning": tuning,
                         "test_samples": int(test_sig.shape[0]),
                         "nrmse": metrics.summarize(metrics.nrmse(res.images, test_img)),
                         "psnr": metrics.summarize(psnrs), "ssim": metrics.summarize(ssims),
                         "psnr_by_family": by_family(psnrs, test_fam), "ssim_by_family": by_family(ssims, test_fam),
                         "seconds_per_frame_batch": per_frame, "seconds_single_frame": single,
                         "tuning_seconds": tuning_seconds}
                if tuning:
                    default = _make(name, sm_sel, {}, cfg)
                    entry["psnr_defaults"] = metrics.summarize(metrics.psnr(
                        default.reconstruct(test_sig, noise=test_noise).images, test_img))
                level[name] = entry
                if snr == cfg.example_snr:
                    examples.setdefault(protocol, {"truth": test_img[:6], "rows": {}, "psnr": {}})
                    examples[protocol]["rows"][name] = res.images[:6]
                    examples[protocol]["psnr"][name] = metrics.psnr(res.images[:6], test_img[:6])
                bar.update(1, protocol=protocol, snr=snr, method=name)
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    _write_results(out, results, methods, examples, cfg.snr_levels, overwrite)
    return out


def _write_results(out: Path, results: dict, methods: list[str], examples: dict, snr_levels, overwrite: bool) -> None:
    """results.json, results.md and the figures, published together (:func:`mpirecon.outputs.writing`)."""
    from .figures import comparison_grid, line_plot

    protocols = list(results["protocols"])
    names = ["results.json", "results.md"] + [f"examples_{p}.png" for p in examples] + \
        [f"psnr_vs_snr_{p}.png" for p in protocols]
    with writing([out / n for n in names], overwrite=overwrite) as tmps:
        tmp = dict(zip(names, tmps))
        tmp["results.json"].write_text(json.dumps(results, indent=1, default=float))
        tmp["results.md"].write_text(results_markdown(results, methods))
        for protocol, ex in examples.items():
            n = min(len(r) for r in ex["rows"].values())  # methods with fewer test samples cap the columns
            comparison_grid(tmp[f"examples_{protocol}.png"], ex["truth"][:n], {m: r[:n] for m, r in ex["rows"].items()},
                            psnrs={m: p[:n] for m, p in ex["psnr"].items()}, overwrite=True)
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
             f"(SNR > {cfg['snr_threshold']}), grid {results['grid'][:2]}.",
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
