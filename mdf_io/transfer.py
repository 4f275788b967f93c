"""The receiver's transfer function (MDF 2.1 ``/acquisition/receiver/transferFunction``).

Stored complex, C x K_full in h5py order (K x C in Julia's), as native complex or as the
compound (r, i) type MDF writers use. ``/measurement/isTransferFunctionCorrected`` says whether
the spectra in ``/measurement/data`` were already divided by it.
"""
from __future__ import annotations

from typing import Optional

import h5py
import numpy as np

from . import _h5
from .errors import MDFFormatError, reading

TF = "/acquisition/receiver/transferFunction"


def read_transfer_function(f, name: str = TF, num_channels: Optional[int] = None,
                           num_frequencies: Optional[int] = None) -> Optional[np.ndarray]:
    """The complex transfer function (C, K) at ``name`` of open h5py file ``f``, or None if absent.

    Args:
        num_channels, num_frequencies: expected C and K (None: not checked).
    Raises:
        MDFFormatError: wrong dtype or shape, NaN/Inf.
    """
    if _h5.get(f, name) is None:
        return None
    ds = f[name]
    dt = ds.dtype
    complex_like = dt.kind in "fc" or (dt.names is not None and {"r", "i"} <= set(dt.names))
    if not complex_like:
        raise MDFFormatError(f.filename, name, "complex values (C x K, or compound r/i)", f"dtype {dt}")
    _h5.check_shape(f.filename, name, ds.shape, (num_channels, num_frequencies))
    raw = np.asarray(ds[()])
    tf = raw["r"] + 1j * raw["i"] if raw.dtype.names else raw.astype(np.complex128)
    _h5.check_finite(f.filename, name, tf)
    return np.asarray(tf, np.complex128)


def read_transfer_function_file(path) -> np.ndarray:
    """The transfer function of an MDF file (``/acquisition/receiver/transferFunction``) or of an
    HDF5 file holding ``/transferFunction`` (C x K complex, MPIFiles' export), as (C, K) complex."""
    with reading(path), h5py.File(path, "r") as f:
        for name in (TF, "/transferFunction"):
            tf = read_transfer_function(f, name)
            if tf is not None:
                return np.atleast_2d(tf)
    raise MDFFormatError(path, TF, "a transfer function (C x K complex) in "
                         f"'{TF}' or '/transferFunction'", "neither")


def write_transfer_function(f, tf) -> None:
    """Write (C, K) complex ``tf`` to ``/acquisition/receiver/transferFunction`` of open file ``f``."""
    f.require_group("/acquisition/receiver").create_dataset("transferFunction",
                                                           data=np.atleast_2d(np.asarray(tf, np.complex128)))
