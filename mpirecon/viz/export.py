"""Export of an MDF reconstruction: PNG per frame, GIF or MP4 movie, NIfTI image.

Every format is chosen from the output's extension (:func:`export`). Pictures share one colour
scale over all frames, carry a colour bar with units, the frame number and, when the
reconstruction records its frame duration (``mpirecon run`` does), the time; a 3D frame is shown
as three orthogonal slices through its maximum plus a maximum-intensity projection, in mm. All
files are written through :func:`mdf_io.atomic_outputs` (complete or absent, user's umask).
"""
from __future__ import annotations

import copy
import gzip
from pathlib import Path
from typing import Optional

import numpy as np

from mpirecon.errors import UsageError

from mdf_io import Reconstruction, atomic_output, atomic_outputs

#: colour-bar label (MDF v2 stores no unit for reconstructed images)
UNIT_LABEL = "concentration (a.u.)"
FORMATS = (".png", ".gif", ".mp4", ".nii", ".nii.gz")


def output_format(path) -> str:
    """The format of ``path`` from its extension: one of :data:`FORMATS` (ValueError otherwise)."""
    name = str(path).lower()
    for ext in sorted(FORMATS, key=len, reverse=True):
        if name.endswith(ext):
            return ext
    raise UsageError(f"{path}: output format from the extension: expected one of {', '.join(FORMATS)}, "
                     f"found '{Path(path).suffix or 'no extension'}'")


def frame_times(rec: Reconstruction) -> list:
    """Time (s) of each frame from the recorded frame indices and frame duration, None where unknown
    (no record, or an average over all frames)."""
    frames = rec.parameters.get("frames") if isinstance(rec.parameters, dict) else None
    q = rec.images.shape[0]
    if not isinstance(frames, dict) or not frames.get("frame_duration_s"):
        return [None] * q
    idx = list(frames.get("frame_indices") or range(q))
    dur = float(frames["frame_duration_s"])
    return [idx[k] * dur if k < len(idx) and idx[k] >= 0 else None for k in range(q)]


def frame_labels(rec: Reconstruction) -> list:
    """Title of each frame: ``frame k`` (the acquisition frame when recorded) and its time."""
    frames = rec.parameters.get("frames") if isinstance(rec.parameters, dict) else None
    idx = list(frames.get("frame_indices", [])) if isinstance(frames, dict) else []
    out = []
    for k, t in enumerate(frame_times(rec)):
        n = idx[k] if k < len(idx) else k
        text = "average of frames" if n == -1 else f"frame {n}"
        out.append(text + (f", t = {1e3 * t:.3f} ms" if t is not None else ""))
    return out


def _extent(rec: Reconstruction, a: int, b: int):
    """imshow extent (mm) of axes a (horizontal) and b (vertical) of x, y, z; None without a FOV."""
    fov, ctr = 1e3 * np.asarray(rec.fov, float), 1e3 * np.asarray(rec.center, float)
    if fov[a] <= 0 or fov[b] <= 0:
        return None
    return (ctr[a] - fov[a] / 2, ctr[a] + fov[a] / 2, ctr[b] - fov[b] / 2, ctr[b] + fov[b] / 2)


def draw_frame(rec: Reconstruction, k: int, vmin: float, vmax: float, title: str):
    """A matplotlib figure of frame ``k``: the image (2D) or three slices through the maximum and
    a maximum-intensity projection along z (3D), axes in mm, shared colour scale [vmin, vmax]."""
    from mpirecon.viz.figures import _pyplot

    plt = _pyplot()
    img = np.asarray(rec.images[k], float)
    unit = "mm" if _extent(rec, 0, 1) is not None else "voxel"
    if img.ndim == 2:
        fig, ax = plt.subplots(figsize=(5, 4.2))
        panels = [(ax, img, 0, 1, "")]
    else:
        z, y, x = np.unravel_index(int(np.argmax(img)), img.shape)
        fig, axes = plt.subplots(1, 4, figsize=(16, 4.2), gridspec_kw={"wspace": 0.45})
        panels = [(axes[0], img[z], 0, 1, f"x-y slice at z index {z}"), (axes[1], img[:, y, :], 0, 2, f"x-z slice at y index {y}"),
                  (axes[2], img[:, :, x], 1, 2, f"y-z slice at x index {x}"), (axes[3], img.max(axis=0), 0, 1, "MIP along z")]
    for ax, data, a, b, label in panels:
        im = ax.imshow(data, origin="lower", cmap="gray", vmin=vmin, vmax=vmax, extent=_extent(rec, a, b))
        ax.set_xlabel(f"{'xyz'[a]} ({unit})")
        ax.set_ylabel(f"{'xyz'[b]} ({unit})")
        if label:
            ax.set_title(label, fontsize=9)
    fig.colorbar(im, ax=[p[0] for p in panels], label=UNIT_LABEL)
    fig.suptitle(title)
    return fig


def _scale(rec: Reconstruction) -> tuple[float, float]:
    lo, hi = float(np.min(rec.images)), float(np.max(rec.images))
    return lo, (hi if hi > lo else lo + 1.0)


def png_paths(output) -> list:
    """``OUT.png`` -> the pattern of per-frame names ``OUT_0000.png`` (a function of the frame)."""
    out = Path(output)
    stem = out.name[: -len(".png")] if out.name.lower().endswith(".png") else out.stem
    return lambda k: out.with_name(f"{stem}_{k:04d}.png")


def export_pngs(rec: Reconstruction, output, *, overwrite: bool = False) -> list:
    """One PNG per frame, ``OUT_0000.png``, ``OUT_0001.png``, ... (all or none written)."""
    from mpirecon.viz.figures import _pyplot

    name = png_paths(output)
    paths = [name(k) for k in range(rec.images.shape[0])]
    vmin, vmax = _scale(rec)
    with atomic_outputs(paths, overwrite=overwrite) as tmps:
        for k, (tmp, title) in enumerate(zip(tmps, frame_labels(rec))):
            fig = draw_frame(rec, k, vmin, vmax, title)
            fig.savefig(tmp, format="png", dpi=100)
            _pyplot().close(fig)
    return paths


def _rgb_frames(rec: Reconstruction) -> list:
    """Every frame rendered to an (H, W, 3) uint8 array of one size."""
    from mpirecon.viz.figures import _pyplot

    vmin, vmax = _scale(rec)
    out = []
    for k, title in enumerate(frame_labels(rec)):
        fig = draw_frame(rec, k, vmin, vmax, title)
        fig.set_dpi(100)
        fig.canvas.draw()
        out.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
        _pyplot().close(fig)
    return out


def _fps(rec: Reconstruction, fps: Optional[float]) -> float:
    return float(fps) if fps else 5.0


def export_gif(rec: Reconstruction, output, *, fps: Optional[float] = None, overwrite: bool = False) -> Path:
    """An animated GIF of all frames (Pillow), ``fps`` frames per second (default 5), looping."""
    from PIL import Image

    frames = [Image.fromarray(a) for a in _rgb_frames(rec)]
    with atomic_output(output, overwrite=overwrite) as tmp:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:],
                       duration=int(round(1000 / _fps(rec, fps))), loop=0)
    return Path(output)


def export_mp4(rec: Reconstruction, output, *, fps: Optional[float] = None, overwrite: bool = False) -> Path:
    """An MP4 movie through matplotlib's ffmpeg writer (ffmpeg on PATH, or the ``video`` extra's
    imageio-ffmpeg); ValueError (one line) without an encoder."""
    import matplotlib
    from matplotlib import animation

    try:  # the optional extra `pip install mpirecon[video]` brings its own ffmpeg binary
        import imageio_ffmpeg
        matplotlib.rcParams["animation.ffmpeg_path"] = imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        pass
    if not animation.writers.is_available("ffmpeg"):
        raise UsageError(f"{output}: MP4 export: expected an encoder (ffmpeg on PATH), found none; "
                         "write a .gif instead or install ffmpeg")
    from mpirecon.viz.figures import _pyplot

    plt = _pyplot()
    frames = _rgb_frames(rec)
    fig = plt.figure(figsize=(frames[0].shape[1] / 100, frames[0].shape[0] / 100), dpi=100)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.axis("off")
    shown = ax.imshow(frames[0])
    writer = animation.FFMpegWriter(fps=_fps(rec, fps), extra_args=["-f", "mp4", "-pix_fmt", "yuv420p"])
    with atomic_output(output, overwrite=overwrite) as tmp:
        with writer.saving(fig, str(tmp), dpi=100):
            for a in frames:
                shown.set_data(a)
                writer.grab_frame()
    plt.close(fig)
    return Path(output)


def nifti_affine(rec: Reconstruction) -> np.ndarray:
    """(4, 4) voxel -> scanner mm: diag(voxel size) and voxel (0,0,0) at centre - FOV/2 + voxel/2.
    An axis without FOV gets 1 mm voxels centred at the recorded centre."""
    grid = np.asarray(rec.grid, float)
    fov, ctr = 1e3 * np.asarray(rec.fov, float), 1e3 * np.asarray(rec.center, float)
    voxel = np.where(fov > 0, fov / grid, 1.0)
    fov = np.where(fov > 0, fov, voxel * grid)
    affine = np.diag(np.append(voxel, 1.0))
    affine[:3, 3] = ctr - fov / 2 + voxel / 2
    return affine


def nifti_data(rec: Reconstruction) -> np.ndarray:
    """Images (Q, [Nz,] Ny, Nx) as a float32 array (Nx, Ny, Nz, Q): scanner axes x, y, z, then frames."""
    q = rec.images.shape[0]
    nx, ny, nz = (int(v) for v in rec.grid)
    return np.asarray(rec.images, np.float32).reshape(q, nz, ny, nx).transpose(3, 2, 1, 0)


def export_nifti(rec: Reconstruction, output, *, overwrite: bool = False) -> Path:
    """A NIfTI-1 image (``.nii`` or gzip-compressed ``.nii.gz``) with :func:`nifti_affine`, units
    mm and s (the frame duration as the 4th voxel size when recorded)."""
    import nibabel as nib

    img = nib.Nifti1Image(nifti_data(rec), nifti_affine(rec))
    img.header.set_xyzt_units("mm", "sec")
    frames = rec.parameters.get("frames") if isinstance(rec.parameters, dict) else None
    if isinstance(frames, dict) and frames.get("frame_duration_s"):
        zooms = list(img.header.get_zooms())
        zooms[3] = float(frames["frame_duration_s"]) * max(int(frames.get("average_blocks") or 1), 1)
        img.header.set_zooms(zooms)
    data = img.to_bytes()
    if str(output).lower().endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    with atomic_output(output, overwrite=overwrite) as tmp:
        Path(tmp).write_bytes(data)
    return Path(output)


def export(rec: Reconstruction, output, *, fps: Optional[float] = None, overwrite: bool = False) -> list:
    """Write ``rec`` in the format of ``output``'s extension (:data:`FORMATS`); returns the paths."""
    fmt = output_format(output)
    if fmt == ".png":
        return export_pngs(rec, output, overwrite=overwrite)
    if fmt == ".gif":
        return [export_gif(rec, output, fps=fps, overwrite=overwrite)]
    if fmt == ".mp4":
        return [export_mp4(rec, output, fps=fps, overwrite=overwrite)]
    return [export_nifti(rec, output, overwrite=overwrite)]


def first_frame_png(path, rec, image: np.ndarray, title: str, fov) -> None:
    """The PNG ``run -o ... --png`` writes: ``image`` (one frame of ``rec``; 2D as a picture with mm
    axes, 3D as three slices through the maximum + MIP, as ``export``)."""
    from mpirecon.viz.figures import image_png, save_figure
    image = np.asarray(image)
    if image.ndim == 3:
        lo, hi = float(image.min()), float(image.max())
        one = copy.copy(rec)
        one.images = image[None]
        save_figure(draw_frame(one, 0, lo, hi if hi > lo else lo + 1.0, title), path, overwrite=True)
    else:
        image_png(path, image, title=title, fov=fov, overwrite=True)
