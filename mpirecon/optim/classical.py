"""Parameters and operator shared by the classical solvers (pinv, Kaczmarz, CGNR, ADMM).

Each classical solver has one code path over numpy arrays (the CPU default) or torch tensors
(``device="cuda"``, or ``backend="torch"`` on the CPU, e.g. to test the torch path), and a
``strategy``: "auto" picks the dense or the large form from the problem shape (thresholds in
:mod:`mpirecon.physics.operator`), "dense"/"large" force one.
"""
from __future__ import annotations

from typing import Optional

from pydantic import Field, model_validator

from mpirecon.physics import operator as _operator
from mpirecon.physics.compression import DEFAULT_RANK, OVERSAMPLING, compressed_operator
from mpirecon.physics.operator import SystemOperator, choose_strategy, operator_for, stacks_operator
from mpirecon.reconstructor import ReconstructorConfig


class ClassicalConfig(ReconstructorConfig):
    """Common parameters of the classical solvers (see the module docstring)."""

    strategy: str = Field("auto", pattern="^(auto|dense|large)$",
                          description="dense (small grids) or large (cost follows the data) form; auto: by shape")
    backend: Optional[str] = Field(None, pattern="^(numpy|torch)$",
                                   description="array library (default: numpy on the CPU, torch on cuda)")

    @model_validator(mode="after")
    def _backend_fits_device(self):
        if self.backend == "numpy" and self.device != "cpu":
            raise ValueError(f"backend 'numpy' runs on the CPU only, not on {self.device!r}")
        return self


class CompressibleConfig(ClassicalConfig):
    """Parameters of the solvers that can run on the compressed operator (pinv, CGNR, ADMM)."""

    strategy: str = Field("auto", pattern="^(auto|dense|large|compressed)$",
                          description="dense (small grids), large (all 2R rows, cost follows the data) or "
                          "compressed (the matrix's dominant row space, `rank` rows; large calibrations); "
                          "auto: by shape and size")
    rank: int = Field(DEFAULT_RANK, ge=1, description="rows of the compressed operator (strategy compressed)")


def solver_strategy(requested: str, rows: int, voxels: int, dtype: str, svd: bool = False) -> str:
    """"dense", "large" or "compressed" for an (R, P) problem: auto gives dense for P up to
    :data:`mpirecon.physics.operator.DENSE_MAX_VOXELS` (``SVD_MAX_VOXELS`` with ``svd``, pinv's full SVD),
    compressed when the stacked operator would be too large to hold (numpy rows mode, see
    :func:`mpirecon.physics.operator.stacks_operator`; the iterations then cost k x P, :mod:`mpirecon.physics.compression`),
    else large. Used alike before reading (memory estimates) and at set-up."""
    if requested == "compressed":
        return requested
    kind = choose_strategy(requested, voxels, _dense_limit(svd))
    if requested == "auto" and kind == "large" and not stacks_operator(rows, voxels, dtype):
        return "compressed"
    return kind


def auto_compresses(rows: int, voxels: int, dtype: str, device: str = "cpu") -> bool:
    """Whether a solver of an (R, P) calibration on ``device`` works on the compressed operator by
    default: on the CPU, when the stacked operator in ``dtype`` would be too large to hold
    (:func:`solver_strategy` ``"auto"``); the networks' factors and PP-MPI's iteration follow it."""
    return device == "cpu" and solver_strategy("auto", rows, voxels, dtype) == "compressed"


def _dense_limit(svd: bool) -> int:
    return _operator.SVD_MAX_VOXELS if svd else _operator.DENSE_MAX_VOXELS  # read at call time (tests patch them)


def solver_operator(system_matrix, config: CompressibleConfig, svd: bool = False) -> tuple[str, SystemOperator]:
    """(strategy, operator) of a compressible solver: the shared operator, or its cached compressed
    form for the compressed strategy (torch operators are never compressed by ``auto``)."""
    op = classical_operator(system_matrix, config)
    strategy = solver_strategy(config.strategy, system_matrix.num_rows, system_matrix.num_voxels, config.dtype, svd)
    if strategy == "compressed" and config.strategy == "auto" and op.stacked:
        strategy = choose_strategy("auto", system_matrix.num_voxels, _dense_limit(svd))  # e.g. torch: stacked anyway
    return strategy, (compressed_operator(op, config.rank) if strategy == "compressed" else op)


def solver_memory(config: CompressibleConfig, rows: int, voxels: int, frames: int,
                  svd: bool = False) -> tuple[str, dict]:
    """(strategy, peak parts) a compressible solver shares before its own set-up is added: the
    runtime, matrix and frames (:func:`mpirecon.memory.common_parts`), the stacked operator when it
    is built, and the compressed operator's rows and set-up for the compressed strategy."""
    from mpirecon.memory import common_parts, stacked_operator_bytes
    prec = config.dtype
    strategy = solver_strategy(config.strategy, rows, voxels, prec, svd)
    parts = common_parts(rows, voxels, frames, prec)
    parts["operator"] = stacked_operator_bytes(rows, voxels, prec)
    if strategy == "compressed":
        parts.update(compressed_memory(rows, voxels, config.rank, prec))
    return strategy, parts


def compressed_memory(rows: int, voxels: int, rank: int, precision: str) -> dict:
    """Peak parts of the compressed strategy: the kept k x P rows, and the larger of the two set-up
    stages' temporaries (the range finder's P x (k + 16) float64 blocks and 2R x (k + 16) bases; the
    float64 row blocks of the k x k Woodbury Grams)."""
    from mpirecon.physics.linalg import GRAM_BLOCK_ROWS
    from mpirecon.memory import real_size
    width = min(2 * rows, rank + OVERSAMPLING)
    finder = 2 * voxels * width * 8 + voxels * width * real_size(precision) + 4 * rows * width * 8
    grams = 2 * min(GRAM_BLOCK_ROWS, width) * voxels * 8 + 3 * width ** 2 * 8
    return {"compressed rows": width * voxels * real_size(precision), "set-up": max(finder, grams)}


def classical_operator(system_matrix, config: ClassicalConfig, dtype: Optional[str] = None) -> SystemOperator:
    """The shared operator of ``system_matrix`` for the config's device and backend, in ``dtype``
    (default the config's)."""
    return operator_for(system_matrix, dtype or config.dtype, config.device, config.backend)
