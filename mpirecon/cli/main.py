"""``mpirecon`` command: info, methods, run, simulate, train, bench, demo.

Every sub-command exits 0 on success and 2 with a one-line ``mpirecon: error: ...`` on bad
input; outputs are written atomically and inputs are never overwritten.
"""
from __future__ import annotations

import argparse
import sys
from .._version import __version__


def _add_selection_args(p):
    p.add_argument("--snr-threshold", type=float, default=None,
                   help="keep system-matrix rows with SNR above this (default 1.5; for dernet: the trained selection)")
    p.add_argument("--min-freq", type=float, default=None, help="lowest frequency kept (Hz)")
    p.add_argument("--max-freq", type=float, default=None, help="highest frequency kept (Hz)")
    p.add_argument("--channels", type=int, nargs="+", default=None, help="receive channels kept (0-based)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mpirecon", description="Magnetic Particle Imaging reconstruction toolkit")
    parser.add_argument("--version", action="version", version=f"mpirecon {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("info", help="describe an MDF file (calibration, measurement or reconstruction)")
    p.add_argument("file")

    sub.add_parser("methods", help="list registered reconstruction methods")

    p = sub.add_parser("run", help="reconstruct a measurement with a system matrix")
    p.add_argument("measurement", help="MDF measurement file")
    p.add_argument("--sm", default=None, help="MDF calibration (system-matrix) file (optional for methods whose "
                   "weights carry the geometry, e.g. dernet)")
    p.add_argument("--method", required=True, help="reconstructor name (see `mpirecon methods`)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="method parameter, repeatable")
    p.add_argument("--weights", default=None, help="weights file for learned methods")
    p.add_argument("--frames", type=int, nargs="+", default=None, help="foreground frames to use (0-based)")
    p.add_argument("--average", action="store_true", help="average the selected frames")
    p.add_argument("--background", default=None, help="separate empty-scanner measurement to subtract")
    p.add_argument("--no-background-correction", action="store_true", help="do not subtract background frames")
    p.add_argument("--device", default=None, help="cpu or cuda (methods with a torch path)")
    p.add_argument("-o", "--output", required=True, help="output MDF file with /reconstruction")
    p.add_argument("--png", default=None, help="also write a PNG of the first frame")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    _add_selection_args(p)

    sim = sub.add_parser("simulate", help="simulate a system matrix or a measurement")
    ssub = sim.add_subparsers(dest="what", metavar="WHAT")
    p = ssub.add_parser("system-matrix", help="simulate an FFP calibration and write it as MDF")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--grid", type=int, nargs=2, default=(19, 19), metavar=("NX", "NY"))
    p.add_argument("--fov", type=float, nargs=2, default=None, metavar=("FX", "FY"), help="FOV in metres")
    p.add_argument("--gradient", type=float, nargs=2, default=(1.0, 1.0), metavar=("GX", "GY"), help="T/m")
    p.add_argument("--amplitude", type=float, nargs=2, default=(12e-3, 12e-3), metavar=("AX", "AY"), help="T")
    p.add_argument("--noise-level", type=float, default=None, help="calibration noise relative to max |S|")
    p.add_argument("--relaxation", type=float, default=None, help="Debye relaxation time (s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true")
    p = ssub.add_parser("measurement", help="simulate a time-domain measurement (with background frames)")
    p.add_argument("--sm", required=True, help="calibration file (simulated: its physics model is used)")
    p.add_argument("--phantom", required=True, help="shape|resolution|concentration, a family name, or an image/.npy")
    p.add_argument("--snr", type=float, default=30.0, help="SNR in dB (see mpirecon.simulation.noise)")
    p.add_argument("--frames", type=int, default=1, help="foreground frames")
    p.add_argument("--background-frames", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--overwrite", action="store_true")

    p = sub.add_parser("train", help="train DERnet on simulated data for a system matrix")
    p.add_argument("--sm", required=True, help="calibration file")
    p.add_argument("-o", "--output", required=True, help="weights file to write")
    p.add_argument("--snr-threshold", type=float, default=1.5)
    p.add_argument("--samples", type=int, default=None)
    p.add_argument("--val-samples", type=int, default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--snr-min", type=float, default=None)
    p.add_argument("--snr-max", type=float, default=None)
    p.add_argument("--families", nargs="+", default=None, help="phantom families of the training prior")
    p.add_argument("--max-minutes", type=float, default=None, help="wall-time budget (default 55)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--resume", default=None, help="checkpoint (OUTPUT.ckpt) to continue from")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="settings",
                   help="any other training-config field (e.g. c5=64, resample_phantoms=true), repeatable")
    p.add_argument("--quiet", action="store_true")

    p = sub.add_parser("train-denoiser", help="train a PP-MPI RDN denoiser on the simulation's phantom prior")
    p.add_argument("-o", "--output", required=True, help="denoiser weights file to write (use with --weights for ppmpi)")
    p.add_argument("--grid", type=int, nargs=2, default=(19, 19), metavar=("NX", "NY"),
                   help="training image size (the denoiser is fully convolutional; use your system matrix's grid)")
    p.add_argument("--samples", type=int, default=20000)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--noise-std", type=float, default=0.1, help="Gaussian noise std on images scaled to max 1")
    p.add_argument("--families", nargs="+", default=None, help="phantom families of the prior")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--quiet", action="store_true")

    from . import bench_cmd, demo_cmd
    bench_cmd.add_parser(sub)
    demo_cmd.add_parser(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from mdf_io import MDFError
    from mpirecon.reconstructor import ReconstructorError

    try:
        from . import commands
        return commands.dispatch(args, parser)
    except (MDFError, ReconstructorError, ValueError, FileNotFoundError, FileExistsError) as exc:
        print(f"mpirecon: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mpirecon: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
