"""``mpirecon demo``: simulate, (quickly) train DERnet, reconstruct three phantoms with every method.

Writes to the output folder: the calibration and measurements as MDF files, ``comparison.png``
(phantoms x methods with error maps) and ``metrics.md`` / ``metrics.json`` (PSNR, SSIM, NRMSE,
time per frame). Demo DERnet weights are cached in the user cache directory (keyed by the system
matrix fingerprint), so a second run skips training.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mpirecon import metrics
from mpirecon.cache import default_cache_dir
from mpirecon.io.loading import load_measurement_for, load_system_matrix
from mpirecon.io.outputs import check_output_dir, writing
from mpirecon.progress import Progress
from mpirecon.registry import get_reconstructor_class, list_reconstructors
from mpirecon.preprocess.selection import DEFAULT_SNR_THRESHOLD

#: a short training run: a few minutes on 2 CPU cores (the full recipe is `mpirecon train`)
DEMO_TRAINING = dict(samples=12000, val_samples=1000, epochs=8, batch_size=128, max_minutes=6.0)
DEMO_SNR_DB = 30.0


def _demo_weights(sm, folder: Path, retrain: bool, log: Progress, progress: bool) -> dict:
    """{method: weights path} of the demo's trained methods (DERnet with :data:`DEMO_TRAINING`),
    trained through the registry unless cached in ``folder``; empty if DERnet is not installed."""
    if "dernet" not in list_reconstructors():
        return {}
    import hashlib
    import json

    # the cache key holds the matrix and the whole resolved recipe: a new recipe trains anew
    recipe = get_reconstructor_class("dernet").train_settings(DEMO_TRAINING).model_dump(mode="json")
    key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:8]
    path = folder / f"dernet-demo-{sm.fingerprint()[:16]}-{key}.pt"
    if retrain or not path.exists():
        log.message(f"training a quick DERnet (cached at {path}); `mpirecon train` runs the full recipe")
        folder.mkdir(parents=True, exist_ok=True)
        try:
            get_reconstructor_class("dernet").train(sm, path, DEMO_TRAINING, progress=progress)
        except Exception as exc:  # a broken plugin must not stop the demo
            log.message(f"skipping dernet: training failed: {exc}")
            return {}
    return {"dernet": str(path)}


def run_demo(output="mpirecon-demo", *, cache_dir=None, retrain: bool = False, progress: bool = True,
             overwrite: bool = False) -> Path:
    """Run the demo into ``output`` (a new or empty folder unless ``overwrite``); returns the
    folder. Its files appear together at the end, or none does. Methods whose needs are unmet
    (weights nobody trained) are skipped."""
    from mpirecon.simulation import phantoms

    out = check_output_dir(output, overwrite=overwrite)
    out.mkdir(parents=True, exist_ok=True)
    names = list(phantoms.NAMED_PHANTOMS)
    files = ["system_matrix.mdf"] + [f"measurement_{n}.mdf" for n in names] + ["comparison.png", "metrics.md",
                                                                               "metrics.json"]
    with writing([out / f for f in files], overwrite=overwrite) as tmps:
        _demo_into(dict(zip(files, tmps)), names, cache_dir, retrain, progress)
    return out


def _demo_into(tmp: dict, names: list[str], cache_dir, retrain: bool, progress: bool) -> None:
    """The demo, writing each file to its temporary path ``tmp[name]`` (published by the caller)."""
    from mpirecon.viz.figures import comparison_grid
    from mpirecon.simulation import phantoms
    from mpirecon.simulation.measurement import simulate_spectra, write_time_domain_measurement
    from mpirecon.simulation.system_matrix import simulate_calibration

    log = Progress(1, enabled=progress)
    sim = simulate_calibration()
    sim.write(tmp["system_matrix.mdf"], overwrite=True)  # the temporary files exist (empty)
    sm = load_system_matrix(tmp["system_matrix.mdf"])
    log.message(f"simulated calibration system_matrix.mdf: grid {sm.grid[:2]}, {sm.num_rows} rows with SNR > "
                f"{DEFAULT_SNR_THRESHOLD}")
    truths = np.stack([phantoms.named_phantom(n, sm.image_shape) for n in names])
    meas_paths = []
    for i, name in enumerate(names):
        m = simulate_spectra(sim, truths[i], DEMO_SNR_DB, seed=100 + i)
        p = tmp[f"measurement_{name}.mdf"]
        write_time_domain_measurement(p, sim, m, name=f"phantom {name}", overwrite=True)
        meas_paths.append(p)
    weights = _demo_weights(sm, Path(cache_dir) if cache_dir else default_cache_dir(), retrain, log, progress)
    rows, psnrs, table = {}, {}, []
    for name in list_reconstructors():
        try:
            cls = get_reconstructor_class(name)
            if cls.capabilities.needs_weights and name not in weights:
                log.message(f"skipping {name}: needs weights")
                continue
            quiet = {} if progress or "progress" not in cls.Config.model_fields else {"progress": False}
            recon = cls(sm, weights=weights.get(name), **quiet)
        except Exception as exc:  # a broken third-party plugin must not stop the demo
            log.message(f"skipping {name}: {exc}")
            continue
        images, seconds = [], 0.0
        for p in meas_paths:
            meas = load_measurement_for(p, recon.system_matrix, average=True)
            res = recon.reconstruct(meas)
            images.append(res.images[0])
            seconds += res.seconds
        images = np.stack(images)
        rows[name] = images
        psnrs[name] = metrics.psnr(images, truths)
        table.append({"method": name, "psnr": psnrs[name].tolist(), "ssim": metrics.ssim(images, truths).tolist(),
                      "nrmse": metrics.nrmse(images, truths).tolist(), "ms_per_frame": 1e3 * seconds / len(names)})
    comparison_grid(tmp["comparison.png"], truths, rows, row_titles=names, psnrs=psnrs, overwrite=True)
    lines = ["# mpirecon demo", "", f"Simulated 19x19 FFP calibration, phantoms at {DEMO_SNR_DB:g} dB SNR "
             "(physics model + background, noisy calibration). DERnet here is the quick demo training, "
             "not the full recipe.", "",
             "| method | " + " | ".join(f"PSNR {n} (dB)" for n in names) + " | mean SSIM | ms/frame |",
             "|---|" + "---|" * (len(names) + 2)]
    for row in table:
        lines.append(f"| {row['method']} | " + " | ".join(f"{v:.2f}" for v in row["psnr"])
                     + f" | {np.mean(row['ssim']):.3f} | {row['ms_per_frame']:.2f} |")
    tmp["metrics.md"].write_text("\n".join(lines) + "\n")
    tmp["metrics.json"].write_text(json.dumps(table, indent=1))
    log.message("\n".join(lines))
