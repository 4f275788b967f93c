"""Write a reconstruction method as a plugin: projected Landweber iteration.

    python examples/write_a_plugin.py

A plugin is a :class:`mpirecon.Reconstructor` subclass with a pydantic ``Config`` (validated
parameters), ``_setup`` (work done once per system matrix) and ``_solve`` (a batch of spectra
-> voxel vectors). It is found through the entry-point group ``mpirecon.reconstructors``; a
package that ships it declares, in its own ``pyproject.toml``::

    [project.entry-points."mpirecon.reconstructors"]
    landweber = "my_package.landweber:ProjectedLandweber"

and after ``pip install my_package`` it appears in ``mpirecon methods``, runs with ``mpirecon run
--method landweber``, and takes part in ``mpirecon bench`` — no change to mpirecon. This script
shows that without installing anything: it writes the metadata pip would write (a ``.dist-info``
folder with ``entry_points.txt``) to a temporary folder and puts it on ``sys.path``.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from pydantic import Field

from mdf_io import SystemMatrix
from mpirecon import ENTRY_POINT_GROUP, Reconstructor, ReconstructorConfig, list_reconstructors, load_reconstructor
from mpirecon.metrics import psnr
from mpirecon.physics.operator import RealOperator
from mpirecon.simulation.datasets import SignalRecipe, generate_signals
from mpirecon.simulation.scanner import ScannerParams
from mpirecon.simulation.system_matrix import simulate_calibration
from mpirecon.preprocess.selection import selected_system_matrix


class LandweberConfig(ReconstructorConfig):
    iterations: int = Field(200, ge=1, le=100000, description="gradient steps")
    nonneg: bool = Field(True, description="project onto x >= 0 after every step")


class ProjectedLandweber(Reconstructor):
    """x <- P(x + ω Aᵀ(b - A x)), ω = 1/||A||₂², batched over frames (columns)."""

    name = "landweber"
    description = "projected Landweber iteration (example plugin)"
    Config = LandweberConfig

    def _setup(self, system_matrix: SystemMatrix) -> None:
        self.op = RealOperator(system_matrix, "float64")  # stacked [Re A; Im A], unit-free scale
        self.step = 1.0 / np.linalg.norm(self.op.A, 2) ** 2

    def _solve(self, spectra: np.ndarray) -> np.ndarray:
        """spectra (F, R) complex -> voxels (F, P), in the matrix's concentration units."""
        a, b = self.op.A, self.op.data(spectra)  # (2R, P), (2R, F)
        x = np.zeros((a.shape[1], b.shape[1]))
        for _ in range(self.config.iterations):  # iterations, not voxels: each step is a matrix product
            x += self.step * (a.T @ (b - a @ x))
            if self.config.nonneg:
                np.maximum(x, 0, out=x)
        return x.T


def register_without_installing(folder: Path) -> None:
    """Make ``landweber`` discoverable as if a package declaring the entry point were installed."""
    dist = folder / "landweber_example-1.0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: landweber-example\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nlandweber = write_a_plugin:ProjectedLandweber\n")
    sys.path.insert(0, str(folder))
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # where write_a_plugin.py lives


def main(argv=None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        register_without_installing(Path(tmp))
        print("registered methods:", ", ".join(list_reconstructors()))
        sm = selected_system_matrix(simulate_calibration(ScannerParams(grid=(12, 12))).calibration)
        signals, images, _ = generate_signals(sm.matrix, sm.image_shape, SignalRecipe(50, (30, 30), seed=1))
        scores = {}
        for name in ("landweber", "pinv"):
            recon = load_reconstructor(name, sm)  # found through the entry point, like any built-in
            scores[name] = float(np.mean(psnr(recon.reconstruct(signals).images, images)))
            print(f"{name:10s} {recon.description}: PSNR {scores[name]:.2f} dB (50 phantoms, 30 dB SNR)")
        sys.path.remove(tmp)
    return scores


if __name__ == "__main__":
    main()
