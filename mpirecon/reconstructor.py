"""The :class:`Reconstructor` interface shared by classical and learned methods.

A reconstructor is built with validated parameters (a pydantic ``Config``), bound once to a
:class:`~mdf_io.SystemMatrix` (after frequency selection; the expensive per-matrix set-up
such as an SVD or a factorisation happens here) and then called on one frame or many::

    recon = load_reconstructor("admm_l1tv", system_matrix=sm, iterations=200)
    result = recon.reconstruct(measurement)      # result.images: (frames, Ny, Nx)
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mdf_io import Measurement, Reconstruction, SystemMatrix


class ReconstructorError(ValueError):
    """Invalid parameters, missing system matrix/weights, or data that do not fit."""


class ReconstructorConfig(BaseModel):
    """Parameters common to every method. Subclasses add their own fields with defaults."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    device: str = Field("cpu", description="'cpu' or 'cuda' (methods with a torch path)")
    dtype: str = Field("float64", pattern="^(float32|float64)$", description="working precision")


@dataclass(frozen=True)
class Capabilities:
    """What a method needs and supports, as data (the CLI explains instead of crashing)."""

    needs_system_matrix: bool = True
    needs_weights: bool = False
    supports_batches: bool = True
    supports_gpu: bool = False


@dataclass
class ReconstructionResult:
    """Output of :meth:`Reconstructor.reconstruct`.

    images: real array (frames, *image_shape*) — (F, Ny, Nx) for 2D grids.
    seconds: wall time of the solve (set-up excluded).
    """

    images: np.ndarray
    method: str
    parameters: dict
    selection: dict
    grid: tuple
    fov: np.ndarray
    center: np.ndarray
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    def to_reconstruction(self, header=None) -> Reconstruction:
        """As an :class:`mdf_io.Reconstruction` ready for :func:`mdf_io.write_reconstruction`."""
        params = dict(self.parameters, selection=self.selection)
        kwargs = {} if header is None else {"header": header}
        return Reconstruction(images=self.images, grid=tuple(self.grid), fov=self.fov,
                              center=self.center, method=self.method, parameters=params, **kwargs)


class Reconstructor(ABC):
    """Base class of every reconstruction method (see module docstring).

    Subclasses set ``name``, ``description``, ``Config``, ``capabilities`` and implement
    :meth:`_setup` (once per system matrix) and :meth:`_solve` (per batch of frames).
    """

    name: ClassVar[str] = "base"
    description: ClassVar[str] = ""
    Config: ClassVar[type[ReconstructorConfig]] = ReconstructorConfig
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(self, system_matrix: Optional[SystemMatrix] = None, *, weights=None, **params: Any):
        try:
            self.config = self.Config(**params)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
            allowed = ", ".join(self.Config.model_fields)
            raise ReconstructorError(f"{self.name}: invalid parameters ({problems}); "
                                     f"allowed: {allowed}") from None
        self.system_matrix: Optional[SystemMatrix] = None
        self.weights = weights
        if self.capabilities.needs_weights or weights is not None:
            self._load_weights(weights)
        if system_matrix is not None:
            self.bind(system_matrix)

    # -- hooks ------------------------------------------------------------------------------
    def _load_weights(self, weights) -> None:
        if weights is not None:
            raise ReconstructorError(f"{self.name} takes no weights")

    @abstractmethod
    def _setup(self, system_matrix: SystemMatrix) -> None:
        """Per-system-matrix work (factorisations, SVD, moving to the device)."""

    @abstractmethod
    def _solve(self, spectra: np.ndarray) -> np.ndarray:
        """Reconstruct complex spectra (F, R) into real voxel vectors (F, P), x fastest."""

    # -- public -------------------------------------------------------------------------------
    def bind(self, system_matrix: SystemMatrix) -> "Reconstructor":
        """Attach the (frequency-selected) system matrix and run the set-up. Returns self."""
        if not isinstance(system_matrix, SystemMatrix):
            raise ReconstructorError(f"{self.name}: bind() needs an mdf_io.SystemMatrix, got "
                                     f"{type(system_matrix).__name__}")
        self.system_matrix = system_matrix
        self._setup(system_matrix)
        return self

    @property
    def parameters(self) -> dict:
        """The validated parameters as a plain dict."""
        return self.config.model_dump()

    def reconstruct(self, measurement) -> ReconstructionResult:
        """Reconstruct one frame or a batch.

        Args:
            measurement: a :class:`mdf_io.Measurement` (its rows are matched to the system
                matrix's), or complex spectra (R,) or (F, R) already in system-matrix row order.
        Returns:
            :class:`ReconstructionResult` with images (F, *image_shape*).
        """
        sm = self.system_matrix
        if sm is None:
            raise ReconstructorError(f"{self.name}: no system matrix bound; call bind(sm) or pass "
                                     "system_matrix= to load_reconstructor")
        if isinstance(measurement, Measurement):
            spectra = measurement.matched_to(sm).data
        else:
            spectra = np.asarray(measurement)
            if spectra.ndim == 1:
                spectra = spectra[None]
            if spectra.ndim != 2 or spectra.shape[1] != sm.num_rows:
                raise ReconstructorError(f"{self.name}: spectra must be (frames, {sm.num_rows}) to match "
                                         f"the system matrix rows, got shape {spectra.shape}")
        if not np.all(np.isfinite(spectra)):
            raise ReconstructorError(f"{self.name}: measurement contains NaN or Inf")
        t0 = time.perf_counter()
        voxels = self._solve(spectra)
        seconds = time.perf_counter() - t0
        images = np.asarray(voxels, dtype=np.float64).reshape((spectra.shape[0],) + sm.image_shape)
        return ReconstructionResult(images=images, method=self.name, parameters=self.parameters,
                                    selection=dict(sm.selection), grid=sm.grid, fov=sm.fov,
                                    center=sm.center, seconds=seconds)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"
