"""Implementations of the ``mpirecon`` sub-commands (parsing lives in :mod:`.main`)."""
from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import numpy as np


def _parse_params(items) -> dict:
    """``["lam=0.1", "nonneg=false"]`` -> {"lam": 0.1, "nonneg": False} (Python literals, true/false)."""
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--param '{item}': expected KEY=VALUE")
        key, value = item.split("=", 1)
        low = value.strip().lower()
        if low in ("true", "false"):
            out[key.strip()] = low == "true"
            continue
        try:
            out[key.strip()] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key.strip()] = value
    return out


def _refuse_input_as_output(output, *inputs) -> None:
    out = Path(output).resolve()
    for item in inputs:
        if item is not None and Path(item).resolve() == out:
            raise ValueError(f"output {output} is also an input file; refusing to overwrite an input")


def _check_output(output, overwrite: bool) -> None:
    if Path(output).exists() and not overwrite:
        raise FileExistsError(f"{output} exists; pass --overwrite to replace it")


def cmd_info(args) -> int:
    from mdf_io import describe
    print(describe(args.file))
    return 0


def cmd_methods(args) -> int:
    from mpirecon.registry import describe_reconstructors, get_reconstructor_class
    rows = describe_reconstructors()
    width = max(len(n) for n, _ in rows) if rows else 4
    for name, desc in rows:
        extra = ""
        try:
            caps = get_reconstructor_class(name).capabilities
            flags = [f for f, on in (("needs --weights", caps.needs_weights), ("gpu", caps.supports_gpu)) if on]
            extra = f"  [{', '.join(flags)}]" if flags else ""
        except Exception:
            pass
        print(f"{name:<{width}}  {desc}{extra}")
    return 0


def cmd_run(args) -> int:
    from mdf_io import write_reconstruction
    from mpirecon.figures import image_png
    from mpirecon.loading import load_measurement_for, load_system_matrix
    from mpirecon.registry import get_reconstructor_class
    from mpirecon.selection import DEFAULT_SNR_THRESHOLD

    _refuse_input_as_output(args.output, args.measurement, args.sm, args.background, args.weights)
    if args.png:
        _refuse_input_as_output(args.png, args.measurement, args.sm, args.background, args.weights)
    _check_output(args.output, args.overwrite)
    cls = get_reconstructor_class(args.method)
    params = _parse_params(args.param)
    if args.device:
        params["device"] = args.device
    recon = cls(None, weights=args.weights, **params)
    if args.sm is None:
        if cls.capabilities.needs_system_matrix or recon.geometry is None:
            raise ValueError(f"--sm: method '{args.method}' needs the system matrix (calibration file)")
        print(f"using the geometry stored in {args.weights} ({recon.geometry.num_rows} rows, "
              f"grid {recon.geometry.grid})", file=sys.stderr)
        target = recon.geometry
        fov = np.asarray(recon.geometry.fov)
    else:
        threshold = args.snr_threshold
        if threshold is None:
            trained = recon.geometry.selection if recon.geometry is not None else {}
            threshold = trained.get("snr_threshold", DEFAULT_SNR_THRESHOLD)
        print(f"reading system matrix {args.sm} (SNR > {threshold})", file=sys.stderr)
        sm = load_system_matrix(args.sm, snr_threshold=threshold, min_frequency=args.min_freq,
                                max_frequency=args.max_freq, receive_channels=args.channels)
        print(f"  {sm.num_rows} of {sm.selection.get('num_rows_total')} rows kept, grid {sm.grid}", file=sys.stderr)
        recon.bind(sm)
        target = recon.system_matrix
        fov = sm.fov
    meas = load_measurement_for(args.measurement, target, frames=args.frames, average=args.average,
                                subtract_background=not args.no_background_correction, background=args.background)
    print(f"reconstructing {meas.num_frames} frame(s) with {args.method}", file=sys.stderr)
    result = recon.reconstruct(meas)
    rec = result.to_reconstruction(header=meas.header)
    rec.parameters["measurement"] = str(args.measurement)
    rec.parameters["system_matrix"] = str(args.sm)
    if args.weights:
        rec.parameters["weights"] = str(args.weights)
    write_reconstruction(args.output, rec, overwrite=args.overwrite)
    print(f"wrote {args.output} ({result.images.shape[0]} frame(s), {1e3 * result.seconds / result.images.shape[0]:.2f} ms/frame)")
    if args.png:
        image_png(args.png, result.images[0], title=f"{args.method}", fov=fov)
        print(f"wrote {args.png}")
    return 0


def cmd_simulate(args, parser) -> int:
    from mpirecon.simulation.scanner import ParticleParams, ScannerParams
    from mpirecon.simulation.system_matrix import CalibrationNoise, simulate_calibration

    if args.what == "system-matrix":
        _check_output(args.output, args.overwrite)
        scanner = ScannerParams(grid=tuple(args.grid), fov=tuple(args.fov) if args.fov else None,
                                gradient=tuple(args.gradient), drive_amplitude=tuple(args.amplitude))
        particles = ParticleParams() if args.relaxation is None else ParticleParams(relaxation_time=args.relaxation)
        noise = CalibrationNoise(seed=args.seed) if args.noise_level is None else CalibrationNoise(
            seed=args.seed, noise_level=args.noise_level)
        sim = simulate_calibration(scanner, particles, noise)
        sim.write(args.output, overwrite=args.overwrite)
        kept = int(np.sum(sim.calibration.snr > 1.5))
        print(f"wrote {args.output}: grid {scanner.grid}, {sim.calibration.num_rows} rows ({kept} with SNR > 1.5)")
        return 0
    if args.what == "measurement":
        return _simulate_measurement(args)
    parser.parse_args(["simulate", "--help"])
    return 2


def _simulate_measurement(args) -> int:
    from mdf_io import MDFFile
    from mpirecon.simulation import phantoms
    from mpirecon.simulation.measurement import simulate_spectra, write_time_domain_measurement
    from mpirecon.simulation.system_matrix import simulation_from_file

    _refuse_input_as_output(args.output, args.sm)
    _check_output(args.output, args.overwrite)
    with MDFFile(args.sm) as mdf:
        sim = simulation_from_file(mdf)
    if sim is None:
        raise ValueError(f"{args.sm}: field '/_simulation' missing: only calibrations written by "
                         "`mpirecon simulate system-matrix` carry the physics model needed here")
    shape = sim.calibration.image_shape
    if args.phantom in phantoms.NAMED_PHANTOMS:
        image = phantoms.named_phantom(args.phantom, shape)
    elif args.phantom in phantoms.FAMILIES:
        image = phantoms.generate(args.phantom, 1, shape, args.seed)[0]
    elif Path(args.phantom).exists():
        image = phantoms.load_phantom_image(args.phantom, shape)
    else:
        raise ValueError(f"--phantom '{args.phantom}': not a named phantom "
                         f"({', '.join(phantoms.NAMED_PHANTOMS)}), family ({', '.join(phantoms.FAMILIES)}) or file")
    meas = simulate_spectra(sim, np.repeat(image[None], args.frames, 0), args.snr,
                            background_frames=args.background_frames, seed=args.seed)
    write_time_domain_measurement(args.output, sim, meas, name=f"phantom {args.phantom}", overwrite=args.overwrite)
    print(f"wrote {args.output}: {args.frames} frame(s) + {args.background_frames} background, "
          f"SNR {meas.achieved_snr_db():.2f} dB (requested {args.snr})")
    return 0


def cmd_train(args) -> int:
    from mpirecon.loading import load_system_matrix
    from mpirecon_dernet.training import TrainConfig, train_dernet

    _refuse_input_as_output(args.output, args.sm)
    overrides = {k: v for k, v in dict(samples=args.samples, val_samples=args.val_samples, epochs=args.epochs,
                                       batch_size=args.batch_size, lr=args.lr, snr_min=args.snr_min,
                                       snr_max=args.snr_max, seed=args.seed, device=args.device,
                                       max_minutes=args.max_minutes,
                                       families=tuple(args.families) if args.families else None).items()
                 if v is not None}
    for item in args.settings:
        key, sep, value = item.partition("=")
        if not sep or key not in TrainConfig.model_fields:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE with KEY one of {sorted(TrainConfig.model_fields)}")
        overrides[key] = value  # pydantic converts and validates the text
    cfg = TrainConfig(**overrides)
    sm = load_system_matrix(args.sm, snr_threshold=args.snr_threshold)
    print(f"training DERnet for {args.sm}: {sm.num_rows} rows, grid {sm.grid}, "
          f"{cfg.samples} samples, {cfg.epochs} epochs", file=sys.stderr)
    res = train_dernet(sm, args.output, cfg, resume=args.resume, progress=not args.quiet)
    print(json.dumps({"weights": str(res.path), "best_epoch": res.best_epoch, "best_val_loss": res.best_val_loss,
                      "best_val_psnr": res.best_val_psnr, "minutes": res.seconds / 60}))
    return 0


def cmd_train_denoiser(args) -> int:
    from mpirecon.simulation.phantoms import TRAINING_FAMILIES
    from mpirecon_dernet.denoiser import train_denoiser

    _check_output(args.output, args.overwrite)
    res = train_denoiser(args.output, grid=tuple(args.grid), samples=args.samples, epochs=args.epochs,
                         batch_size=args.batch_size, lr=args.lr, noise_std=args.noise_std,
                         families=tuple(args.families) if args.families else TRAINING_FAMILIES, seed=args.seed,
                         device=args.device, progress=not args.quiet)
    best = min(res["history"], key=lambda h: h["val_loss"])
    print(json.dumps({"weights": res["path"], "best_epoch": best["epoch"], "best_val_psnr": best["val_psnr"],
                      "minutes": res["seconds"] / 60}))
    return 0


def dispatch(args, parser) -> int:
    if args.command == "info":
        return cmd_info(args)
    if args.command == "methods":
        return cmd_methods(args)
    if args.command == "run":
        return cmd_run(args)
    if args.command == "simulate":
        return cmd_simulate(args, parser)
    if args.command == "train":
        return cmd_train(args)
    if args.command == "train-denoiser":
        return cmd_train_denoiser(args)
    if args.command == "bench":
        from .bench_cmd import run
        return run(args)
    if args.command == "demo":
        from .demo_cmd import run
        return run(args)
    parser.print_help()
    return 2
