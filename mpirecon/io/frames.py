"""Frame selection by index, Python style, and block averaging (MPIReco's ``nAverages``).

A frame specification is text such as ``"5"``, ``"0:100"`` (stop exclusive), ``"0:100:2"``,
``"-1"`` (the last frame) or several of these separated by commas (``"0:10,20,-1"``); it may
also be an int or a sequence of ints. Indices are 0-based and count the frames of one kind
(foreground or background) in acquisition order.
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np

from mpirecon.errors import UsageError

FrameSpec = Union[None, str, int, Sequence[int], np.ndarray]


class FrameSelectionError(UsageError):
    """A frame specification that cannot be parsed or points outside the available frames
    (a :class:`~mpirecon.errors.UsageError`: exit status 2 on the command line)."""


def _int(text: str, spec: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise FrameSelectionError(f"{what} '{spec}': expected integers, ranges START:STOP[:STEP] separated by "
                                  f"commas, found '{text}'") from None


def _check(index: int, count: int, spec, what: str) -> int:
    if not -count <= index < count:
        raise FrameSelectionError(f"{what} '{spec}': frame {index} out of range; expected indices in "
                                  f"{-count}..{count - 1} ({count} frame(s) available)")
    return index % count


def parse_frames(spec: FrameSpec, count: int, what: str = "--frames", source=None) -> Optional[np.ndarray]:
    """Resolve ``spec`` against ``count`` available frames.

    Args:
        spec: None (all frames), text (see module docstring), an int or a sequence of ints.
        count: number of frames available (foreground or background).
        what: name used in error messages (the option, e.g. ``--background-frames``).
        source: the file the frames belong to, named first in error messages.
    Returns:
        int64 array (n,) of non-negative frame indices in the given order (duplicates kept),
        or None when ``spec`` is None.
    Raises:
        FrameSelectionError: one line naming ``what``, the expected form/range and what was found.
    """
    if spec is None:
        return None
    if source is not None:  # a file's frames: name the file and the field they index
        what = f"{source}: field '/measurement/data' ({what})"
    if isinstance(spec, (int, np.integer)):
        return np.array([_check(int(spec), count, spec, what)], np.int64)
    if not isinstance(spec, str):
        items = [int(v) for v in np.asarray(spec).ravel()]
        if not items:
            raise FrameSelectionError(f"{what}: expected at least one frame, found none")
        return np.array([_check(v, count, spec, what) for v in items], np.int64)
    out: list[int] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            raise FrameSelectionError(f"{what} '{spec}': empty item between commas")
        if ":" not in part:
            out.append(_check(_int(part, spec, what), count, spec, what))
            continue
        fields = part.split(":")
        if len(fields) > 3:
            raise FrameSelectionError(f"{what} '{spec}': expected START:STOP[:STEP], found '{part}'")
        start, stop, step = (_int(f, spec, what) if f.strip() else None for f in fields + [""] * (3 - len(fields)))
        if step == 0:
            raise FrameSelectionError(f"{what} '{spec}': step must not be 0 in '{part}'")
        for bound in (start, stop):
            if bound is not None and not -count <= bound <= count:
                raise FrameSelectionError(f"{what} '{spec}': bound {bound} out of range; expected "
                                          f"{-count}..{count} ({count} frame(s) available)")
        chosen = range(count)[slice(start, stop, step)]
        if len(chosen) == 0:
            raise FrameSelectionError(f"{what} '{spec}': range '{part}' selects no frame of {count}")
        out.extend(chosen)
    return np.array(out, np.int64)


def average_blocks(data: np.ndarray, block: int, frame_indices: np.ndarray, what: str = "--average-blocks"):
    """Average consecutive blocks of ``block`` frames (MPIReco's ``nAverages``).

    Args:
        data: (n, R) spectra of the selected frames, in selection order.
        block: frames per block, >= 1; ``n`` must be a multiple of it.
        frame_indices: (n,) acquisition frame number of each row of ``data``.
    Returns:
        (data (n // block, R), frame indices (n // block,): the first frame of each block).
    """
    n = data.shape[0]
    if block < 1 or n % block:
        raise FrameSelectionError(f"{what} {block}: expected a divisor of the {n} selected frame(s) (>= 1), "
                                  f"found {block}")
    averaged = data.reshape(n // block, block, *data.shape[1:]).mean(axis=1)
    return averaged, np.asarray(frame_indices)[::block]
