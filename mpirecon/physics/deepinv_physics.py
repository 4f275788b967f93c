"""A frequency-selected MPI system matrix as a deepinv ``LinearPhysics`` (optional extra).

    pip install "mpirecon[deepinv]"

    physics = MPIPhysics(selected_system_matrix(calibration))
    y = physics.measurement(spectra)         # complex (F, R) -> (F, 2R) torch, scaled stacked
    x = deepinv_algorithm(y, physics)         # images (F, 1, Ny, Nx) in concentration units

The physics is the shared :class:`~mpirecon.physics.operator.SystemOperator` (torch backend): images
(B, 1, Ny, Nx) real, measurements (B, 2R) = ``[Re; Im]`` spectra divided by the operator scale
``a``. ``A_dagger`` is the operator's cached filtered-SVD (Tikhonov) inverse; ``prox_l2`` is the
cached ADMM x-update ``(AᵀA + ρI)⁻¹`` with ρ = 1/γ, so deepinv's ADMM/DRS/HQS steps cost one
matrix product. deepinv is imported when :func:`MPIPhysics` is called, never by ``import mpirecon``.
"""
from __future__ import annotations

import functools

import numpy as np

from mdf_io import SystemMatrix

from mpirecon.physics.operator import operator_for
from mpirecon.reconstructor import ReconstructorError


def _deepinv():
    """The deepinv module, or a one-line :class:`ReconstructorError` saying how to install it."""
    try:
        import deepinv
    except Exception as exc:  # torchvision built for another torch raises RuntimeError, not ImportError
        why = (str(exc).splitlines() or [""])[0]
        raise ReconstructorError(f"MPIPhysics needs deepinv: pip install mpirecon[deepinv] "
                                 f"(import failed: {type(exc).__name__}: {why})") from None
    return deepinv


@functools.lru_cache(maxsize=None)
def _physics_class():
    """Define the ``LinearPhysics`` subclass (once, after importing deepinv)."""
    import torch

    base = _deepinv().physics.LinearPhysics

    class _MPIPhysics(base):
        """deepinv ``LinearPhysics`` of a scaled, stacked MPI system matrix (see the module docstring)."""

        def __init__(self, system_matrix: SystemMatrix, *, lam: float = 0.0, rcond: float = 1e-6,
                     dtype: str = "float32", device: str = "cpu"):
            super().__init__(device=device)
            self.op = operator_for(system_matrix, dtype, device, backend="torch")
            self.image_shape = tuple(system_matrix.image_shape)
            self.img_size = (1,) + self.image_shape
            self.lam, self.rcond = float(lam), float(rcond)
            dagger = self.op.tikhonov_inverse(self.lam, self.rcond)  # (P, 2R) float64, cached SVD
            self.dagger = torch.as_tensor(dagger, dtype=self.op.A.dtype, device=self.op.A.device)

        def _flat(self, x):
            return x.reshape(x.shape[0], -1)

        def _image(self, v):
            return v.reshape((v.shape[0], 1) + self.image_shape)

        def A(self, x, **kwargs):
            """Images (B, 1, Ny, Nx) -> scaled stacked spectra (B, 2R)."""
            return self._flat(x) @ self.op.A.T

        def A_adjoint(self, y, **kwargs):
            """Aᵀ: (B, 2R) -> (B, 1, Ny, Nx)."""
            return self._image(y @ self.op.A)

        def A_dagger(self, y, **kwargs):
            """``(AᵀA + λI)⁻¹Aᵀ y`` from the cached SVD (singular values below rcond·s_max dropped):
            (B, 2R) -> (B, 1, Ny, Nx)."""
            return self._image(y @ self.dagger.T)

        def prox_l2(self, z, y, gamma, **kwargs):
            """``argmin_x γ/2 ||Ax - y||² + 1/2 ||x - z||²`` = ``(AᵀA + I/γ)⁻¹ (Aᵀy + z/γ)`` with the
            operator's cached x-update for ρ = 1/γ: z (B, 1, Ny, Nx), y (B, 2R) -> (B, 1, Ny, Nx)."""
            rho = 1.0 / float(gamma)
            rhs = y @ self.op.A + rho * self._flat(z)
            return self._image(self.op.x_update(rho).solve(rhs.T).T)

        def measurement(self, spectra):
            """Complex spectra (F, R) in the matrix's row order -> measurements (F, 2R) for this physics."""
            return self.op.data(np.asarray(spectra)).T

    return _MPIPhysics


def MPIPhysics(system_matrix: SystemMatrix, *, lam: float = 0.0, rcond: float = 1e-6,
               dtype: str = "float32", device: str = "cpu"):
    """A deepinv ``LinearPhysics`` for a frequency-selected system matrix.

    Args:
        system_matrix: the (selected) :class:`mdf_io.SystemMatrix`; its operator (and SVD,
            x-update factorisations) are shared with every method bound to it.
        lam: Tikhonov λ of ``A_dagger`` relative to the scaled matrix (0: pseudo-inverse).
        rcond: singular values below ``rcond * s_max`` are dropped in ``A_dagger``.
        dtype, device: torch precision and device of the physics.
    Raises:
        ReconstructorError: deepinv is not installed (``pip install mpirecon[deepinv]``).
    """
    return _physics_class()(system_matrix, lam=lam, rcond=rcond, dtype=dtype, device=device)
