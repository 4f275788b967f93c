"""``mpirecon export REC.mdf -o OUT``: PNG per frame, GIF/MP4 movie or NIfTI (format from OUT's extension)."""
from __future__ import annotations

from mpirecon.cli.common import refuse_input_as_output


def add_parser(sub) -> None:
    """Register the ``export`` sub-command."""
    p = sub.add_parser("export", help="export a reconstruction: .png (one per frame), .gif/.mp4 movie, .nii/.nii.gz")
    p.add_argument("reconstruction", help="MDF file with /reconstruction (from `mpirecon run`)")
    p.add_argument("-o", "--output", required=True,
                   help="OUT.png (writes OUT_0000.png, ...), OUT.gif, OUT.mp4 (needs ffmpeg), OUT.nii or OUT.nii.gz")
    p.add_argument("--fps", type=float, default=None, help="movie frames per second (None: 5)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")


def run(args) -> int:
    """Export ``args.reconstruction`` to ``args.output``."""
    from mdf_io import read_reconstruction
    from mpirecon.viz.export import export, output_format

    output_format(args.output)  # refuse an unknown extension before reading
    refuse_input_as_output(args.output, args.reconstruction)
    rec = read_reconstruction(args.reconstruction)
    paths = export(rec, args.output, fps=args.fps, overwrite=args.overwrite)
    shown = f"{paths[0]} .. {paths[-1]}" if len(paths) > 1 else str(paths[0])
    print(f"wrote {shown} ({rec.images.shape[0]} frame(s))")
    return 0
