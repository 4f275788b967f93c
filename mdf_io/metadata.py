"""Pydantic models of the MDF v2 metadata groups (everything except the big arrays).

Field names follow the specification in snake_case; units are SI (magnetic fields in T/mu0,
i.e. tesla numbers), as in the MDF v2.1.0 specification.
"""
from __future__ import annotations

import uuid as _uuid
from datetime import datetime, timezone
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

MDF_VERSION = "2.1.0"


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def _new_uuid() -> str:
    return str(_uuid.uuid4())


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class GeneralInfo(_Model):
    """Root group: format version, file UUID and creation time (ISO 8601)."""

    version: str = MDF_VERSION
    uuid: str = Field(default_factory=_new_uuid)
    time: str = Field(default_factory=_now)


class Study(_Model):
    """`/study`: the study this experiment belongs to."""

    name: str = "mpirecon"
    number: int = 0
    uuid: str = Field(default_factory=_new_uuid)
    description: str = ""


class Experiment(_Model):
    """`/experiment`: one experiment; ``is_simulation`` marks simulated data."""

    name: str = ""
    number: int = 0
    uuid: str = Field(default_factory=_new_uuid)
    description: str = ""
    subject: str = ""
    is_simulation: bool = False


class Tracer(_Model):
    """`/tracer`: vectors of length A (one entry per tracer)."""

    name: list[str] = Field(default_factory=lambda: ["unknown"])
    batch: list[str] = Field(default_factory=lambda: [""])
    vendor: list[str] = Field(default_factory=lambda: [""])
    volume: list[float] = Field(default_factory=lambda: [0.0])
    concentration: list[float] = Field(default_factory=lambda: [0.0])
    solute: list[str] = Field(default_factory=lambda: ["Fe"])


class Scanner(_Model):
    """`/scanner`: the device."""

    facility: str = ""
    manufacturer: str = ""
    name: str = ""
    operator: str = ""
    topology: str = "FFP"


class DriveField(_Model):
    """`/acquisition/drivefield`: base frequency (Hz), dividers (D x F), strengths (J x D x F, T)."""

    base_frequency: float = 2.5e6
    cycle: float = 0.0
    divider: list[list[int]] = Field(default_factory=lambda: [[102], [96]])
    num_channels: int = 2
    phase: list[list[list[float]]] = Field(default_factory=lambda: [[[0.0], [0.0]]])
    strength: list[list[list[float]]] = Field(default_factory=lambda: [[[0.012], [0.012]]])
    waveform: list[list[str]] = Field(default_factory=lambda: [["sine"], ["sine"]])


class Receiver(_Model):
    """`/acquisition/receiver`: bandwidth (Hz, half the sampling rate), C channels, V samples."""

    bandwidth: float = 1.25e6
    num_channels: int = 2
    num_sampling_points: int = 9792
    unit: str = "V"
    data_conversion_factor: Optional[list[list[float]]] = None  # C x 2 (scale, offset)
    induction_factor: Optional[list[float]] = None

    @field_validator("num_sampling_points", "num_channels")
    @classmethod
    def _positive(cls, v: int) -> int:
        if v < 1:
            raise ValueError("must be >= 1")
        return v

    @property
    def num_frequencies(self) -> int:
        """K of the full spectrum: V // 2 + 1."""
        return self.num_sampling_points // 2 + 1


class Acquisition(_Model):
    """`/acquisition`: frames N, periods per frame J, averages, start time, gradient (T/m)."""

    num_averages: int = 1
    num_frames: int = 1
    num_periods_per_frame: int = 1
    start_time: str = Field(default_factory=_now)
    #: selection-field gradient (J x Y x 3 x 3, T/m), optional in MDF v2
    gradient: Optional[list[list[list[list[float]]]]] = None
    drivefield: DriveField = Field(default_factory=DriveField)
    receiver: Receiver = Field(default_factory=Receiver)


class Calibration(_Model):
    """`/calibration`: grid ``size`` (Nx, Ny, Nz), FOV and centre (m), method, order."""

    method: Literal["robot", "hybrid", "simulation"] = "robot"
    size: tuple[int, int, int] = (1, 1, 1)
    order: str = "xyz"
    field_of_view: tuple[float, float, float] = (0.0, 0.0, 0.0)
    field_of_view_center: tuple[float, float, float] = (0.0, 0.0, 0.0)
    delta_sample_size: Optional[tuple[float, float, float]] = None


class MDFHeader(_Model):
    """All metadata of one MDF file (no data arrays)."""

    general: GeneralInfo = Field(default_factory=GeneralInfo)
    study: Study = Field(default_factory=Study)
    experiment: Experiment = Field(default_factory=Experiment)
    scanner: Scanner = Field(default_factory=Scanner)
    tracer: Optional[Tracer] = None
    acquisition: Acquisition = Field(default_factory=Acquisition)
    calibration: Optional[Calibration] = None
