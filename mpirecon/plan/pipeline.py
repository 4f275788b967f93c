"""The one reconstruction pipeline: file -> selection -> operator -> solver -> result file.

:func:`run_plan` runs a :class:`~mpirecon.plan.model.ReconstructionPlan`: check the outputs, know
the method's memory from the headers, read and prepare the calibration (cached, :mod:`.cache`),
then read, preprocess, reconstruct and write the frames block by block (memory of one block; the
output appears complete or not at all). ``mpirecon run`` and ``mpirecon rerun`` are this function.
"""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from mpirecon.errors import UsageError
from mpirecon.plan.steps import (RowWeighting, check_scanner_settings, given_transfer_function,
                                 measurement_is_corrected, provenance, transfer_corrected_calibration,
                                 transfer_corrected_measurement)

#: reconstructed frames per block when the plan does not say (and the budget allows)
DEFAULT_BLOCK_FRAMES = 1000
#: share of the memory budget the frames of one block may take
BLOCK_BUDGET_SHARE = 0.1


@dataclass
class Prepared:
    """The bound method and what the pipeline knows before the frames are read."""

    recon: object
    target: object          # the method's SystemMatrix, or the weights' Geometry
    fov: np.ndarray
    memory: dict            # the memory plan (empty without a calibration)
    weighting: Optional[RowWeighting] = None


@dataclass
class PlanResult:
    """What :func:`run_plan` returns: the reconstruction (``images`` (F, *image_shape*) kept unless
    streamed to a file in several blocks), where it was written, and the timings (s)."""

    plan: object
    reconstruction: object
    images: Optional[np.ndarray]
    output: Optional[Path]
    frames: int
    setup_s: float
    first_s: float
    per_frame_s: Optional[float]
    memory: dict

    def timing_line(self) -> str:
        """Set-up (reading + binding) and solve time per frame (warm-up apart), for people."""
        text = (f"set-up {self.setup_s:.2f} s (reading, selection, method set-up); "
                f"first frame {1e3 * self.first_s:.2f} ms (warm-up)")
        if self.per_frame_s is not None:
            text += f"; solve {1e3 * self.per_frame_s:.3f} ms/frame over the other {self.frames - 1} frame(s)"
        return text


def run_plan(plan, *, cache=None, progress: bool = False, log: Optional[Callable[[str], None]] = None,
             keep_images: Optional[bool] = None) -> PlanResult:
    """Run ``plan`` (see module docstring).

    Args:
        cache: a :class:`~mpirecon.plan.cache.PlanCache` shared between runs (None: a fresh one).
        progress: a progress bar over the blocks on stderr.
        log: called with one line per step (None: silent).
        keep_images: return the images (default: when there is no output file or one block).
    Returns:
        :class:`PlanResult`.
    """
    from mpirecon.io.outputs import check_outputs, check_space
    from mpirecon.registry import get_reconstructor_class
    from mpirecon.plan.cache import PlanCache

    log = log or (lambda line: None)
    cache = PlanCache() if cache is None else cache
    out = plan.output
    if out.png and not out.path:
        raise UsageError("output.png: a PNG is written beside the result file; set output.path (-o) too")
    ins = plan.inputs
    outputs = check_outputs({"-o": out.path, "--png": out.png},
                            (ins.measurement, ins.calibration, ins.background, ins.weights, ins.transfer_function),
                            overwrite=out.overwrite)
    t0 = time.perf_counter()
    cls = get_reconstructor_class(plan.method.name)
    check_method(plan, cls)
    blocks = frame_blocks(plan)
    total = sum(len(b) for b in blocks) // (plan.frames.average_blocks or 1) if not plan.frames.average else 1
    if outputs and ins.calibration is not None:  # the images' size, before the calibration is read
        check_space(outputs["-o"], total * calibration_voxels(ins.calibration) * 8 + 2 ** 20)
    prepared = prepare(plan, cls, cache, block_frames(plan, blocks), log)
    if prepared.memory and prepared.memory["frames"] < block_frames(plan, blocks):  # a smaller block fits
        blocks = frame_blocks(plan, prepared.memory["frames"])
    keep = keep_images if keep_images is not None else (not outputs or len(blocks) == 1 or plan.frames.average)
    log(f"reconstructing {total} frame(s) with {cls.name}" + (f" in {len(blocks)} blocks" if len(blocks) > 1 else ""))
    with _FrameWriter(outputs, total, prepared.target.grid, out.overwrite, cls.name, prepared.fov) as writer:
        state = _solve_blocks(plan, prepared, blocks, writer, keep, progress, t0, log)
        rec = state.reconstruction
        rec.parameters.update(provenance(plan, prepared.recon, state.frame_indices, state.header))
        if prepared.memory:
            from mpirecon.memory import process_peak_bytes
            rec.parameters["memory"] = dict(prepared.memory, peak_bytes=process_peak_bytes())
        writer.finish(rec)
    return PlanResult(plan, rec, state.images, outputs.get("-o"), total, state.setup_s, state.first_s,
                      state.per_frame_s, rec.parameters.get("memory", {}))


def frame_blocks(plan, size: Optional[int] = None) -> list[np.ndarray]:
    """The foreground frames of the plan's measurement, in blocks read and reconstructed together
    (each a multiple of ``average_blocks``; ``size`` reconstructed frames each, default the plan's
    ``block_size`` or :data:`DEFAULT_BLOCK_FRAMES`); from the header alone."""
    from mdf_io import MDFFile, MDFFormatError
    from mpirecon.io.frames import FrameSelectionError, parse_frames

    path, f = plan.inputs.measurement, plan.frames
    with MDFFile(path) as mdf:
        is_bg = mdf.layout.is_background_frame
        count = int((~is_bg).sum())
    if count == 0:
        raise MDFFormatError(path, "/measurement/isBackgroundFrame", "at least one foreground frame",
                             "only background frames (nothing to reconstruct)")
    chosen = parse_frames(f.frames, count, "--frames (foreground frames)", path)
    frames = np.arange(count) if chosen is None else chosen
    group = 1 if f.average else (f.average_blocks or 1)
    if len(frames) % group:
        raise FrameSelectionError(f"{path}: --average-blocks {group}: expected a divisor of the {len(frames)} "
                                  f"selected frame(s) (>= 1), found {group}")
    size = (size or f.block_size or DEFAULT_BLOCK_FRAMES) * group
    return [frames[i:i + size] for i in range(0, len(frames), size)]


def block_frames(plan, blocks) -> int:
    """Reconstructed frames in the largest block (what the method holds at once)."""
    return 1 if plan.frames.average else max(len(b) for b in blocks) // (plan.frames.average_blocks or 1)


def prepare(plan, cls, cache, frames_at_once: int, log) -> Prepared:
    """The method with its parameters, bound to the plan's prepared calibration (through ``cache``),
    in the working precision that fits the memory budget; without a calibration, the geometry its
    weights carry."""
    from mpirecon.preprocess.selection import DEFAULT_SNR_THRESHOLD

    ins, params = plan.inputs, dict(plan.method.parameters)
    recon = cache.prototype(cls, ins.weights, params)
    if ins.calibration is None:
        if cls.capabilities.needs_system_matrix or recon.geometry is None:
            raise UsageError(f"--sm: method '{cls.name}' needs the system matrix (calibration file)")
        log(f"using the geometry stored in {ins.weights} ({recon.geometry.num_rows} rows, grid {recon.geometry.grid})")
        return Prepared(recon, recon.geometry, np.asarray(recon.geometry.fov), {})
    sel = plan.selection
    threshold = sel.snr_threshold
    if threshold is None:
        trained = recon.geometry.selection if recon.geometry is not None else {}
        threshold = trained.get("snr_threshold", DEFAULT_SNR_THRESHOLD)
    recon, memory = planned_precision(plan, cls, recon, params, threshold, frames_at_once, log)
    dtype = np.dtype(memory["matrix_dtype"])
    corrected = measurement_is_corrected(plan)
    from mpirecon.plan.cache import file_key
    key = (file_key(ins.calibration), threshold, sel.min_frequency, sel.max_frequency,
           None if sel.channels is None else tuple(sel.channels), sel.num_used_freqs, sel.slice, np.dtype(dtype).name,
           plan.preprocessing.transfer_correction, corrected and plan.preprocessing.transfer_correction == "auto",
           None if ins.transfer_function is None else file_key(ins.transfer_function), plan.preprocessing.row_weighting)

    def load():
        from mpirecon.io.loading import load_system_matrix
        log(f"reading system matrix {ins.calibration} (SNR > {threshold})")
        sm = load_system_matrix(ins.calibration, snr_threshold=threshold, min_frequency=sel.min_frequency,
                                max_frequency=sel.max_frequency, receive_channels=sel.channels,
                                num_used_freqs=sel.num_used_freqs, slice=sel.slice, progress=True, dtype=dtype)
        log(f"  {sm.num_rows} of {sm.selection.get('num_rows_total')} rows kept, grid {sm.grid}")
        sm = transfer_corrected_calibration(plan, sm, corrected, log)
        weighting = RowWeighting(plan.preprocessing.row_weighting)
        return weighting.weighted(sm), weighting, np.asarray(sm.fov)

    sm, weighting, fov = cache.matrix(key, load)
    recon = cache.bound(key, recon, sm)
    return Prepared(recon, recon.system_matrix, fov, memory, weighting)


def check_method(plan, cls) -> None:
    """Before any file is read: the method's parameters (device included) are valid; then, from the
    calibration's header, a method for 2D grids is not given a 3D one."""
    from mpirecon.reconstructor import check_device
    config = cls._validated(dict(plan.method.parameters))
    check_device(cls.name, config.device, cls.capabilities.supports_gpu)
    if plan.inputs.calibration is not None:
        check_dimensions(plan, cls)


def calibration_voxels(path) -> int:
    """Voxels of a calibration's grid (header only)."""
    from mdf_io import MDFFile
    with MDFFile(path) as mdf:
        return int(np.prod([int(n) for n in mdf.header.calibration.size]))


def check_dimensions(plan, cls) -> None:
    """Refuse a 3D grid (after ``selection.slice``) for a method that reconstructs 2D grids only:
    one line naming the method, the grid and the way out, before anything is read."""
    from mdf_io import MDFFile
    if cls.capabilities.supports_3d:
        return
    with MDFFile(plan.inputs.calibration) as mdf:
        grid = [int(n) for n in mdf.header.calibration.size]
    if plan.selection.slice is not None:
        from mpirecon.io.loading import parse_slice
        grid["xyz".index(parse_slice(plan.selection.slice)[0])] = 1
    if sum(n > 1 for n in grid) == 3:
        raise UsageError(f"{plan.inputs.calibration}: method '{cls.name}' reconstructs 2D grids only, the calibration "
                         f"grid is {tuple(grid)}; take one slice (--slice z=K) or a method for 3D grids "
                         "(see `mpirecon methods`)")


def planned_precision(plan, cls, recon, params: dict, threshold: float, frames: int, log):
    """(the method in the working precision that fits the memory budget, the memory plan as a dict):
    the method's estimate for the selected rows, voxels and the frames of one block, known before the
    matrix is read (:mod:`mpirecon.memory`); a one-line MemoryBudgetError when nothing fits."""
    from mpirecon.io.loading import selected_problem_size
    from mpirecon.memory import MemoryBudgetError, budget_from, format_bytes, plan_precision

    try:
        budget, source = budget_from(plan.method.memory_limit)
    except ValueError as exc:
        raise UsageError(f"--memory-limit: {exc}") from None
    sel = plan.selection
    rows, voxels = selected_problem_size(plan.inputs.calibration, threshold, sel.min_frequency, sel.max_frequency,
                                         sel.channels, sel.num_used_freqs, sel.slice)
    while True:  # without a block_size in the plan, halve the block until the method fits the budget
        try:
            est = plan_precision(cls, params, rows, voxels, frames, budget, source)
            break
        except MemoryBudgetError:
            if plan.frames.block_size is not None or frames == 1:
                raise
            frames = max(1, frames // 2)
    own = recon.config.dtype if "dtype" in cls.Config.model_fields else None
    if own is not None and own != est.precision:
        recon = recon.with_params(dtype=est.precision)
    chosen = "given" if "dtype" in params else ("the method's own" if est.precision == own else "lowered for the budget")
    # the calibration in complex128 (as load_system_matrix reads it: the same matrix, fingerprint and
    # images as the API) unless the budget lowered the precision or the extra half does not fit
    widening = rows * voxels * 8 if est.precision == "float32" else 0  # complex128 instead of complex64
    wide = not widening or (chosen != "lowered for the budget" and est.total + widening <= budget)
    total = est.total + (widening if wide else 0)
    read = f" + {format_bytes(widening)} to read the calibration in complex128" if wide and widening else ""
    log(f"memory: {cls.name} needs about {est.describe()}{read}; budget {format_bytes(budget)} ({source}); "
        f"precision {est.precision} ({chosen})")
    return recon, {"estimate_bytes": total, "budget_bytes": budget, "budget": source,
                   "precision": est.precision, "precision_source": chosen, "strategy": est.strategy,
                   "matrix_dtype": "complex128" if wide else "complex64",
                   "rows": rows, "voxels": voxels, "frames": frames}


@dataclass
class _Solved:
    reconstruction: object
    images: Optional[np.ndarray]
    frame_indices: np.ndarray
    header: object
    setup_s: float
    first_s: float
    per_frame_s: Optional[float]


def read_block(plan, target, frames: np.ndarray):
    """The measurement of one block of foreground ``frames``, matched to ``target``'s rows, averaged
    as the plan says (see :func:`mpirecon.io.loading.load_measurement_for`)."""
    from mpirecon.io.loading import load_measurement_for
    f = plan.frames
    return load_measurement_for(plan.inputs.measurement, target, frames=frames, average=f.average,
                                average_blocks=None if f.average else f.average_blocks,
                                background_frames=f.background_frames, subtract_background=f.subtract_background,
                                background=plan.inputs.background)


def averaged_measurement(plan, target, blocks):
    """``frames.average``: the mean of every selected frame, read block by block (memory of one block)."""
    total, meas = 0, None
    for frames in blocks:
        part = read_block(plan, target, frames)
        n = len(frames)
        meas = part if meas is None else replace(meas, data=(meas.data * total + part.data * n) / (total + n))
        total += n
    meas.frames_averaged = total
    if total > 1:
        meas.frame_indices = np.array([-1])
    return meas


def _solve_blocks(plan, prepared: Prepared, blocks, writer, keep: bool, progress: bool, t0: float, log) -> _Solved:
    from mpirecon.progress import Progress

    recon = prepared.recon
    reads = [None] if plan.frames.average else blocks
    kept, indices, first, first_s, rest_s, rest_n, header = [], [], None, 0.0, 0.0, 0, None
    transfer = functools.cache(lambda: given_transfer_function(plan))  # the file read once per run

    def quiet(line):  # later blocks repeat the first block's steps without saying so again
        pass
    setup_s = None
    with Progress(len(reads), "reconstructing (blocks)", enabled=progress and len(reads) > 1) as bar:
        for frames in reads:
            meas = (averaged_measurement(plan, prepared.target, blocks) if frames is None
                    else read_block(plan, prepared.target, frames))
            if header is None:
                check_scanner_settings(plan, meas, recon.system_matrix, log)
                header = meas.header
            meas = transfer_corrected_measurement(plan, meas, recon.system_matrix, log if first is None else quiet,
                                                  transfer)
            if prepared.weighting is not None:
                meas = prepared.weighting.applied(meas, recon.system_matrix)
            if first is None:
                setup_s = time.perf_counter() - t0
                first = recon.reconstruct(replace(meas, data=meas.data[:1], frame_indices=meas.frame_indices[:1]))
                first_s, images = first.seconds, [first.images]
                if meas.num_frames > 1:
                    rest = recon.reconstruct(replace(meas, data=meas.data[1:], frame_indices=meas.frame_indices[1:]))
                    rest_s, rest_n = rest_s + rest.seconds, rest_n + meas.num_frames - 1
                    images.append(rest.images)
                images = np.concatenate(images)
            else:
                result = recon.reconstruct(meas)
                rest_s, rest_n, images = rest_s + result.seconds, rest_n + meas.num_frames, result.images
            writer.write(first, meas.header, images)
            indices.append(np.asarray(meas.frame_indices).ravel())
            if keep:
                kept.append(images)
            bar.update(1)
    rec = first.to_reconstruction(header=header)
    rec.images = np.concatenate(kept) if keep else None
    return _Solved(rec, rec.images, np.concatenate(indices), header, setup_s, first_s,
                   rest_s / rest_n if rest_n else None)


class _FrameWriter:
    """The result file (and PNG) of a run, written block by block into temporary files that appear
    at their final names together when :meth:`finish` ran, and not at all otherwise."""

    def __init__(self, outputs: dict, frames: int, grid, overwrite: bool, title: str, fov):
        self.outputs, self.frames, self.grid, self.overwrite = outputs, frames, grid, overwrite
        self.title, self.fov = title, fov
        self.stream = self.first_image = self._ctx = self.tmp = None

    def __enter__(self):
        if self.outputs:
            from mpirecon.io.outputs import writing
            needs = self.frames * int(np.prod(self.grid)) * 8 + 2 ** 20 + (2 ** 20 if "--png" in self.outputs else 0)
            self._ctx = writing(list(self.outputs.values()), overwrite=self.overwrite, needs=needs)
            self.tmp = dict(zip(self.outputs, self._ctx.__enter__()))
        return self

    def write(self, first, header, images) -> None:
        """Append a block of images; the first block opens the result file with ``first``'s geometry."""
        if not self.outputs:
            return
        if self.stream is None:
            from mdf_io import ReconstructionStream
            rec = first.to_reconstruction(header=header)
            self.stream = ReconstructionStream(self.tmp["-o"], rec, self.frames)
            self.first_image = np.asarray(images[0])
        self.stream.write(images)

    def finish(self, rec) -> None:
        """Record the parameters, close the file and draw the PNG (inside the atomic block)."""
        if not self.outputs:
            return
        self.stream.close(rec.parameters)
        self.stream = None
        if "--png" in self.tmp:
            from mpirecon.viz.export import first_frame_png
            first_frame_png(self.tmp["--png"], rec, self.first_image, self.title, self.fov)

    def __exit__(self, *exc):
        if self.stream is not None:  # an error before finish: close the file so it can be removed
            self.stream._file.close()
        if self._ctx is not None:
            return self._ctx.__exit__(*exc)
        return False
