"""The :class:`ReconstructionPlan`: every choice of one reconstruction as a tree of validated
parameters (inputs, selection, frames, preprocessing, method, output), saved and loaded as TOML
and recorded in every result file, so a reconstruction can be repeated from its plan alone.

Built by ``mpirecon run`` from its options, or by hand::

    plan = ReconstructionPlan(inputs={"measurement": "meas.mdf", "calibration": "sm.mdf"},
                              method={"name": "kaczmarz", "parameters": {"iterations": 20}},
                              output={"path": "rec.mdf"})
    plan.save("p.toml"); plan = ReconstructionPlan.load("p.toml")
    result = plan.run()                       # the one pipeline (:mod:`mpirecon.plan.pipeline`)

TOML has no null: fields left at None are omitted, and a method parameter set to None is written
as the text ``"None"`` (read back as None, as ``--param key=None`` does on the command line).
Relative paths in a TOML file are taken relative to that file's folder.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mpirecon.errors import UsageError

#: the plan format written by this version (a later format refuses to load with a clear error)
PLAN_VERSION = 1
_NONE = "None"


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Inputs(_Part):
    """The files read: measurement, calibration (system matrix; optional for methods whose weights
    carry the geometry), a separate empty-scanner measurement, a transfer function, weights."""

    measurement: str
    calibration: Optional[str] = None
    background: Optional[str] = None
    transfer_function: Optional[str] = None
    weights: Optional[str] = None


class Selection(_Part):
    """Frequency selection (:func:`mpirecon.io.loading.load_system_matrix`). ``snr_threshold`` None:
    the selection the weights were trained with, else the default 1.5; frequencies in Hz;
    ``channels`` 0-based; ``slice`` e.g. ``"z=9"`` for one slice of a 3D calibration."""

    snr_threshold: Optional[float] = None
    min_frequency: Optional[float] = None
    max_frequency: Optional[float] = None
    channels: Optional[list[int]] = None
    num_used_freqs: Optional[int] = Field(None, ge=1)
    slice: Optional[str] = None


class Frames(_Part):
    """Which frames, averaged how (:func:`mpirecon.io.loading.load_measurement_for`); ``block_size``:
    frames read, reconstructed and written at a time (None: chosen from the memory budget)."""

    frames: Optional[str] = None
    average: bool = False
    average_blocks: Optional[int] = Field(None, ge=1)
    background_frames: Optional[str] = None
    subtract_background: bool = True
    block_size: Optional[int] = Field(None, ge=1)


class Preprocessing(_Part):
    """``transfer_correction`` auto: whichever of calibration and measurement is uncorrected is
    divided by the transfer function (MPIFiles' rule); ``row_weighting`` of matrix and data alike;
    ``scanner_mismatch`` error: refuse a measurement taken with other scanner settings, warn: go on."""

    transfer_correction: Literal["auto", "off"] = "auto"
    row_weighting: Literal["none", "rownorm", "whiten"] = "none"
    scanner_mismatch: Literal["error", "warn"] = "error"


class Method(_Part):
    """The reconstructor (a registered name) and the parameters given to it (the others keep
    their defaults); ``memory_limit`` e.g. ``"4G"`` (None: 70 % of the available memory)."""

    name: str
    parameters: dict[str, Any] = Field(default_factory=dict)
    memory_limit: Optional[str] = None

    @field_validator("parameters", mode="before")
    @classmethod
    def _plain(cls, value):
        """Tuples as lists and the TOML text "None" as None, so a plan equals its reloaded copy."""
        return {str(k): _plain_value(v) for k, v in dict(value or {}).items()}


class Output(_Part):
    """The result file (MDF with ``/reconstruction``), an optional PNG of its first frame."""

    path: Optional[str] = None
    png: Optional[str] = None
    overwrite: bool = False


class ReconstructionPlan(_Part):
    """Everything one reconstruction depends on (see module docstring)."""

    version: int = PLAN_VERSION
    inputs: Inputs
    selection: Selection = Field(default_factory=Selection)
    frames: Frames = Field(default_factory=Frames)
    preprocessing: Preprocessing = Field(default_factory=Preprocessing)
    method: Method
    output: Output = Field(default_factory=Output)

    @field_validator("version")
    @classmethod
    def _known(cls, value: int) -> int:
        if value > PLAN_VERSION:
            raise ValueError(f"plan format {value} is newer than this mpirecon's ({PLAN_VERSION})")
        return value

    # -- running --------------------------------------------------------------------------------
    def run(self, *, cache=None, progress: bool = False, log=None, keep_images=None):
        """Run the plan (:func:`mpirecon.plan.pipeline.run_plan`); returns its :class:`PlanResult`."""
        from mpirecon.plan.pipeline import run_plan
        return run_plan(self, cache=cache, progress=progress, log=log, keep_images=keep_images)

    def with_changes(self, **sections: dict) -> "ReconstructionPlan":
        """A copy with fields of some sections replaced, e.g. ``with_changes(method={"parameters":
        {...}}, output={"path": "b.mdf"})``; method parameters are merged, not replaced."""
        data = self.model_dump()
        for name, changes in sections.items():
            if name == "method" and "parameters" in changes:
                changes = dict(changes, parameters=dict(data["method"]["parameters"], **changes["parameters"]))
            data[name].update(changes)
        return checked_plan(data, "plan")

    # -- storage --------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The plan as plain data (None kept), e.g. for JSON in a result file."""
        return self.model_dump()

    def to_toml(self) -> str:
        """The plan as TOML text (None omitted; method parameters None as "None")."""
        import tomli_w
        data = _without_none(self.model_dump())
        data["method"]["parameters"] = {k: _NONE if v is None else v for k, v in self.method.parameters.items()}
        return tomli_w.dumps(data)

    def save(self, path) -> Path:
        """Write the plan to ``path`` as TOML (atomically; paths as they are, see :meth:`absolute`);
        returns the path."""
        from mdf_io.atomic import atomic_outputs
        path = Path(path)
        with atomic_outputs([path], overwrite=True) as (tmp,):
            tmp.write_text(self.to_toml())
        return path

    @classmethod
    def load(cls, path) -> "ReconstructionPlan":
        """Read a plan saved as TOML; relative input/output paths are taken relative to the file's
        folder. One-line :class:`~mpirecon.errors.UsageError` for an unreadable or invalid plan."""
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text())
        except OSError as exc:
            raise UsageError(f"{path}: cannot read plan ({exc.strerror or exc})") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise UsageError(f"{path}: not a TOML plan ({exc})") from None
        plan = checked_plan(data, str(path))
        return plan.relative_to(path.parent)

    @classmethod
    def from_result(cls, path) -> "ReconstructionPlan":
        """The plan recorded in a result file written by :meth:`run` (``/reconstruction/_parameters``)."""
        from mdf_io import MDFFormatError, read_reconstruction
        params = read_reconstruction(path).parameters
        if "plan" not in params:
            raise MDFFormatError(path, "/reconstruction/_parameters", "a recorded plan (a file written by "
                                 "mpirecon 0.4 or later)", "no 'plan' entry")
        return checked_plan(params["plan"], f"{path}: /reconstruction/_parameters 'plan'")

    def absolute(self) -> "ReconstructionPlan":
        """A copy with relative paths of existing files (and of the outputs) made absolute, so the
        plan runs from any folder; names that are not files (weights ``"shipped"``) stay."""
        data = self.model_dump()
        for section, keys in (("inputs", Inputs.model_fields), ("output", ("path", "png"))):
            for key in keys:
                value = data[section].get(key)
                if isinstance(value, str) and (section == "output" or Path(value).exists()):
                    data[section][key] = str(Path(value).absolute())
        return type(self).model_validate(data)

    def relative_to(self, folder) -> "ReconstructionPlan":
        """A copy with relative file paths taken relative to ``folder``."""
        folder = Path(folder)
        data = self.model_dump()
        for section, keys in (("inputs", Inputs.model_fields), ("output", ("path", "png"))):
            for key in keys:
                value = data[section].get(key)
                if isinstance(value, str) and not Path(value).is_absolute():
                    data[section][key] = str(folder / value)
        return type(self).model_validate(data)


def checked_plan(data: dict, source: str) -> ReconstructionPlan:
    """``ReconstructionPlan`` from plain data, or one-line :class:`UsageError` naming ``source``,
    the field and the problem."""
    try:
        return ReconstructionPlan.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise UsageError(f"{source}: invalid plan ({problems})".replace("\n", " ")) from None


def _plain_value(value):
    if isinstance(value, str) and value == _NONE:
        return None
    if isinstance(value, (tuple, list)):
        return [_plain_value(v) for v in value]
    return json.loads(json.dumps(value)) if isinstance(value, dict) else value


def _without_none(data):
    if isinstance(data, dict):
        return {k: _without_none(v) for k, v in data.items() if v is not None}
    return data
