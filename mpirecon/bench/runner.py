"""Benchmark of reconstruction methods: the DERnet paper's Tables 2-4 protocol, twice.

* ``paper``: test signals b = A c + n simulated with the very calibration matrix A that
  reconstructs them, phantoms from the training prior. This "inverse crime" flatters learned
  methods.
* ``holdout``: as ``paper`` (same matrix), but on phantom families never used for training: how
  far a learned prior carries beyond what it was trained on, without the model mismatch.
* ``realistic``: signals from the noise-free physics model plus scanner background and noise,
  background-corrected with empty-scanner frames, reconstructed with the noisy calibration,
  on phantom families never used for training and (2D, a third of the samples since round 3,
  session 7) the three OpenMPI designs, reported per family as under ``physics-shift``. This is
  what a scanner user gets. On a 3D
  calibration (e.g. ``mpirecon simulate system-matrix --grid 19 19 19``) the phantoms are the 3D
  hold-out families (:mod:`mpirecon.simulation.phantoms3d`) and the frames are written as a
  scanner's time-domain MDF file with background frames and read back through :mod:`mdf_io`.
* ``physics-shift``: as ``realistic``, but measured with other particles and a drifted scanner
  than the calibration's (:class:`~mpirecon.simulation.shift.PhysicsShift`: longer relaxation,
  smaller cores, drive-amplitude drift, an unseen receive transfer function), written as a
  scanner's time-domain MDF file with background frames and read back through :mod:`mdf_io`;
  the hold-out families plus the three OpenMPI designs as evaluation families of their own
  (``openmpi_shape``, ``openmpi_resolution``, ``openmpi_concentration``; a third of the samples).

``paper`` and ``realistic`` run by default. Every method gets the per-frame noise level of the
signals (what empty-scanner frames tell a user; only the noise-aware, e.g. dip's discrepancy
stop, read it). Classical parameters are tuned per SNR and protocol
on a separate validation split (small grid search, maximising mean PSNR, recorded); learned
methods use one weights file for all SNRs.
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Optional

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mdf_io import MDFFile, read_system_matrix

from mpirecon import metrics
from mpirecon.bench.report import save_example, write_report
from mpirecon.bench.tuning import grid_points, search
from mpirecon.errors import ReconstructorError, UsageError
from mpirecon.io.loading import load_measurement_for
from mpirecon.io.outputs import check_output_dir, refuse_inputs, writing
from mpirecon.progress import Progress
from mpirecon.io.provenance import versions
from mpirecon.reconstructor import check_device, validated
from mpirecon.registry import get_reconstructor_class, list_reconstructors
from mpirecon.preprocess.selection import DEFAULT_SNR_THRESHOLD, selected_system_matrix
from mpirecon.simulation.datasets import SignalRecipe, generate_chunk
from mpirecon.simulation.measurement import realistic_signals
from mpirecon.simulation.phantoms import HOLDOUT_FAMILIES, TRAINING_FAMILIES, mixture, openmpi_designs
from mpirecon.simulation.shift import PhysicsShift, shifted_physics, write_shifted_measurement
from mpirecon.simulation.system_matrix import SimulatedCalibration, simulate_calibration, simulation_from_file

#: parameter grids searched per SNR on the validation split (extended past an edge where the best
#: point lies on it: :mod:`mpirecon.bench.tuning`)
TUNING_GRIDS: dict[str, dict[str, list]] = {
    "pinv": {"lam": [1e-3, 3e-3, 1e-2, 3e-2, 0.1]},
    "kaczmarz": {"lam": [1e-3, 3e-3, 1e-2, 3e-2, 0.1]},
    "cgnr": {"iterations": [5, 10, 20, 40]},
    "admm_l1": {"mu": [1e-4, 1e-3, 3e-3], "rho": [0.1, 1.0, 10.0]},
    "admm_tv": {"mu": [3e-5, 1e-4, 3e-4, 1e-3], "rho": [0.01, 0.1, 1.0]},
    "admm_l1tv": {"mu": [3e-5, 1e-4, 3e-4, 1e-3], "rho": [0.01, 0.1], "alpha_tv": [0.5, 0.8]},
    "ppmpi": {"rho": [0.1, 0.3, 1.0], "iterations": [10, 30]},
}


PROTOCOL_SEED_OFFSETS = {"paper": 0, "realistic": 1, "holdout": 2, "physics-shift": 3}
#: protocols whose signals come from a physics model (a calibration file without /_simulation skips them)
MODEL_PROTOCOLS = ("realistic", "physics-shift")


def split_seed(base_seed: int, protocol: str, level: int, validation: bool = False) -> int:
    """Seed of the test (or validation) split of ``protocol`` at the SNR level with index
    ``level`` in the bench's list, from the bench's ``seed``: fixed per protocol, so a split does
    not depend on which protocols run."""
    return base_seed + 1000 * PROTOCOL_SEED_OFFSETS[protocol] + 10 * level + (5 if validation else 0)


class BenchConfig(BaseModel):
    """Benchmark parameters (recorded in results.json)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    methods: Optional[list[str]] = None
    weights: dict[str, str] = Field(default_factory=dict)
    #: fixed parameters of an entry (e.g. {"admm_tv@auto": {"mu": "auto"}}): used as given, not tuned
    params: dict[str, dict] = Field(default_factory=dict)
    snr_levels: list[float] = Field(default_factory=lambda: [20.0, 25.0, 30.0, 35.0], min_length=1)
    #: defaults sized to finish in ~10 minutes on 2 CPU cores; the paper used 500 test samples
    test_samples: int = Field(100, ge=1)
    val_samples: int = Field(30, ge=1)
    protocols: list[str] = Field(default_factory=lambda: ["paper", "realistic"])
    tune: bool = True
    #: pass the per-frame noise level of the simulated signals to reconstruct (noise=σ), as a
    #: scanner's empty-scanner frames would give it; False: methods estimate it themselves
    known_noise: bool = True
    seed: int = 1234
    device: Optional[str] = None
    snr_threshold: float = DEFAULT_SNR_THRESHOLD
    training_families: tuple[str, ...] = TRAINING_FAMILIES
    holdout_families: tuple[str, ...] = HOLDOUT_FAMILIES
    example_snr: float = 30.0
    #: the measured physics of the physics-shift protocol
    shift: PhysicsShift = Field(default_factory=PhysicsShift)


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
    return grid_points(TUNING_GRIDS.get(base_name(name)) or {})


def _data(protocol, cfg, sim, sm_sel, snr, n, seed, shifted=None):
    """Test or validation split: spectra (n, R), images (n, Ny, Nx) or (n, Nz, Ny, Nx), the per-frame noise level
    σ (n, R) of the spectra, as a scanner user estimates it from empty-scanner frames (here: the
    RMS of the simulated noise of each frame, model mismatch excluded), and the phantom family of
    each sample (n,). ``shifted``: the physics-shift protocol's measured matrix (all rows)."""
    rng = np.random.default_rng(seed)
    shape = sm_sel.image_shape
    if protocol in ("paper", "holdout"):
        families = cfg.training_families if protocol == "paper" else cfg.holdout_families
        recipe = SignalRecipe(n, (snr, snr), families, seed, chunk_size=max(n, 1))
        sig, img, _, fams = generate_chunk(sm_sel.matrix, shape, recipe, 0, labels=True)
        clean = img.reshape(n, -1) @ sm_sel.matrix.T
    elif protocol == "physics-shift" or len(shape) == 3:  # 3D realistic: also a scanner's file
        physics = shifted if protocol == "physics-shift" else sim.physics.matrix
        img, fams = _evaluation_phantoms(n, shape, cfg.holdout_families, rng)
        pos = sim.calibration.rows.positions_of(sm_sel.rows)
        with tempfile.TemporaryDirectory(prefix="mpirecon-bench-") as folder:
            path = Path(folder) / "measurement.mdf"
            write_shifted_measurement(path, sim, physics, img, snr, rng)
            sig = load_measurement_for(path, sm_sel).data
        clean = img.reshape(n, -1) @ physics[pos].T
    else:
        img, fams = _evaluation_phantoms(n, shape, cfg.holdout_families, rng)
        pos = sim.calibration.rows.positions_of(sm_sel.rows)
        sig = realistic_signals(sim, img, snr, rng)[:, pos]
        clean = img.reshape(n, -1) @ sim.physics.matrix[pos].T
    sigma = np.sqrt(np.mean(np.abs(sig - clean) ** 2, axis=1, keepdims=True))
    return sig, img, np.broadcast_to(sigma, sig.shape), fams


def _evaluation_phantoms(n: int, shape, families, rng) -> tuple[np.ndarray, np.ndarray]:
    """Images (n, Ny, Nx) and family labels (n,) of the realistic and physics-shift protocols:
    a third the OpenMPI designs, the rest a mixture of ``families``, in a seeded random order. On a
    3D grid (n, Nz, Ny, Nx): the mixture of the 3D hold-out families alone (the OpenMPI designs are
    2D slices)."""
    if len(shape) == 3:
        return mixture(n, shape, families, rng, labels=True)
    k = n // 3
    open_img, open_fam = openmpi_designs(k, shape, rng)
    img, fams = mixture(n - k, shape, families, rng, labels=True)
    order = rng.permutation(n)
    return np.concatenate([open_img, img])[order], np.concatenate([open_fam, fams])[order]


def by_family(values: np.ndarray, families: np.ndarray) -> dict:
    """{family: summary} of per-sample metric ``values`` (n,) grouped by ``families`` (n,)."""
    return {str(f): metrics.summarize(values[families == f]) for f in sorted(set(families.tolist()))}


def result_files(protocols) -> list[str]:
    """Names of the files a benchmark of ``protocols`` may write into its folder."""
    return ["results.json", "results.md"] + [f"{kind}_{p}.png" for p in protocols
                                             for kind in ("examples", "psnr_vs_snr")]


def check_bench(cfg: BenchConfig, system_matrix_path=None, output="bench-results", overwrite: bool = False,
                resume: bool = False) -> tuple[list[str], Optional[dict]]:
    """Everything a benchmark can check before its slow work: the output folder (new or empty
    unless ``overwrite``, or holding an interrupted run of the same configuration with ``resume``;
    no input among its files), the methods, their weights and the device.
    Returns the methods and the results to resume from (None for a fresh run)."""
    previous = None
    folder = Path(output)
    saved = folder / "results.json"
    if resume and saved.is_file():
        previous = json.loads(saved.read_text())
        mine = cfg.model_dump(mode="json")
        if previous.get("config") != mine:
            changed = sorted(k for k in mine if previous.get("config", {}).get(k) != mine[k])
            raise UsageError(f"{saved}: field 'config': expected the configuration of this run to resume it, "
                             f"found different {', '.join(changed)}")
    else:
        check_output_dir(output, overwrite=overwrite or resume, hint="--resume to continue its run, --overwrite to replace it")
    refuse_inputs({name: folder / name for name in result_files(cfg.protocols)},
                  [system_matrix_path, *cfg.weights.values()])
    methods = usable_methods(cfg)
    for name in methods:
        check_device(name, cfg.device or "cpu", method_class(name).capabilities.supports_gpu)
    for entry, params in cfg.params.items():
        if entry not in methods:
            raise UsageError(f"--params {entry}=...: expected one of the benchmarked methods "
                             f"({', '.join(methods)}), found {entry!r}")
        validated(method_class(entry).Config, params, f"--params {entry}")
    return methods, previous


def _save_json(path: Path, data: dict) -> None:
    """Replace ``path`` by ``data`` as JSON atomically (readers never see a partial file)."""
    with writing([path], overwrite=True) as (tmp,):
        tmp.write_text(json.dumps(data, indent=1, default=float))


def _evaluate(name: str, cfg: BenchConfig, sm_sel, test, val) -> tuple[dict, np.ndarray, np.ndarray]:
    """One bench step: tune ``name`` on the validation split (unless its parameters are fixed by
    ``cfg.params``), reconstruct the test split; returns (entry, first 6 images, their truths)."""
    cls = method_class(name)
    test_sig, test_img, test_noise, test_fam = (a[:cls.capabilities.bench_test_samples] for a in test)
    val_sig, val_img, val_noise, _ = val
    if not cfg.known_noise:
        test_noise = val_noise = None
    pick = (lambda a, k: None if a is None else a[:k])
    given = dict(cfg.params.get(name, {}))
    tuned, tuning = {}, []
    t_tune = time.perf_counter()
    if cfg.tune and not given and not cls.capabilities.needs_weights and len(_grid(name)) > 1:
        base = _make(name, sm_sel, {}, cfg)

        def score(params: dict) -> float:  # with_params shares the operator's cached set-up
            images = base.with_params(**params).reconstruct(val_sig, noise=val_noise).images
            return float(np.mean(metrics.psnr(images, val_img)))
        def valid(params: dict) -> bool:  # a step past a grid edge may leave a parameter's range
            try:
                cls._validated(params)
            except ReconstructorError:
                return False
            return True
        tuned, tuning = search(TUNING_GRIDS[base_name(name)], score, valid=valid)
    tuning_seconds = time.perf_counter() - t_tune
    recon = _make(name, sm_sel, dict(tuned, **given), cfg)
    recon.reconstruct(test_sig[:2], noise=pick(test_noise, 2))  # warm-up (lazy allocations, threads)
    t0 = time.perf_counter()
    res = recon.reconstruct(test_sig, noise=test_noise)
    per_frame = (time.perf_counter() - t0) / test_sig.shape[0]
    t1 = time.perf_counter()
    recon.reconstruct(test_sig[:1], noise=pick(test_noise, 1))
    single = time.perf_counter() - t1
    psnrs, ssims = metrics.psnr(res.images, test_img), metrics.ssim(res.images, test_img)
    entry = {"parameters": recon.parameters, "weights": cfg.weights.get(name), "tuning": tuning,
             "test_samples": int(test_sig.shape[0]),
             "nrmse": metrics.summarize(metrics.nrmse(res.images, test_img)),
             "psnr": metrics.summarize(psnrs), "ssim": metrics.summarize(ssims),
             # per test sample, in test-split order: methods capped to fewer samples (DIP) are compared
             # with the others on the same first samples (benchmarks/paper_tables.py)
             "samples": {"psnr": np.round(psnrs, 4).tolist(), "ssim": np.round(ssims, 5).tolist()},
             "psnr_by_family": by_family(psnrs, test_fam), "ssim_by_family": by_family(ssims, test_fam),
             "seconds_per_frame_batch": per_frame, "seconds_single_frame": single,
             "tuning_seconds": tuning_seconds}
    if tuning:
        default = _make(name, sm_sel, given, cfg)
        entry["psnr_defaults"] = metrics.summarize(metrics.psnr(
            default.reconstruct(test_sig, noise=test_noise).images, test_img))
    return entry, res.images[:6], test_img[:6]


def run_bench(cfg: BenchConfig, system_matrix_path=None, output="bench-results", progress: bool = True,
              overwrite: bool = False, resume: bool = False) -> Path:
    """Run the benchmark into ``output``: results.json is replaced after every method and SNR (an
    interrupted run keeps what it finished; ``resume`` continues it, skipping finished steps),
    results.md and the figures follow at the end. Without ``resume`` the folder must be new or
    empty unless ``overwrite``."""
    methods, previous = check_bench(cfg, system_matrix_path, output, overwrite, resume)
    sim, calib, sm_desc = _load_calibration(system_matrix_path)
    sm_sel = selected_system_matrix(calib, cfg.snr_threshold)
    protocols = [p for p in cfg.protocols if p not in MODEL_PROTOCOLS or sim is not None]
    notes = []
    if len(protocols) < len(cfg.protocols):
        skipped = ", ".join(p for p in cfg.protocols if p not in protocols)
        notes.append(f"{skipped} skipped: the calibration file carries no physics model (/_simulation)")
    shifted = shifted_physics(sim, cfg.shift) if "physics-shift" in protocols else None
    results = previous or {"config": cfg.model_dump(mode="json"), "system_matrix": sm_desc,
                           "rows_selected": sm_sel.num_rows, "rows_total": calib.num_rows, "grid": list(sm_sel.grid),
                           "versions": versions(), "notes": notes, "protocols": {}}
    out = Path(output)
    examples_dir = out / "examples"  # example images kept for the figures of a resumed run
    examples_dir.mkdir(parents=True, exist_ok=True)
    bar = Progress(len(protocols) * len(cfg.snr_levels) * len(methods), "bench", enabled=progress)
    for protocol in protocols:
        proto = results["protocols"].setdefault(protocol, {})
        for si, snr in enumerate(cfg.snr_levels):
            level = proto.setdefault(f"{snr:g}", {})
            todo = [m for m in methods if m not in level]
            if len(todo) < len(methods):
                bar.update(len(methods) - len(todo), protocol=protocol, snr=snr, method="(resumed)")
            if not todo:
                continue
            test = _data(protocol, cfg, sim, sm_sel, snr, cfg.test_samples, split_seed(cfg.seed, protocol, si), shifted)
            val = _data(protocol, cfg, sim, sm_sel, snr, cfg.val_samples, split_seed(cfg.seed, protocol, si, True),
                        shifted)
            for name in todo:
                level[name], images, truth = _evaluate(name, cfg, sm_sel, test, val)
                if snr == cfg.example_snr:
                    save_example(examples_dir, protocol, name, images, truth)
                _save_json(out / "results.json", results)
                bar.update(1, protocol=protocol, snr=snr, method=name)
    write_report(out, results, methods, cfg.snr_levels)
    return out


