"""The :class:`Reconstructor` interface shared by classical and learned methods.

A reconstructor is built with validated parameters (a pydantic ``Config``), bound once to a
:class:`~mdf_io.SystemMatrix` (after frequency selection; the expensive per-matrix set-up
such as an SVD or a factorisation happens here, cached in the shared operator) and then called
on one frame or many::

    recon = load_reconstructor("admm_l1tv", system_matrix=sm, iterations=200)
    result = recon.reconstruct(measurement)      # result.images: (frames, Ny, Nx)

There is ONE reconstruct path. A plugin adds behaviour through hooks and never overrides
``__init__``, ``bind`` or ``reconstruct``:

* :meth:`Reconstructor._load_weights` — read a weights file (always called, also with None);
* :meth:`Reconstructor._weights_geometry` — the geometry a learned method carries, so it can
  reconstruct without a system matrix;
* :meth:`Reconstructor._select_rows` — adapt the bound system matrix (e.g. keep the trained rows);
* :meth:`Reconstructor._setup` — per-matrix work; :meth:`Reconstructor._solve` — per batch;
* :meth:`Reconstructor.train` — for trainable methods, reached by ``mpirecon train --method``.
"""
from __future__ import annotations

import copy
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Optional

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mdf_io import GeneralInfo, Geometry, Measurement, Reconstruction, SystemMatrix

from mpirecon.errors import ReconstructorError
from mpirecon.preprocess.noise import NoiseEstimate, estimate_noise


class ReconstructorConfig(BaseModel):
    """Parameters common to every method. Subclasses add their own fields with defaults."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    device: str = Field("cpu", description="'cpu' or 'cuda'/'cuda:N' (methods with a torch path)")
    dtype: str = Field("float64", pattern="^(float32|float64)$", description="working precision")


@dataclass(frozen=True)
class Capabilities:
    """What a method needs and supports, as data (the CLI explains instead of crashing).

    needs_system_matrix: False when trained weights carry the geometry (``--sm`` optional).
    needs_weights: a weights file is required. supports_batches: many frames per call.
    supports_gpu: ``device='cuda'`` is accepted. trainable: :meth:`Reconstructor.train` exists.
    in_default_bench: ``mpirecon bench`` without ``--methods`` includes it (False for very slow ones).
    bench_test_samples: at most this many test samples per SNR in the bench (None: all).
    supports_3d: reconstructs 3D grids (False: 2D grids only, a 3D calibration is refused in one
    line; a slice of it, ``--slice z=K``, works).
    """

    needs_system_matrix: bool = True
    needs_weights: bool = False
    supports_batches: bool = True
    supports_gpu: bool = False
    trainable: bool = False
    in_default_bench: bool = True
    bench_test_samples: Optional[int] = None
    supports_3d: bool = True


@dataclass
class ReconstructionResult:
    """Output of :meth:`Reconstructor.reconstruct`.

    images: real array (frames, *image_shape*) — (F, Ny, Nx) for 2D grids.
    seconds: wall time of the solve (set-up excluded).
    extra: what the method reports about this solve (e.g. iterations used per frame).
    noise: the noise estimate the solve saw, if any.
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
    noise: Optional[NoiseEstimate] = None

    def to_reconstruction(self, header=None) -> Reconstruction:
        """As an :class:`mdf_io.Reconstruction` ready for :func:`mdf_io.write_reconstruction`.

        ``header``: the measurement's metadata, kept (scanner, acquisition, experiment) except
        the root group: the reconstruction is a new file with its own ``/uuid`` and ``/time``."""
        params = dict(self.parameters, selection=self.selection)
        if self.noise is not None:
            params["noise"] = self.noise.summary()
        kwargs = {}
        if header is not None:
            kwargs["header"] = header.model_copy(deep=True, update={"general": GeneralInfo()})
        return Reconstruction(images=self.images, grid=tuple(self.grid), fov=self.fov,
                              center=self.center, method=self.method, parameters=params, **kwargs)


def validated(model: type[BaseModel], values: dict, context: str) -> BaseModel:
    """``model(**values)``, or a one-line :class:`ReconstructorError` ``"{context} (key: problem;
    ...); allowed: ..."`` listing the model's fields."""
    try:
        return model(**values)
    except ValidationError as exc:
        problems = "; ".join(": ".join(filter(None, (".".join(str(p) for p in e["loc"]), e["msg"])))
                             for e in exc.errors())
        allowed = ", ".join(model.model_fields)
        raise ReconstructorError(f"{context} ({problems}); allowed: {allowed}".replace("\n", " ")) from None


def check_device(name: str, device: str, supports_gpu: bool) -> None:
    """Raise :class:`ReconstructorError` unless ``device`` is 'cpu' or an available CUDA device
    of a method that supports one."""
    if device == "cpu":
        return
    if not (device == "cuda" or device.startswith("cuda:")):
        raise ReconstructorError(f"{name}: parameter 'device': expected 'cpu', 'cuda' or 'cuda:N', found {device!r}")
    if not supports_gpu:
        raise ReconstructorError(f"{name}: parameter 'device': this method runs on the CPU only, found {device!r}")
    import torch
    if not torch.cuda.is_available():
        raise ReconstructorError(f"{name}: parameter 'device': {device!r} requested but no CUDA device is available")


class Reconstructor(ABC):
    """Base class of every reconstruction method (see module docstring).

    Subclasses set ``name``, ``description``, ``Config``, ``capabilities`` and implement
    :meth:`_setup` (once per system matrix) and :meth:`_solve` (per batch of frames).
    During :meth:`_solve`, ``self.noise`` holds the frames' :class:`~mpirecon.preprocess.noise.NoiseEstimate`
    (or None) and ``self.operator`` the shared :class:`~mpirecon.physics.operator.SystemOperator`;
    what :meth:`_solve` puts in ``self.solve_info`` (a dict, emptied before each solve) becomes
    the result's ``extra``.
    A trainable method sets ``capabilities.trainable``, ``TrainSettings`` and implements :meth:`train`.
    """

    name: ClassVar[str] = "base"
    description: ClassVar[str] = ""
    Config: ClassVar[type[ReconstructorConfig]] = ReconstructorConfig
    capabilities: ClassVar[Capabilities] = Capabilities()
    #: pydantic model of the :meth:`train` settings of a trainable method (listed by `mpirecon methods NAME`)
    TrainSettings: ClassVar[Optional[type[BaseModel]]] = None

    def __init__(self, system_matrix: Optional[SystemMatrix] = None, *, weights=None, **params: Any):
        self.config = self._validated(params)
        check_device(self.name, self.config.device, self.capabilities.supports_gpu)
        self.system_matrix: Optional[SystemMatrix] = None
        self.geometry: Optional[Geometry] = None
        self.noise: Optional[NoiseEstimate] = None
        self.solve_info: dict = {}
        self.weights = weights
        #: the file the weights were read from (a plugin's ``_load_weights`` sets it when it
        #: resolves a name or a default to a packaged file); recorded with results
        self.weights_file: Optional[Path] = None if weights is None else Path(weights)
        if weights is None and self.capabilities.needs_weights:
            raise ReconstructorError(f"{self.name}: needs weights=... (see `mpirecon methods`)")
        self._load_weights(weights)
        self.geometry = self._weights_geometry()
        if system_matrix is not None:
            self.bind(system_matrix)

    @classmethod
    def _validated(cls, params: dict) -> ReconstructorConfig:
        return validated(cls.Config, params, f"{cls.name}: invalid parameters")

    @classmethod
    def train_settings(cls, settings: dict) -> BaseModel:
        """``settings`` validated by :attr:`TrainSettings` (one-line :class:`ReconstructorError`
        naming the bad keys and the allowed ones)."""
        if cls.TrainSettings is None:
            raise ReconstructorError(f"{cls.name} is not trainable")
        return validated(cls.TrainSettings, settings, f"{cls.name}: invalid training settings")

    # -- hooks ------------------------------------------------------------------------------
    def _load_weights(self, weights) -> None:
        """Read ``weights`` (called once, also with None). Default: the method takes none."""
        if weights is not None:
            raise ReconstructorError(f"{self.name} takes no weights")

    def _weights_geometry(self) -> Optional[Geometry]:
        """The geometry carried by the loaded weights (None: a system matrix is needed)."""
        return None

    def _select_rows(self, system_matrix: SystemMatrix) -> SystemMatrix:
        """The system matrix this method works with (default: as given)."""
        return system_matrix

    @classmethod
    def memory_estimate(cls, config: ReconstructorConfig, rows: int, voxels: int, frames: int):
        """Estimated peak (:class:`mpirecon.memory.MemoryEstimate`) of this method with ``config`` on
        R=``rows`` complex rows, P=``voxels`` and F=``frames`` frames at once, known before the matrix
        is read. Default: the matrix, the frames and a stacked real operator (2R, P); methods whose
        set-up holds more (or less) override it."""
        from mpirecon.memory import MemoryEstimate, common_parts, real_size
        precision = getattr(config, "dtype", "float64")
        parts = common_parts(rows, voxels, frames, precision)
        parts["operator"] = 2 * rows * voxels * real_size(precision)
        return MemoryEstimate(parts, precision, "default")

    @abstractmethod
    def _setup(self, system_matrix: SystemMatrix) -> None:
        """Per-system-matrix work (factorisations, SVD, moving to the device)."""

    @abstractmethod
    def _solve(self, spectra: np.ndarray) -> np.ndarray:
        """Reconstruct complex spectra (F, R) into real voxel vectors (F, P), x fastest."""

    @classmethod
    def train(cls, system_matrix: SystemMatrix, output, settings: dict, *, resume=None,
              progress: bool = True) -> dict:
        """Train weights for ``system_matrix`` into ``output`` (trainable methods only).

        ``settings`` are recipe fields as text or values (the plugin validates them, usually with
        :meth:`train_settings`); ``resume`` a checkpoint to continue from. Returns a JSON-ready
        summary (weights path, best epoch/validation figures, minutes)."""
        raise ReconstructorError(f"{cls.name} is not trainable")

    # -- public -------------------------------------------------------------------------------
    def bind(self, system_matrix: SystemMatrix) -> "Reconstructor":
        """Attach the (frequency-selected) system matrix and run the set-up. Returns self."""
        if not isinstance(system_matrix, SystemMatrix):
            raise ReconstructorError(f"{self.name}: bind() needs an mdf_io.SystemMatrix, got "
                                     f"{type(system_matrix).__name__}")
        if not self.capabilities.supports_3d and sum(int(n) > 1 for n in system_matrix.grid) == 3:
            raise ReconstructorError(f"{self.name}: reconstructs 2D grids only, the system matrix grid is "
                                     f"{tuple(system_matrix.grid)}; take one slice (SystemMatrix.take_slice, "
                                     "--slice z=K) or a method for 3D grids")
        selected = self._select_rows(system_matrix)
        self.system_matrix = selected
        self.geometry = selected.geometry
        self._setup(selected)
        return self

    @property
    def operator(self):
        """The shared :class:`~mpirecon.physics.operator.SystemOperator` of the bound matrix for this
        method's dtype and device (built on first use, cached with the matrix)."""
        from mpirecon.physics.operator import operator_for
        if self.system_matrix is None:
            raise ReconstructorError(f"{self.name}: no system matrix bound")
        return operator_for(self.system_matrix, self.config.dtype, self.config.device)

    def with_params(self, **changes: Any) -> "Reconstructor":
        """A copy with some parameters changed, sharing weights, system matrix and operator
        (only the per-parameter part of the set-up runs again)."""
        merged = dict(self.parameters, **changes)
        if any(k in changes and changes[k] != self.parameters[k] for k in ("device", "dtype")):
            return type(self)(self.system_matrix, weights=self.weights, **merged)
        clone = copy.copy(self)
        clone.config = self._validated(merged)
        if clone.system_matrix is not None:
            clone._setup(clone.system_matrix)
        return clone

    @property
    def parameters(self) -> dict:
        """The validated parameters as a plain dict."""
        return self.config.model_dump()

    def reconstruct(self, measurement, *, noise=None) -> ReconstructionResult:
        """Reconstruct one frame or a batch.

        Args:
            measurement: a :class:`mdf_io.Measurement` (its rows are matched to the geometry's),
                or complex spectra (R,) or (F, R) already in the geometry's row order.
            noise: the noise level if known: a NoiseEstimate, σ, (R,) σ or (F, R) σ per frame; else it is estimated
                from the measurement's background frames or the calibration SNR.
        Returns:
            :class:`ReconstructionResult` with images (F, *image_shape*).
        """
        geo = self.geometry
        if geo is None or (self.capabilities.needs_system_matrix and self.system_matrix is None):
            raise ReconstructorError(f"{self.name}: no system matrix bound; call bind(sm) or pass "
                                     "system_matrix= to load_reconstructor")
        if isinstance(measurement, Measurement):
            measurement = measurement.matched_to(geo)
            spectra = measurement.data
        else:
            spectra = np.asarray(measurement)
            if spectra.ndim == 1:
                spectra = spectra[None]
            if spectra.ndim != 2 or spectra.shape[1] != geo.num_rows:
                raise ReconstructorError(f"{self.name}: spectra must be (frames, {geo.num_rows}) to match "
                                         f"the system matrix rows, got shape {spectra.shape}")
        if not np.all(np.isfinite(spectra)):
            raise ReconstructorError(f"{self.name}: measurement contains NaN or Inf")
        self.noise = estimate_noise(measurement, self.system_matrix, noise, geo.num_rows)
        self.solve_info = {}
        t0 = time.perf_counter()
        voxels = self._solve(spectra)
        seconds = time.perf_counter() - t0
        images = np.asarray(voxels, dtype=np.float64).reshape((spectra.shape[0],) + geo.image_shape)
        return ReconstructionResult(images=images, method=self.name, parameters=self.parameters,
                                    selection=dict(geo.selection), grid=geo.grid, fov=np.asarray(geo.fov),
                                    center=np.asarray(geo.center), seconds=seconds, noise=self.noise,
                                    extra=dict(self.solve_info))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"
