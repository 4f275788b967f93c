"""Figures (PNG) written atomically (:func:`mdf_io.atomic.atomic_output`) with matplotlib's Agg
backend. Every function refuses an existing file unless ``overwrite=True``."""
from __future__ import annotations

import numpy as np

from mdf_io.atomic import atomic_output


def _pyplot():
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, path, *, overwrite: bool = False, format: str = "png") -> None:
    """Save ``fig`` as ``format`` (whatever ``path``'s suffix) to ``path`` atomically, then close
    it. Raises :class:`mdf_io.MDFWriteError` if ``path`` exists and ``overwrite`` is False, or
    if its folder is missing."""
    try:
        with atomic_output(path, overwrite=overwrite) as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight", format=format)
    finally:
        _pyplot().close(fig)


def image_png(path, image: np.ndarray, *, title: str = "", fov=None, label: str = "concentration (a.u.)",
              overwrite: bool = False) -> None:
    """One image (Ny, Nx) with colour bar; axes in mm when ``fov`` (m) is given; y up."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.6, 4))
    extent = None
    if fov is not None and np.all(np.asarray(fov)[:2] > 0):
        fx, fy = 1e3 * np.asarray(fov)[:2]
        extent = (-fx / 2, fx / 2, -fy / 2, fy / 2)
        ax.set_xlabel("x (mm)")
        ax.set_ylabel("y (mm)")
    im = ax.imshow(image, origin="lower", cmap="gray", extent=extent)
    fig.colorbar(im, ax=ax, label=label)
    ax.set_title(title)
    save_figure(fig, path, overwrite=overwrite)


def comparison_grid(path, truths: np.ndarray, rows: dict, *, row_titles=None, psnrs: dict | None = None,
                    error_maps: bool = True, overwrite: bool = False) -> None:
    """Grid of reconstructions: one column per phantom, one row per method (plus error maps),
    like the DERnet paper's figure 3. ``rows`` maps method -> images (n, Ny, Nx)."""
    plt = _pyplot()
    n = truths.shape[0]
    methods = list(rows)
    nrows = 1 + len(methods) * (2 if error_maps else 1)
    fig, axes = plt.subplots(nrows, n, figsize=(1.9 * n + 1, 1.9 * nrows), squeeze=False)
    for j in range(n):
        vmax = float(truths[j].max()) or 1.0
        axes[0, j].imshow(truths[j], origin="lower", cmap="gray", vmin=0, vmax=vmax)
        axes[0, j].set_title((row_titles[j] if row_titles else f"#{j}"), fontsize=8)
        r = 1
        for m in methods:
            img = rows[m][j]
            axes[r, j].imshow(img, origin="lower", cmap="gray", vmin=0, vmax=vmax)
            if psnrs is not None:
                axes[r, j].set_title(f"{psnrs[m][j]:.1f} dB", fontsize=7)
            r += 1
            if error_maps:
                axes[r, j].imshow(np.abs(img - truths[j]), origin="lower", cmap="magma", vmin=0, vmax=0.5 * vmax)
                r += 1
    labels = ["truth"] + [x for m in methods for x in ((m, f"|err| {m}") if error_maps else (m,))]
    for i, lab in enumerate(labels):
        axes[i, 0].set_ylabel(lab, fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    save_figure(fig, path, overwrite=overwrite)


def line_plot(path, x, series: dict, *, xlabel: str, ylabel: str, title: str = "",
              overwrite: bool = False) -> None:
    """Lines ``series[name] = (mean, std)`` over ``x`` with error bars."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for name, (mean, std) in series.items():
        ax.errorbar(x, mean, yerr=std, marker="o", capsize=3, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, path, overwrite=overwrite)

