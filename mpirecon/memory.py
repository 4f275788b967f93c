"""Memory known before work starts: the budget, per-method peak estimates and the working precision.

Every method estimates its peak for the problem in front of it (rows R, voxels P, frames F,
precision, strategy) through :meth:`mpirecon.reconstructor.Reconstructor.memory_estimate`,
from the numbers a calibration's header and SNR give before any matrix data are read.
:func:`plan_precision` compares the estimates with a budget (``--memory-limit``, default
:data:`BUDGET_FRACTION` of the memory this process may still use: the machine's available memory,
the address-space limit ``ulimit -v`` and a cgroup limit, whichever is smallest) and picks the
working precision: the method's own (float64 for classical methods) when it fits, else float32
(the calibration then read as complex64), else a one-line :class:`MemoryBudgetError` before anything is read.

Sizes are bytes; :func:`format_bytes` prints them in GB/MB (powers of 10^3 would mislead here:
GB = 2^30 bytes, as ``ulimit``, ``free -g`` and the budget count them).
"""
from __future__ import annotations

import re
import resource
from dataclasses import dataclass, field
from typing import Optional

from mpirecon.errors import ReconstructorError

#: share of the memory still available that a run may plan to use (the rest: Python, BLAS
#: workspaces, the page cache of the file being read, estimates' error)
BUDGET_FRACTION = 0.7
#: working precisions tried in order when the user did not choose one
PRECISIONS = ("float64", "float32")
#: strategies that approximate the operator (:mod:`mpirecon.physics.compression`): float64 buys them nothing but
#: twice the memory traffic, so float32 is tried first
APPROXIMATE_STRATEGIES = ("compressed",)
_UNITS = {"": 1, "b": 1, "k": 2 ** 10, "m": 2 ** 20, "g": 2 ** 30, "t": 2 ** 40}


class MemoryBudgetError(ReconstructorError):
    """A method's estimated peak exceeds the memory budget (raised before any work)."""


@dataclass
class MemoryEstimate:
    """Estimated peak of one method on one problem.

    parts: name -> bytes of what is alive at the peak (matrix, factorisations, frame arrays);
    precision: the working precision ("float32"/"float64"); strategy: the method's form
    ("dense", "large", ...).
    """

    parts: dict = field(default_factory=dict)
    precision: str = "float64"
    strategy: str = ""

    @property
    def total(self) -> int:
        """Bytes of all parts."""
        return int(sum(self.parts.values()))

    def describe(self) -> str:
        """``"4.1 GB (float32, large strategy: matrix 2.0 GB, gram 0.8 GB, ...)"``."""
        parts = ", ".join(f"{k} {format_bytes(v)}" for k, v in self.parts.items() if v >= 2 ** 20)
        return f"{format_bytes(self.total)} ({self.precision}, {self.strategy or 'default'} strategy: {parts})"


def parse_size(text) -> int:
    """Bytes of ``"4G"``, ``"500M"``, ``"4GB"``, ``"1.5g"``, ``"123456"`` (K/M/G/T = 2^10/20/30/40).
    :class:`ValueError` for anything else."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([kmgt]?)i?b?\s*", str(text).lower())
    if not match:
        raise ValueError(f"expected a size such as 4G, 500M or 2.5GB, found {text!r}")
    value = float(match.group(1)) * _UNITS[match.group(2)]
    if value <= 0:
        raise ValueError(f"expected a positive size, found {text!r}")
    return int(value)


def format_bytes(n: float) -> str:
    """``n`` bytes as GB (>= 1 GB) or MB."""
    return f"{n / 2 ** 30:.1f} GB" if n >= 2 ** 30 else f"{n / 2 ** 20:.0f} MB"


def _proc_kb(path: str, key: str) -> Optional[int]:
    """Bytes of a ``key:  N kB`` line of a /proc file, or None."""
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _meminfo(key: str) -> Optional[int]:
    return _proc_kb("/proc/meminfo", key)


def _self_status(key: str) -> int:
    return _proc_kb("/proc/self/status", key) or 0


def _cgroup_room() -> Optional[int]:
    """Bytes the cgroup (v2) still allows, or None without a limit."""
    try:
        limit = open("/sys/fs/cgroup/memory.max").read().strip()
        if limit == "max":
            return None
        used = int(open("/sys/fs/cgroup/memory.current").read().strip())
        return max(int(limit) - used, 0)
    except (OSError, ValueError):
        return None


def available_bytes() -> tuple[int, str]:
    """(bytes this process may still allocate, what limits it): the smallest of the machine's
    available memory (``MemAvailable``), the room left under the address-space limit (``ulimit
    -v``, minus the address space already mapped) and the room left in a cgroup limit."""
    options = []
    avail = _meminfo("MemAvailable")
    if avail is not None:
        options.append((avail, "available memory"))
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft not in (resource.RLIM_INFINITY, -1):
        options.append((max(soft - _self_status("VmSize"), 0), "address-space limit (ulimit -v)"))
    room = _cgroup_room()
    if room is not None:
        options.append((room, "cgroup memory limit"))
    if not options:
        return 8 * 2 ** 30, "assumed (no /proc/meminfo)"
    return min(options)


def default_budget() -> tuple[int, str]:
    """(:data:`BUDGET_FRACTION` of :func:`available_bytes`, a description of where it comes from)."""
    room, source = available_bytes()
    return int(BUDGET_FRACTION * room), f"{BUDGET_FRACTION:.0%} of the {format_bytes(room)} {source}"


def plan_precision(cls, params: dict, rows: int, voxels: int, frames: int,
                   budget: int, budget_source: str) -> MemoryEstimate:
    """The estimate of method ``cls`` (a Reconstructor class) with ``params`` for R=``rows``
    complex rows, P=``voxels`` and F=``frames``, in the first precision of :data:`PRECISIONS`, from the
    method's default on, that
    fits ``budget`` bytes (only ``params["dtype"]`` when given; float32 first when the method's
    strategy at float64 is one of :data:`APPROXIMATE_STRATEGIES`). Raises :class:`MemoryBudgetError`
    (one line: method, problem, estimate, budget) when none fits."""
    given = params.get("dtype")
    has_dtype = "dtype" in cls.Config.model_fields
    default = cls.Config.model_fields["dtype"].default if has_dtype else None
    # the method's own precision first (a float32 method stays float32: CLI and API agree), then less
    choices = [given] if given or not has_dtype else list(PRECISIONS[PRECISIONS.index(default):])

    def estimate(precision):
        values = dict(params, dtype=precision) if has_dtype and precision else dict(params)
        return cls.memory_estimate(cls._validated(values), rows, voxels, frames)

    tried = [estimate(choices[0])]
    if len(choices) > 1 and tried[0].strategy in APPROXIMATE_STRATEGIES:
        choices = choices[::-1]  # float32 first: the approximation's error dwarfs float32 rounding
        tried = [estimate(choices[0])]
    for precision in choices[1:]:
        if tried[-1].total <= budget:
            break
        tried.append(estimate(precision))
    if tried[-1].total <= budget:
        return tried[-1]
    best = min(tried, key=lambda e: e.total)
    raise MemoryBudgetError(
        f"{cls.name}: needs about {best.describe()} for {rows} rows x {voxels} voxels and {frames} frame(s); "
        f"memory budget {format_bytes(budget)} ({budget_source}); use --memory-limit, fewer rows "
        "(--num-used-freqs, --snr-threshold) or fewer frames at a time")


# -- building blocks of the estimates (bytes) -----------------------------------------------------
def real_size(precision: str) -> int:
    """Bytes of one real number in ``precision``."""
    return 4 if precision == "float32" else 8


def matrix_bytes(rows: int, voxels: int, precision: str) -> int:
    """The selected complex matrix (R, P) as read for ``precision`` (complex64 for float32)."""
    return rows * voxels * 2 * real_size(precision)


def frame_bytes(rows: int, voxels: int, frames: int) -> int:
    """Spectra (F, R) complex128 as read, and the images (F, P) float64 twice (result and output)."""
    return frames * (16 * rows + 2 * 8 * voxels)


#: Python, numpy, scipy, h5py and their buffers (measured RSS of ``mpirecon run`` before reading: ~150 MB)
RUNTIME_BYTES = 256 * 2 ** 20


def common_parts(rows: int, voxels: int, frames: int, precision: str) -> dict:
    """What every method holds: the runtime, the matrix (+ its read buffers) and the frames."""
    m = matrix_bytes(rows, voxels, precision)
    return {"runtime": RUNTIME_BYTES, "matrix": m, "reading": min(m // 4, 512 * 2 ** 20),
            "frames": frame_bytes(rows, voxels, frames)}


def gram_bytes(rows: int) -> int:
    """One 2R x 2R float64 matrix (the row Gram AAᵀ and its inverses)."""
    return (2 * rows) ** 2 * 8


def gram_block_bytes(voxels: int) -> int:
    """The two float64 row blocks alive while a Gram is computed (:func:`mpirecon.physics.linalg.row_gram`)."""
    from mpirecon.physics.linalg import GRAM_BLOCK_ROWS
    return 2 * GRAM_BLOCK_ROWS * voxels * 8


def dense_normal_bytes(rows: int, voxels: int, precision: str) -> dict:
    """The dense ADMM/CGNR route: AᵀA formed from the float64 stacked operator, factorised, inverted."""
    parts = {"normal": 3 * voxels ** 2 * 8, "inverse": voxels ** 2 * real_size(precision)}
    if precision != "float64":
        parts["float64 operator"] = stacked_operator_bytes(rows, voxels, "float64")
    return parts


def stacked_operator_bytes(rows: int, voxels: int, precision: str) -> int:
    """The stacked real operator (2R, P) when it is built (:mod:`mpirecon.physics.operator`)."""
    from mpirecon.physics.operator import stacks_operator
    return 2 * rows * voxels * real_size(precision) if stacks_operator(rows, voxels, precision) else 0


def check_memory(exc: BaseException) -> Optional[str]:
    """A one-line description if ``exc`` is running out of memory (numpy's/Python's MemoryError,
    torch's allocator errors), else None."""
    if isinstance(exc, MemoryError):
        return f"out of memory ({exc.__class__.__name__}: {' '.join(str(exc).split())[:160]})"
    text = str(exc)
    if isinstance(exc, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text.lower()):
        return f"out of memory ({' '.join(text.split())[:160]})"
    return None


def available_hint() -> str:
    """``"(this process may use about N GB more: ...)"`` for out-of-memory messages."""
    room, source = available_bytes()
    return f"about {format_bytes(room)} left ({source})"


def budget_from(text: Optional[str]) -> tuple[int, str]:
    """(bytes, description) of a ``--memory-limit`` value, or :func:`default_budget` for None."""
    if text is None:
        return default_budget()
    return parse_size(text), "--memory-limit"


def process_peak_bytes() -> int:
    """Peak resident memory of this process so far (bytes; 0 where unknown)."""
    return _self_status("VmHWM") or int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


__all__ = ["MemoryBudgetError", "MemoryEstimate", "available_bytes", "budget_from", "check_memory",
           "common_parts", "default_budget", "dense_normal_bytes", "format_bytes", "frame_bytes", "gram_block_bytes",
           "gram_bytes", "matrix_bytes", "parse_size", "plan_precision", "process_peak_bytes", "real_size",
           "stacked_operator_bytes"]
