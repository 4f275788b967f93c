"""``mpirecon train --method NAME``: train a learned method's weights through the registry
(``Reconstructor.train``; the plugin validates its own settings)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from mpirecon.io.outputs import check_outputs
from mpirecon.preprocess.selection import DEFAULT_SNR_THRESHOLD
from mpirecon.cli.common import parse_params

#: (option, type, help) of the shortcuts for ``--set KEY=VALUE`` (KEY = option with '_' for '-')
SHORTCUTS = (("--samples", int, "training samples"), ("--val-samples", int, "validation samples"),
             ("--epochs", int, "epochs"), ("--batch-size", int, "batch size"), ("--lr", float, "learning rate"),
             ("--snr-min", float, "lowest training SNR (dB)"), ("--snr-max", float, "highest training SNR (dB)"),
             ("--max-minutes", float, "wall-time budget"), ("--seed", int, "seed"),
             ("--device", str, "cpu, cuda or cuda:N"))


def add_parser(sub) -> None:
    """Register the ``train`` sub-command."""
    p = sub.add_parser("train", help="train a learned method (default dernet) on simulated data for a system matrix")
    p.add_argument("--method", default="dernet", help="trainable method (see `mpirecon methods NAME`)")
    p.add_argument("--sm", required=True, help="calibration file")
    p.add_argument("-o", "--output", required=True, help="weights file to write")
    p.add_argument("--snr-threshold", type=float, default=DEFAULT_SNR_THRESHOLD,
                   help="train on the system-matrix rows with SNR above this")
    for option, kind, text in SHORTCUTS:
        p.add_argument(option, type=kind, default=None, help=f"{text}: shortcut for --set (None: the method's recipe)")
    p.add_argument("--families", nargs="+", default=None, help="phantom families of the training prior "
                   "(None: the method's recipe)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="settings",
                   help="any training setting of the method (`mpirecon methods NAME` lists them), repeatable")
    p.add_argument("--slice", default=None, metavar="AXIS=INDEX",
                   help="train on one voxel slice of a 3D calibration, e.g. z=9 (0-based)")
    p.add_argument("--resume", default=None, help="checkpoint (OUTPUT.ckpt) to continue from")
    p.add_argument("--overwrite", action="store_true", help="replace an existing weights file")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def shortcut_settings(args, options) -> dict:
    """The settings given by shortcut options (those not None), keyed by field name."""
    out = {}
    for option in options:
        key = option.lstrip("-").replace("-", "_")
        value = getattr(args, key, None)
        if value is not None:
            out[key] = tuple(value) if isinstance(value, list) else value
    return out


def train_and_report(method: str, system_matrix, output, settings: dict, *, resume=None, quiet=False) -> int:
    """Train ``method`` through the registry and print its JSON summary; one-line errors for a
    method that is not trainable, settings it does not accept or a device it cannot use.
    ``system_matrix``: a SystemMatrix, None, or a callable returning one (called after the
    settings are validated)."""
    from mpirecon.reconstructor import ReconstructorError, check_device
    from mpirecon.registry import get_reconstructor_class

    cls = get_reconstructor_class(method)
    if not cls.capabilities.trainable:
        raise ReconstructorError(f"method '{method}' is not trainable (see `mpirecon methods {method}`)")
    if cls.TrainSettings is not None:
        checked = cls.train_settings(settings)  # fail before any slow work
        if isinstance(getattr(checked, "device", None), str):
            check_device(cls.name, checked.device, cls.capabilities.supports_gpu)
    if callable(system_matrix):
        system_matrix = system_matrix()
    summary = cls.train(system_matrix, output, settings, resume=resume, progress=not quiet)
    print(json.dumps(summary))
    return 0


def check_training_outputs(output, inputs, *, resume=None, overwrite: bool = False) -> None:
    """Check the weights file ``output`` and its checkpoint ``output + '.ckpt'`` (both written
    during training): new unless ``overwrite``, never an input; resuming from that very
    checkpoint continues the same output (both may exist)."""
    ckpt = str(output) + ".ckpt"
    own = resume is not None and Path(resume).resolve() == Path(ckpt).resolve()
    outputs = {"-o": output} if own else {"-o": output, "checkpoint": ckpt}
    check_outputs(outputs, tuple(inputs) + (None if own else resume,), overwrite=overwrite or own)


def run(args) -> int:
    """Train ``args.method`` for ``args.sm`` into ``args.output``."""
    from mpirecon.io.loading import load_system_matrix

    check_training_outputs(args.output, (args.sm,), resume=args.resume, overwrite=args.overwrite)
    settings = shortcut_settings(args, [o for o, _, _ in SHORTCUTS] + ["--families"])
    settings.update(parse_params(args.settings, "--set"))

    def system_matrix():
        sm = load_system_matrix(args.sm, snr_threshold=args.snr_threshold, slice=args.slice)
        print(f"training {args.method} for {args.sm}: {sm.num_rows} rows, grid {sm.grid}", file=sys.stderr)
        return sm

    return train_and_report(args.method, system_matrix, args.output, settings, resume=args.resume, quiet=args.quiet)
