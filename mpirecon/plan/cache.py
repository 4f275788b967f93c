"""The plan cache: what one process can reuse between runs of plans (MPIReco's ProcessResultCache).

* the selected, corrected and weighted calibration, keyed by the calibration file (path, size,
  modification time) and the plan parts it depends on (selection, working precision, transfer
  correction, row weighting);
* the method bound to it, keyed by that and the method, weights, device and precision: a plan that
  differs only in other method parameters gets ``recon.with_params(...)``, which shares the
  operator and its factorisations (only the per-parameter part of the set-up runs again).

A parameter sweep or a second measurement with the same plan reads the calibration once and sets
the operator up once. ``reads`` and ``binds`` count what was really done.
"""
from __future__ import annotations

import copy
import json
import os
from collections import OrderedDict
from typing import Callable


def file_key(path) -> tuple:
    """(real path, size, modification time in ns) of ``path``: changes when the file does."""
    st = os.stat(path)
    return os.path.realpath(path), st.st_size, st.st_mtime_ns


def params_key(params: dict) -> str:
    """A hashable, order-independent text of method parameters."""
    return json.dumps(params, sort_keys=True, default=str)


class PlanCache:
    """Calibrations and bound methods kept between plan runs in one process (see module docstring).

    ``max_matrices``: calibrations kept at once (least recently used dropped first; a 37^3
    calibration can take gigabytes)."""

    def __init__(self, max_matrices: int = 2):
        self.max_matrices = int(max_matrices)
        self._matrices: OrderedDict = OrderedDict()
        self._bound: dict = {}
        self._prototypes: dict = {}
        self.reads = 0   #: calibrations read from disk
        self.binds = 0   #: methods bound (per-matrix set-up run)

    def prototype(self, cls, weights, params: dict):
        """An unbound ``cls(None, weights=weights, **params)``, weights read once per (method, weights)."""
        key = (cls.name, file_key(weights) if weights is not None and os.path.isfile(weights) else weights)
        base = self._prototypes.get(key)
        if base is None:
            base = self._prototypes[key] = cls(None, weights=weights, **params)
            return base
        return base if base.parameters == base._validated(params).model_dump() else base.with_params(**params)

    def matrix(self, key: tuple, load: Callable):
        """The prepared calibration (and its row weighting) for ``key``; ``load()`` makes it once."""
        if key in self._matrices:
            self._matrices.move_to_end(key)
            return self._matrices[key]
        value = load()
        self.reads += 1
        self._matrices[key] = value
        while len(self._matrices) > self.max_matrices:
            old, _ = self._matrices.popitem(last=False)
            self._bound = {k: v for k, v in self._bound.items() if k[0] != old}
        return value

    def bound(self, matrix_key: tuple, recon, sm):
        """``recon`` bound to ``sm``: the cached method with ``recon``'s parameters when one of the
        same method, weights, device and precision is bound to the calibration of ``matrix_key``."""
        key = (matrix_key, recon.name, str(recon.weights_file), recon.config.device, recon.config.dtype)
        cached = self._bound.get(key)
        if cached is None:
            self.binds += 1
            self._bound[key] = cached = copy.copy(recon).bind(sm)  # the prototype stays unbound
            return cached
        return cached if cached.parameters == recon.parameters else cached.with_params(**recon.parameters)

    def clear(self) -> None:
        """Forget everything (the counters stay)."""
        self._matrices.clear()
        self._bound.clear()
        self._prototypes.clear()
