"""Human-readable summary of an MDF file (used by ``mpirecon info``)."""
from __future__ import annotations

import numpy as np

from .errors import reading
from .file import MDFFile
from .reconstruction import read_reconstruction


def describe(path) -> str:
    """Multi-line description: kind, grid, FOV, frequencies, channels, frames, SNR range."""
    with reading(path), MDFFile(path) as mdf:
        kind = mdf.kind
        h = mdf.header
        lines = [f"file:        {path}", f"kind:        {kind}",
                 f"version:     {h.general.version}   uuid: {h.general.uuid}",
                 f"experiment:  {h.experiment.name!r} (simulation: {h.experiment.is_simulation})"]
        if kind == "reconstruction":
            rec = read_reconstruction(mdf)
            lines += [f"method:      {rec.method or '-'}",
                      f"grid:        {tuple(rec.grid)} voxels (x, y, z)",
                      f"FOV:         {_mm(rec.fov)} mm, centre {_mm(rec.center)} mm",
                      f"frames:      {rec.images.shape[0]}",
                      f"value range: {float(rec.images.min()):.4g} .. {float(rec.images.max()):.4g}"]
            return "\n".join(lines + _provenance_lines(rec.parameters))
        lay = mdf.layout
        rx = h.acquisition.receiver
        n, j, c, _ = lay.shape
        k_avail = mdf.available_frequency_indices
        freqs = mdf.frequencies[k_avail]
        nbg = int(lay.is_background_frame.sum())
        if h.calibration is not None and kind == "calibration":
            cal = h.calibration
            lines += [f"grid:        {tuple(cal.size)} voxels (x, y, z), order {cal.order}, method {cal.method}",
                      f"FOV:         {_mm(cal.field_of_view)} mm, centre {_mm(cal.field_of_view_center)} mm"]
        lines += [f"domain:      {'frequency' if lay.fourier else 'time'}"
                  f"{' (frames last)' if lay.fast_frame_axis else ''}",
                  f"receiver:    {c} channel(s), {rx.num_sampling_points} samples/period, "
                  f"bandwidth {rx.bandwidth / 1e3:.4g} kHz",
                  f"frequencies: {k_avail.size} stored of {mdf.num_frequencies_full}, "
                  f"{freqs.min() / 1e3:.4g} .. {freqs.max() / 1e3:.4g} kHz",
                  f"frames:      {n} ({n - nbg} foreground, {nbg} background), {j} period(s) each",
                  f"background:  {'corrected' if lay.background_corrected else 'not corrected'}"]
        if lay.compression is not None:
            lines += [f"compression: {lay.compression.transformation}, {lay.compression.num_coefficients} of "
                      f"{n - nbg} coefficients per row (sparsity transformed)"]
        snr = mdf.snr()
        fin = None if snr is None else snr[np.isfinite(snr)]
        if fin is not None and fin.size:
            lines.append(f"SNR:         {fin.min():.3g} .. {fin.max():.3g} "
                         f"({int(np.sum(snr > 1.5))} rows > 1.5 of {snr.size})")
        return "\n".join(lines)


#: keys of a reconstruction's ``_parameters`` that are provenance, not method parameters
_RECORD_KEYS = ("selection", "noise", "inputs", "frames", "measurement", "system_matrix", "weights", "memory", "plan",
                "versions")


def _pairs(d: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(d.items()) if v is not None) or "-"


def _provenance_lines(params: dict) -> list:
    """Lines for the method parameters, row selection, frame selection, noise and input files
    recorded in ``/reconstruction/_parameters``."""
    method = {k: v for k, v in params.items() if k not in _RECORD_KEYS}
    lines = [f"parameters:  {_pairs(method)}"]
    sel = params.get("selection")
    if isinstance(sel, dict):
        lines.append(f"selection:   {_pairs(sel)}")
    frames = params.get("frames")
    if isinstance(frames, dict):
        lines.append(f"frames:      {_pairs({k: v for k, v in frames.items() if k != 'frame_indices'})}")
    if isinstance(params.get("noise"), dict):
        lines.append(f"noise:       {_pairs(params['noise'])}")
    inputs = params.get("inputs")
    if isinstance(inputs, dict):
        for role, ident in inputs.items():
            if isinstance(ident, dict):
                tag = f"uuid {ident['uuid']}" if "uuid" in ident else f"sha256 {str(ident.get('sha256', '?'))[:16]}"
                lines.append(f"input:       {role}: {ident.get('path')} ({tag})")
    else:
        lines += [f"input:       {k}: {params[k]}" for k in ("measurement", "system_matrix", "weights") if k in params]
    if isinstance(params.get("memory"), dict):
        mem = params["memory"]
        lines.append(f"memory:      precision {mem.get('precision')} ({mem.get('precision_source')}), strategy "
                     f"{mem.get('strategy')}, estimate {mem.get('estimate_bytes', 0) / 1e6:.0f} MB, peak "
                     f"{mem.get('peak_bytes', 0) / 1e6:.0f} MB")
    if isinstance(params.get("versions"), dict):
        lines.append(f"versions:    {_pairs(params['versions'])}")
    if isinstance(params.get("plan"), dict):
        lines.append("plan:        recorded (`mpirecon rerun FILE -o NEW` repeats it)")
    return lines


def _mm(v) -> str:
    return " x ".join(f"{1e3 * float(x):.4g}" for x in np.asarray(v).ravel())
