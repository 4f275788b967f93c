"""``mpirecon simulate``: an FFP calibration (system matrix) or a time-domain measurement."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mpirecon.errors import UsageError
from mpirecon.io.outputs import check_outputs, check_space
from mpirecon.preprocess.selection import DEFAULT_SNR_THRESHOLD


def add_parser(sub) -> None:
    """Register ``simulate system-matrix`` and ``simulate measurement``."""
    sim = sub.add_parser("simulate", help="simulate a system matrix or a measurement")
    sim.set_defaults(simulate_parser=sim)
    ssub = sim.add_subparsers(dest="what", metavar="WHAT")
    p = ssub.add_parser("system-matrix", help="simulate an FFP calibration and write it as MDF")
    p.add_argument("-o", "--output", required=True, help="calibration file to write")
    p.add_argument("--grid", type=int, nargs="+", default=(19, 19), metavar="N",
                   help="voxels NX NY (2D Bruker-like scanner) or NX NY NZ (OpenMPI-like 3D scanner: 3 channels, "
                        "dividers 102/96/99, gradient 1/1/2 T/m)")
    p.add_argument("--fov", type=float, nargs="+", default=None, metavar="F",
                   help="FOV in metres per axis (None: from gradient and drive amplitude)")
    p.add_argument("--gradient", type=float, nargs="+", default=None, metavar="G",
                   help="T/m per axis (None: 1 1 in 2D, 1 1 2 in 3D)")
    p.add_argument("--amplitude", type=float, nargs="+", default=None, metavar="A",
                   help="drive amplitude in T per axis (None: 12 mT each)")
    p.add_argument("--max-frequency", type=float, default=None,
                   help="store only frequencies <= this (Hz), as /measurement/frequencySelection")
    p.add_argument("--frequencies", type=int, default=None, metavar="N",
                   help="store only the N strongest frequencies (a full 37^3 spectrum would be 30-60 GB)")
    p.add_argument("--noise-level", type=float, default=None,
                   help="calibration noise relative to max |S| (None: the simulator's default)")
    p.add_argument("--relaxation", type=float, default=None, help="Debye relaxation time (s) (None: the default)")
    p.add_argument("--seed", type=int, default=0, help="noise seed")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p = ssub.add_parser("measurement", help="simulate a time-domain measurement (with background frames)")
    p.add_argument("--sm", required=True, help="calibration file (simulated: its physics model is used)")
    p.add_argument("--phantom", required=True, help="shape|resolution|concentration, a family name (3D grids: also a 3D family, e.g. vessel_trees), or an image/.npy")
    p.add_argument("--snr", type=float, default=30.0, help="SNR in dB (see mpirecon.simulation.noise)")
    p.add_argument("--frames", type=int, default=1, help="foreground frames")
    p.add_argument("--background-frames", type=int, default=10, help="empty-scanner frames")
    p.add_argument("--seed", type=int, default=0, help="phantom and noise seed")
    p.add_argument("-o", "--output", required=True, help="measurement file to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")


def run(args) -> int:
    """Simulate what ``args.what`` names (system-matrix or measurement) into ``args.output``."""
    from mpirecon.reconstructor import validated
    from mpirecon.simulation.scanner import ParticleParams, ScannerParams, scanner_3d
    from mpirecon.simulation.system_matrix import CalibrationNoise, simulate_calibration

    if args.what == "system-matrix":
        check_outputs({"-o": args.output}, overwrite=args.overwrite)
        given = _given(grid=args.grid, fov=args.fov, gradient=args.gradient, drive_amplitude=args.amplitude,
                       max_frequency=args.max_frequency, num_frequencies=args.frequencies)
        if len(args.grid) == 3:  # the 3D scanner's defaults, then what was given
            given = dict(scanner_3d(args.grid).model_dump(exclude_defaults=True), **given)
        scanner = validated(ScannerParams, given,
                            "--grid/--fov/--gradient/--amplitude/--max-frequency/--frequencies")
        particles = validated(ParticleParams, _given(relaxation_time=args.relaxation), "--relaxation")
        noise = validated(CalibrationNoise, _given(seed=args.seed, noise_level=args.noise_level), "--noise-level/--seed")
        rows = scanner.receive_channels * len(scanner.kept_frequency_indices())
        frames = int(np.prod(scanner.grid)) + noise.background_frames
        check_space(args.output, rows * frames * 16 + 2 ** 20)  # complex128 frames + header, before simulating
        sim = simulate_calibration(scanner, particles, noise)
        sim.write(args.output, overwrite=args.overwrite)
        kept = int(np.sum(sim.calibration.snr > DEFAULT_SNR_THRESHOLD))
        print(f"wrote {args.output}: grid {scanner.grid}, {sim.calibration.num_rows} rows "
              f"({kept} with SNR > {DEFAULT_SNR_THRESHOLD})")
        return 0
    if args.what == "measurement":
        return _simulate_measurement(args)
    args.simulate_parser.print_help()
    return 2


def _given(**values) -> dict:
    """The options given (not None), lists as tuples, for a parameter model."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if v is not None}


def _simulate_measurement(args) -> int:
    """Simulate a measurement of ``args.phantom`` with the physics model stored in ``args.sm``."""
    from mdf_io import MDFFile, MDFFormatError
    from mpirecon.simulation import phantoms
    from mpirecon.simulation.phantom_files import extrude
    from mpirecon.simulation.phantoms3d import FAMILIES_3D
    from mpirecon.simulation.measurement import simulate_spectra, write_time_domain_measurement
    from mpirecon.simulation.system_matrix import simulation_from_file

    phantom_file = args.phantom if Path(args.phantom).is_file() else None
    check_outputs({"-o": args.output}, (args.sm, phantom_file), overwrite=args.overwrite)
    if not np.isfinite(args.snr) or args.frames < 1 or args.background_frames < 0:
        raise UsageError(f"--snr {args.snr} --frames {args.frames} --background-frames {args.background_frames}: "
                         "expected a finite SNR, at least 1 frame and no negative number of background frames")
    with MDFFile(args.sm) as mdf:
        sim = simulation_from_file(mdf)
    if sim is None:
        raise MDFFormatError(args.sm, "/_simulation", "the physics model of a calibration written by "
                             "`mpirecon simulate system-matrix`", "no such field")
    shape = sim.calibration.image_shape
    scanner = sim.scanner
    check_space(args.output, (args.frames + args.background_frames) * scanner.receive_channels
                * scanner.num_sampling_points * 4 + 2 ** 20)  # float32 time signals + header
    if len(shape) == 3 and args.phantom in FAMILIES_3D:  # a 3D family: a whole volume (seeded)
        image = phantoms.generate(args.phantom, 1, shape, args.seed)[0]
    else:
        image = _phantom_image(args, phantoms, shape[-2:] if len(shape) == 3 else shape)
    if image.ndim == 2 and len(shape) == 3:  # a 3D grid: the 2D phantom in the central slab
        image = extrude(image, shape[0])
    meas = simulate_spectra(sim, np.repeat(image[None], args.frames, 0), args.snr,
                            background_frames=args.background_frames, seed=args.seed)
    write_time_domain_measurement(args.output, sim, meas, name=f"phantom {args.phantom}", overwrite=args.overwrite)
    print(f"wrote {args.output}: {args.frames} frame(s) + {args.background_frames} background, "
          f"SNR {meas.achieved_snr_db():.2f} dB (requested {args.snr})")
    return 0


def _phantom_image(args, phantoms, shape) -> np.ndarray:
    """The 2D image (Ny, Nx) ``args.phantom`` names: a named phantom, a family (seeded) or a file."""
    from mpirecon.simulation.phantoms3d import FAMILIES_3D
    phantom_file = args.phantom if Path(args.phantom).is_file() else None
    if args.phantom in phantoms.NAMED_PHANTOMS:
        image = phantoms.named_phantom(args.phantom, shape)
    elif args.phantom in phantoms.FAMILIES:
        image = phantoms.generate(args.phantom, 1, shape, args.seed)[0]
    elif phantom_file:
        from mpirecon.simulation.phantom_files import load_phantom_image
        image = load_phantom_image(args.phantom, shape)
    else:
        raise UsageError(f"--phantom '{args.phantom}': not a named phantom "
                         f"({', '.join(phantoms.NAMED_PHANTOMS)}), family ({', '.join(phantoms.FAMILIES)}; "
                         f"3D grids also {', '.join(FAMILIES_3D)}) or file")
    return image
