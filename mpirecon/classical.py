"""Parameters and operator shared by the classical solvers (pinv, Kaczmarz, CGNR, ADMM).

Each classical solver has one code path over numpy arrays (the CPU default) or torch tensors
(``device="cuda"``, or ``backend="torch"`` on the CPU, e.g. to test the torch path), and a
``strategy``: "auto" picks the dense or the large form from the problem shape (thresholds in
:mod:`mpirecon.operator`), "dense"/"large" force one.
"""
from __future__ import annotations

from typing import Optional

from pydantic import Field, model_validator

from .operator import SystemOperator, operator_for
from .reconstructor import ReconstructorConfig


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


def classical_operator(system_matrix, config: ClassicalConfig, dtype: Optional[str] = None) -> SystemOperator:
    """The shared operator of ``system_matrix`` for the config's device and backend, in ``dtype``
    (default the config's)."""
    return operator_for(system_matrix, dtype or config.dtype, config.device, config.backend)
