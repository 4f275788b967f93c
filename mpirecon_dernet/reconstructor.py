"""The ``dernet`` reconstructor plugin: a trained DERnet behind the common interface."""
from __future__ import annotations

import numpy as np
import torch
from pydantic import Field

from mdf_io import Measurement, RowIndex, SystemMatrix
from mpirecon.reconstructor import Capabilities, ReconstructionResult, Reconstructor, ReconstructorConfig, ReconstructorError

from .model import DERnet, DERnetHyperParams, fuse_for_inference, predict
from .weights import WeightsError, load_weights

KIND = "dernet"


class DERnetConfig(ReconstructorConfig):
    batch_size: int = Field(1024, ge=1, description="frames per forward pass")
    dtype: str = Field("float32", pattern="^(float32|float64)$")


class DERnetReconstructor(Reconstructor):
    """DERnet (Peng et al. 2024): end-to-end CNN from selected spectra to the image.

    ``load_reconstructor("dernet", weights="w.pt")`` needs nothing else: the weights carry the
    grid, the selected rows and a fingerprint of the system matrix. Binding a system matrix
    is optional; if given, its rows are reduced to the trained selection and its fingerprint
    must match, otherwise a clear error is raised instead of a garbage image.
    """

    name = "dernet"
    description = "DERnet end-to-end CNN (Peng et al. 2024); needs --weights from `mpirecon train`"
    Config = DERnetConfig
    capabilities = Capabilities(needs_system_matrix=False, needs_weights=True, supports_gpu=True)

    def _load_weights(self, weights) -> None:
        if weights is None:
            raise ReconstructorError("dernet needs weights=... (a file written by `mpirecon train`)")
        try:
            state, meta = load_weights(weights, KIND)
            hp = meta["hyperparameters"]
            self.hp = DERnetHyperParams(num_rows=int(hp["num_rows"]), grid=tuple(hp["grid"]), c1=hp["c1"],
                                        c2=hp["c2"], c3=hp["c3"], c4=hp["c4"], c5=hp["c5"], rho0=hp["rho0"],
                                        rho1=hp["rho1"], pooling_stages=hp["pooling_stages"])
            net = DERnet(self.hp)
            net.load_state_dict(state, strict=True)
        except WeightsError as exc:
            raise ReconstructorError(str(exc)) from None
        except (KeyError, TypeError, RuntimeError) as exc:
            raise ReconstructorError(f"{weights}: DERnet weights are inconsistent: {exc}") from None
        self.meta = meta
        self.kappa = float(meta["kappa"])
        r = meta["rows"]
        self.rows = RowIndex(np.asarray(r["period"]), np.asarray(r["channel"]), np.asarray(r["frequency_index"]))
        self.device = torch.device(self.config.device)
        self.net = fuse_for_inference(net).to(self.device, dtype=getattr(torch, self.config.dtype))

    @property
    def selection(self) -> dict:
        """The frequency selection the network was trained with."""
        return dict(self.meta.get("selection") or {})

    def _setup(self, system_matrix: SystemMatrix) -> None:
        pos = system_matrix.rows.positions_of(self.rows, path=system_matrix.source,
                                              field="system matrix rows (trained selection)")
        selected = system_matrix.take_rows(pos, selection=self.selection)
        if selected.fingerprint() != self.meta["system_matrix_fingerprint"]:
            raise ReconstructorError(
                f"dernet: weights {self.weights} were trained for system matrix "
                f"{self.meta.get('system_matrix_source')} (fingerprint {self.meta['system_matrix_fingerprint'][:12]}), "
                f"not for {system_matrix.source} ({selected.fingerprint()[:12]}); retrain with `mpirecon train`")
        self.system_matrix = selected

    def bind(self, system_matrix: SystemMatrix) -> "DERnetReconstructor":
        self._setup(system_matrix)
        return self

    def _solve(self, spectra: np.ndarray) -> np.ndarray:
        out = []
        dtype = torch.complex64 if self.config.dtype == "float32" else torch.complex128
        with torch.inference_mode():
            for i in range(0, spectra.shape[0], self.config.batch_size):
                b = torch.as_tensor(np.ascontiguousarray(spectra[i:i + self.config.batch_size]), dtype=dtype,
                                    device=self.device)
                out.append(predict(self.net, b, self.kappa).float().cpu().numpy())
        return np.concatenate(out).reshape(spectra.shape[0], -1)

    def reconstruct(self, measurement) -> ReconstructionResult:
        """Like :meth:`Reconstructor.reconstruct`; without a bound system matrix the rows and
        grid come from the weights."""
        if self.system_matrix is not None:
            return super().reconstruct(measurement)
        meta = self.meta
        if isinstance(measurement, Measurement):
            if measurement.num_sampling_points != meta["num_sampling_points"] or not np.isclose(
                    measurement.bandwidth, meta["bandwidth"]):
                raise ReconstructorError(f"{measurement.source}: sampling/bandwidth differ from the "
                                         f"system matrix the weights were trained for")
            pos = measurement.rows.positions_of(self.rows, path=measurement.source, field="/measurement/data")
            spectra = measurement.data[:, pos]
        else:
            spectra = np.atleast_2d(np.asarray(measurement))
            if spectra.shape[1] != len(self.rows):
                raise ReconstructorError(f"dernet: spectra must be (frames, {len(self.rows)}), got {spectra.shape}")
        if not np.all(np.isfinite(spectra)):
            raise ReconstructorError(f"{self.name}: measurement contains NaN or Inf")
        import time
        t0 = time.perf_counter()
        vox = self._solve(spectra)
        seconds = time.perf_counter() - t0
        shape = tuple(meta["image_shape"])
        return ReconstructionResult(images=vox.reshape((spectra.shape[0],) + shape).astype(np.float64),
                                    method=self.name, parameters=self.parameters, selection=self.selection,
                                    grid=tuple(meta["grid"]), fov=np.asarray(meta["fov"]),
                                    center=np.asarray(meta["center"]), seconds=seconds)
