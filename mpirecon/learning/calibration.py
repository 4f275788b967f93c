"""What learned weights record about the calibration they were trained for, and the checks a
bound system matrix must pass (shared by DERnet and ADMM-Net).

Weights metadata carry the geometry (grid, FOV, centre, selected rows, receiver), the fingerprint
and the signature of the selected system matrix (the signature is compared with a tolerance, so
the same calibration read in another precision is recognised); :class:`TrainedForCalibration` is the reconstructor
mixin that reads them back (the ``_weights_geometry`` and ``_select_rows`` hooks) and refuses a
system matrix of another calibration with a one-line error saying which one the weights belong to.
"""
from __future__ import annotations

from typing import Callable, Optional

from mdf_io import Geometry, SystemMatrix
from mdf_io.containers import signatures_match

from mpirecon.errors import ReconstructorError

#: what a malformed weights file raises while its model is built and loaded
_INCONSISTENT = (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError)


def calibration_metadata(system_matrix: SystemMatrix) -> dict:
    """JSON-ready geometry and identity of a (frequency-selected) system matrix, recorded with
    weights trained on it."""
    sm = system_matrix
    return {"image_shape": list(sm.image_shape), "grid": list(sm.grid), "fov": sm.fov.tolist(),
            "center": sm.center.tolist(),
            "rows": {"period": sm.rows.period.tolist(), "channel": sm.rows.channel.tolist(),
                     "frequency_index": sm.rows.frequency_index.tolist()},
            "bandwidth": sm.bandwidth, "num_sampling_points": sm.num_sampling_points, "selection": sm.selection,
            "system_matrix_fingerprint": sm.fingerprint(), "system_matrix_signature": sm.signature(),
            "system_matrix_source": sm.source}


def geometry_of_weights(meta: dict) -> Geometry:
    """The :class:`~mdf_io.Geometry` recorded in weights metadata (numbers coerced, so a
    malformed entry raises KeyError/TypeError/ValueError)."""
    return Geometry.from_dict({"rows": meta["rows"], "grid": [int(v) for v in meta["grid"]],
                               "fov": [float(v) for v in meta["fov"]], "center": [float(v) for v in meta["center"]],
                               "bandwidth": meta["bandwidth"], "num_sampling_points": meta["num_sampling_points"],
                               "selection": meta.get("selection") or {},
                               "source": meta.get("system_matrix_source")})


class TrainedForCalibration:
    """Reconstructor mixin for weights trained on one calibration. ``_load_weights`` of the
    plugin calls :meth:`_read_calibration` with the weights metadata."""

    _geometry: Optional[Geometry] = None
    trained_fingerprint: str = ""
    trained_signature: Optional[list] = None
    meta: dict = {}

    def _read_trained_weights(self, weights, kind: str, label: str, build: Callable[[dict], object]):
        """(model, metadata) of ``kind`` weights file ``weights``: ``build(metadata)`` makes the
        model, which then loads the state strictly, and the trained calibration is kept. A file
        whose metadata or state do not fit raises :class:`WeightsError` naming it and ``label``."""
        from mpirecon.learning.weights import WeightsError, error_line, load_weights

        try:
            state, meta = load_weights(weights, kind)
            net = build(meta)
            net.load_state_dict(state, strict=True)
            self._read_calibration(meta)
        except WeightsError:
            raise
        except _INCONSISTENT as exc:
            raise WeightsError(f"{weights}: {label} weights are inconsistent: {error_line(exc)}") from None
        return net, meta

    def _read_calibration(self, meta: dict) -> None:
        """Keep the trained geometry and fingerprint of weights metadata ``meta``."""
        self.meta = meta
        self.trained_fingerprint = str(meta["system_matrix_fingerprint"])
        signature = meta.get("system_matrix_signature")  # weights before round 3 have none
        self.trained_signature = None if signature is None else [float(v) for v in signature]
        self._geometry = geometry_of_weights(meta)

    def _weights_geometry(self) -> Optional[Geometry]:
        return self._geometry

    def _select_rows(self, system_matrix: SystemMatrix) -> SystemMatrix:
        """The trained rows of ``system_matrix``; its fingerprint must be the trained one, else a
        one-line error says which calibration the weights belong to and how to train for this one."""
        from mdf_io import MDFMismatchError

        trained = self._geometry
        try:
            pos = system_matrix.rows.positions_of(trained.rows, path=system_matrix.source,
                                                  field="system matrix rows (trained selection)")
        except MDFMismatchError:
            raise ReconstructorError(self._other_calibration(system_matrix, None)) from None
        selected = system_matrix.take_rows(pos, selection=trained.selection)
        if not self._same_matrix(selected):
            raise ReconstructorError(self._other_calibration(system_matrix, selected.fingerprint()))
        return selected

    def _same_matrix(self, selected: SystemMatrix) -> bool:
        """Whether ``selected`` is the trained matrix: by its signature (any precision it was read
        in), or for older weights without one by the quantised fingerprint."""
        if self.trained_signature is not None:
            return signatures_match(selected.signature(), self.trained_signature)
        return selected.fingerprint() == self.trained_fingerprint

    def _other_calibration(self, system_matrix: SystemMatrix, fingerprint: Optional[str]) -> str:
        """The message for weights trained on another calibration than ``system_matrix``."""
        trained = self._geometry
        mine = (f"fingerprint {fingerprint[:12]}, " if fingerprint else
                "without the trained rows (another frequency selection or receiver), ")
        source = system_matrix.source or "the given system matrix"
        return (f"{self.name}: weights {self.weights} belong to another calibration: "
                f"{self.meta.get('system_matrix_source') or 'unknown source'} (fingerprint {self.trained_fingerprint[:12]}, "
                f"grid {tuple(trained.grid)}, bandwidth {trained.bandwidth / 1e6:.4g} MHz, {trained.num_rows} rows), "
                f"not to {source} ({mine}grid {tuple(system_matrix.grid)}, bandwidth "
                f"{system_matrix.bandwidth / 1e6:.4g} MHz); train weights for this calibration with "
                f"`mpirecon train --method {self.name} --sm {source} -o NEW.pt` and pass --weights NEW.pt")
