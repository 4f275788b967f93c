"""Benchmark of reconstruction methods: the DERnet paper's Tables 2-4 protocol, twice.

* ``paper``: test signals b = A c + n simulated with the very calibration matrix A that
  reconstructs them, phantoms from the training prior. This "inverse crime" flatters learned
  methods.
* ``holdout``: as ``paper`` (same matrix), but on phantom families never used for training: how
  far a learned prior carries beyond what it was trained on, without the model mismatch.
* ``realistic``: signals from the noise-free physics model plus scanner background and noise,
  background-corrected with empty-scanner frames, reconstructed with the noisy calibration,
  on phantom families never used for training. This is what a scanner user gets.

``paper`` and ``realistic`` run by default. Classical parameters are tuned per SNR and protocol
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
from .progress import Progress
from .provenance import versions
from .registry import get_reconstructor_class, list_reconstructors
from .selection import DEFAULT_SNR_THRESHOLD, selected_system_matrix
from .simulation.datasets import SignalRecipe, generate_chunk
from .simulation.measurement import SIGNAL_ROW_SNR, realistic_signals
from .simulation.noise import noise_sigma
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
#: empty-scanner frames averaged for the background correction in the realistic protocol
REALISTIC_BACKGROUND_FRAMES = 10


class BenchConfig(BaseModel):
    """Benchmark parameters (recorded in results.json)."""

    model_config = ConfigDict(extra="forbid")

    methods: Optional[list[str]] = None
    weights: dict[str, str] = Field(default_factory=dict)
    #: fixed parameters of an entry (e.g. {"admm_tv@auto": {"mu": "auto"}}): used as given, not tuned
    params: dict[str, dict] = Field(default_factory=dict)
    snr_levels: list[float] = Field(default_factory=lambda: [20.0, 25.0, 30.0, 35.0])
    test_samples: int = 100
    val_samples: int = 30
    protocols: list[str] = Field(default_factory=lambda: ["paper", "realistic"])
    tune: bool = True
    #: pass the simulation's known noise level to reconstruct (noise=σ per frame), as a scanner's
    #: background frames would give it
    known_noise: bool = True
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
    """Requested methods, or every registered one whose needs are met (weights given)."""
    names = cfg.methods or list_reconstructors()
    out = []
    for name in names:
        cls = method_class(name)
        if cls.capabilities.needs_weights and name not in cfg.weights:
            if cfg.methods:
                raise ValueError(f"method '{name}' needs --weights {name}=FILE")
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
    """Test or validation split: signals (n, R), images (n, Ny, Nx), phantom family of each (n,) and
    the noise σ of each frame (n, 1) (``E|n_r|²`` per row, as the simulation added it)."""
    rng = np.random.default_rng(seed)
    shape = sm_sel.image_shape
    if protocol in ("paper", "holdout"):
        families = cfg.training_families if protocol == "paper" else cfg.holdout_families
        recipe = SignalRecipe(n, (snr, snr), families, seed, chunk_size=max(n, 1))
        sig, img, _, fams = generate_chunk(sm_sel.matrix, shape, recipe, 0, labels=True)
        return sig, img, fams, noise_sigma(img.reshape(n, -1) @ sm_sel.matrix.T, snr)
    images, fams = mixture(n, shape, cfg.holdout_families, rng, labels=True)
    full = realistic_signals(sim, images, snr, rng, background_frames=REALISTIC_BACKGROUND_FRAMES)
    pos = sim.calibration.rows.positions_of(sm_sel.rows)
    clean = images.reshape(n, -1) @ sim.physics.matrix.T
    sigma = noise_sigma(clean[:, sim.calibration.snr > SIGNAL_ROW_SNR], snr) * np.sqrt(1 + 1 / REALISTIC_BACKGROUND_FRAMES)
    return full[:, pos], images, fams, sigma


def by_family(values: np.ndarray, families: np.ndarray) -> dict:
    """{family: summary} of per-sample metric ``values`` (n,) grouped by ``families`` (n,)."""
    return {str(f): metrics.summarize(values[families == f]) for f in sorted(set(families.tolist()))}


class BenchOutputError(ValueError):
    """The output folder holds results of another run (and neither resume nor overwrite was asked)."""


def _prepare_output(out: Path, cfg: BenchConfig, resume: bool, overwrite: bool) -> Optional[dict]:
    """Create ``out``; return the results to resume from (None for a fresh run). A non-empty folder
    is refused unless ``resume`` (same configuration) or ``overwrite``."""
    out.mkdir(parents=True, exist_ok=True)
    previous = out / "results.json"
    if resume and previous.exists():
        results = json.loads(previous.read_text())
        mine = cfg.model_dump(mode="json")
        if results.get("config") != mine:
            changed = sorted(k for k in mine if results.get("config", {}).get(k) != mine[k])
            raise BenchOutputError(f"{previous}: field 'config': expected the configuration of this run to resume it, "
                                   f"found different {', '.join(changed)}")
        return results
    if any(out.iterdir()) and not (resume or overwrite):
        raise BenchOutputError(f"{out}: expected an empty or new output folder, found files; pass --resume to "
                               "continue that run or --overwrite to replace it")
    return None


def _save_json(path: Path, data: dict) -> None:
    """Write ``data`` as JSON to ``path`` atomically (replacing the previous version)."""
    from mdf_io import atomic_output
    with atomic_output(path, overwrite=True) as tmp:
        Path(tmp).write_text(json.dumps(data, indent=1, default=float))


def _evaluate(name, cfg, sm_sel, test, val, snr) -> tuple[dict, np.ndarray]:
    """One bench step: tune ``name`` on ``val``, reconstruct ``test``; (entry, first 6 images)."""
    (test_sig, test_img, test_fam, test_noise), (val_sig, val_img, _, val_noise) = test, val
    noise = (lambda sigma: sigma) if cfg.known_noise else (lambda sigma: None)
    cls = method_class(name)
    given = dict(cfg.params.get(name, {}))
    tuned, tuning = {}, []
    t_tune = time.perf_counter()
    if cfg.tune and not given and not cls.capabilities.needs_weights and len(_grid(name)) > 1:
        base = _make(name, sm_sel, {}, cfg)
        for params in _grid(name):  # with_params shares the operator's cached set-up
            r = base.with_params(**params)
            score = float(np.mean(metrics.psnr(r.reconstruct(val_sig, noise=noise(val_noise)).images, val_img)))
            tuning.append({"params": params, "val_psnr": score})
        tuned = max(tuning, key=lambda t: t["val_psnr"])["params"]
    tuning_seconds = time.perf_counter() - t_tune
    recon = _make(name, sm_sel, dict(tuned, **given), cfg)
    recon.reconstruct(test_sig[:2])  # warm-up (lazy allocations, threads)
    t0 = time.perf_counter()
    res = recon.reconstruct(test_sig, noise=noise(test_noise))
    per_frame = (time.perf_counter() - t0) / test_sig.shape[0]
    t1 = time.perf_counter()
    recon.reconstruct(test_sig[:1])
    single = time.perf_counter() - t1
    psnrs, ssims = metrics.psnr(res.images, test_img), metrics.ssim(res.images, test_img)
    entry = {"parameters": recon.parameters, "weights": cfg.weights.get(name), "tuning": tuning,
             "nrmse": metrics.summarize(metrics.nrmse(res.images, test_img)),
             "psnr": metrics.summarize(psnrs), "ssim": metrics.summarize(ssims),
             "psnr_by_family": by_family(psnrs, test_fam), "ssim_by_family": by_family(ssims, test_fam),
             "seconds_per_frame_batch": per_frame, "seconds_single_frame": single,
             "tuning_seconds": tuning_seconds, "snr": snr}
    if tuning:
        default = _make(name, sm_sel, {}, cfg)
        entry["psnr_defaults"] = metrics.summarize(metrics.psnr(
            default.reconstruct(test_sig, noise=noise(test_noise)).images, test_img))
    return entry, res.images[:6]


def run_bench(cfg: BenchConfig, system_matrix_path=None, output="bench-results", progress: bool = True,
              *, resume: bool = False, overwrite: bool = False) -> Path:
    """Run the benchmark into ``output``: results.json (rewritten after every method and SNR, so an
    interrupted run keeps what it finished), then results.md and figures. ``resume``: continue the
    run in ``output`` (same configuration), skipping finished steps; without it a non-empty
    ``output`` is refused unless ``overwrite``."""
    from .figures import comparison_grid, line_plot

    out = Path(output)
    previous = _prepare_output(out, cfg, resume, overwrite)
    sim, calib, sm_desc = _load_calibration(system_matrix_path)
    sm_sel = selected_system_matrix(calib, cfg.snr_threshold)
    methods = usable_methods(cfg)
    protocols = [p for p in cfg.protocols if p != "realistic" or sim is not None]
    notes = []
    if len(protocols) < len(cfg.protocols):
        notes.append("realistic protocol skipped: the calibration file carries no physics model (/_simulation)")
    results = previous or {"config": cfg.model_dump(mode="json"), "system_matrix": sm_desc,
                           "rows_selected": sm_sel.num_rows, "rows_total": calib.num_rows, "grid": list(sm_sel.grid),
                           "versions": versions(), "notes": notes, "protocols": {}}
    total = len(protocols) * len(cfg.snr_levels) * len(methods)
    bar = Progress(total, "bench", enabled=progress)
    examples_dir = out / "examples"
    examples_dir.mkdir(exist_ok=True)
    for protocol in protocols:
        pi = PROTOCOL_SEED_OFFSETS[protocol]  # fixed per protocol: test splits do not depend on the list
        proto = results["protocols"].setdefault(protocol, {})
        for si, snr in enumerate(cfg.snr_levels):
            level = proto.setdefault(f"{snr:g}", {})
            todo = [m for m in methods if m not in level]
            bar.update(len(methods) - len(todo), protocol=protocol, snr=snr, method="(resumed)")
            if not todo:
                continue
            seed = cfg.seed + 1000 * pi + 10 * si
            test = _data(protocol, cfg, sim, sm_sel, snr, cfg.test_samples, seed)
            val = _data(protocol, cfg, sim, sm_sel, snr, cfg.val_samples, seed + 5)
            if snr == cfg.example_snr:
                np.save(examples_dir / f"{protocol}_truth.npy", test[1][:6])
            for name in todo:
                level[name], images = _evaluate(name, cfg, sm_sel, test, val, snr)
                if snr == cfg.example_snr:
                    np.save(examples_dir / f"{protocol}_{name}.npy", images)
                _save_json(out / "results.json", results)
                bar.update(1, protocol=protocol, snr=snr, method=name)
    for protocol in protocols:
        truth = examples_dir / f"{protocol}_truth.npy"
        if truth.exists() and all((examples_dir / f"{protocol}_{m}.npy").exists() for m in methods):
            rows = {m: np.load(examples_dir / f"{protocol}_{m}.npy") for m in methods}
            t = np.load(truth)
            comparison_grid(out / f"examples_{protocol}.png", t, rows, psnrs={m: metrics.psnr(rows[m], t) for m in methods})
        series = {m: ([results["protocols"][protocol][f"{s:g}"][m]["psnr"]["mean"] for s in cfg.snr_levels],
                      [results["protocols"][protocol][f"{s:g}"][m]["psnr"]["std"] for s in cfg.snr_levels])
                  for m in methods}
        line_plot(out / f"psnr_vs_snr_{protocol}.png", cfg.snr_levels, series, xlabel="signal SNR (dB)",
                  ylabel="PSNR (dB)", title=f"{protocol} protocol")
    (out / "results.md").write_text(results_markdown(results, methods))
    return out


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
        fams = sorted(e[methods[0]].get("psnr_by_family", {}))
        for fam in fams:
            lines.append(f"| PSNR {fam} | " + " | ".join(
                f"{e[m]['psnr_by_family'][fam]['mean']:.2f} (SSIM {e[m]['ssim_by_family'][fam]['mean']:.3f})"
                for m in methods) + " |")
        lines.append("| ms/frame (batch) | " + " | ".join(f"{1e3 * e[m]['seconds_per_frame_batch']:.3f}" for m in methods) + " |")
        lines.append("| ms (single frame) | " + " | ".join(f"{1e3 * e[m]['seconds_single_frame']:.2f}" for m in methods) + " |")
        lines.append("")
    return "\n".join(lines) + "\n"
