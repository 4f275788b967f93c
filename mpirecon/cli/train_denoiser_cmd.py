"""``mpirecon train-denoiser``: alias of ``mpirecon train --method ppmpi`` for a grid instead of a
system matrix (the denoiser is fully convolutional)."""
from __future__ import annotations

from mpirecon.cli.train_cmd import check_training_outputs, shortcut_settings, train_and_report


def add_parser(sub) -> None:
    """Register the ``train-denoiser`` sub-command."""
    p = sub.add_parser("train-denoiser", help="train a PP-MPI RDN denoiser on the simulation's phantom prior "
                       "(= mpirecon train --method ppmpi --set grid=NX,NY)")
    p.add_argument("-o", "--output", required=True, help="denoiser weights file to write (use with --weights for ppmpi)")
    p.add_argument("--grid", type=int, nargs="+", default=(19, 19), metavar="N",
                   help="training image size NX NY, or NX NY NZ for a 3D (volume) denoiser on the 3D phantom "
                   "prior (the denoiser is fully convolutional; use your system matrix's grid)")
    p.add_argument("--samples", type=int, default=20000, help="training images")
    p.add_argument("--epochs", type=int, default=10, help="epochs")
    p.add_argument("--batch-size", type=int, default=64, help="batch size")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--noise-std", type=float, default=0.1, help="Gaussian noise std on images scaled to max 1")
    p.add_argument("--noise-range", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                   help="train a noise-aware denoiser (noise std as an input map) on stds log-uniform in [LO, HI]")
    p.add_argument("--families", nargs="+", default=None, help="phantom families of the prior (None: the training families)")
    p.add_argument("--seed", type=int, default=0, help="seed")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--overwrite", action="store_true", help="replace an existing weights file")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def run(args) -> int:
    """Train the ppmpi denoiser for ``args.grid`` into ``args.output``."""
    if len(args.grid) not in (2, 3):
        from mpirecon.errors import UsageError
        raise UsageError(f"--grid {' '.join(map(str, args.grid))}: expected NX NY or NX NY NZ")
    check_training_outputs(args.output, (), overwrite=args.overwrite)
    settings = shortcut_settings(args, ["--grid", "--samples", "--epochs", "--batch-size", "--lr", "--noise-std",
                                        "--noise-range", "--families", "--seed", "--device"])
    return train_and_report("ppmpi", None, args.output, settings, quiet=args.quiet)
