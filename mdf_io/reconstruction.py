"""Reading the ``/reconstruction`` group (Q frames x P voxels x S channels)."""
from __future__ import annotations

import json
import math

import numpy as np

from . import _h5
from .containers import Reconstruction
from .errors import MDFFormatError, reading
from .file import opened

DATA = "/reconstruction/data"


def reconstruction_of(mdf) -> Reconstruction:
    """The ``/reconstruction`` group of open file ``mdf`` (images Q x image shape, channel 0)."""
    f = mdf.h5
    ds = _h5.require(f, DATA)
    shape = _h5.shape_of(f, DATA, ds)
    if len(shape) != 3 or min(shape) < 1:
        raise MDFFormatError(mdf.path, DATA, "shape (Q, P, S) with Q, P, S >= 1", f"shape {shape}")
    _h5.check_type(f, DATA, ds)
    if ds.dtype.kind not in "iuf":
        raise MDFFormatError(mdf.path, DATA, "real numbers", f"dtype {ds.dtype}")
    size = _h5.read_array(f, "/reconstruction/size", shape=(3,), kinds="iu", required=False)
    size = tuple(int(v) for v in size) if size is not None else (shape[1], 1, 1)
    if min(size) < 1 or math.prod(size) != shape[1]:
        raise MDFFormatError(mdf.path, "/reconstruction/size",
                             f"3 positive integers with product {shape[1]} (P)", f"{size}")
    fov = _h5.read_array(f, "/reconstruction/fieldOfView", shape=(3,), required=False)
    ctr = _h5.read_array(f, "/reconstruction/fieldOfViewCenter", shape=(3,), required=False)
    _h5.check_stored(f, DATA, ds)
    data = np.asarray(_h5.read(f, DATA, ds, np.s_[:, :, 0]))
    _h5.check_finite(mdf.path, DATA, data)
    nx, ny, nz = size
    image_shape = (ny, nx) if nz == 1 else (nz, ny, nx)
    return Reconstruction(images=data.reshape((shape[0],) + image_shape), grid=size,
                          fov=np.zeros(3) if fov is None else fov,
                          center=np.zeros(3) if ctr is None else ctr,
                          method=_h5.read_str(f, "/reconstruction/_method", ""),
                          parameters=_parameters(mdf), header=mdf.header,
                          source=str(mdf.path))


def _parameters(mdf) -> dict:
    name = "/reconstruction/_parameters"
    text = _h5.read_str(mdf.h5, name, "{}")
    try:
        params = json.loads(text)
    except ValueError as exc:
        raise MDFFormatError(mdf.path, name, "a JSON object", f"invalid JSON ({exc})") from None
    if not isinstance(params, dict):
        raise MDFFormatError(mdf.path, name, "a JSON object", type(params).__name__)
    return params


def read_reconstruction(source) -> Reconstruction:
    """Read the ``/reconstruction`` group of ``source`` (a path or an open :class:`MDFFile`)."""
    with reading(getattr(source, "path", source)), opened(source) as mdf:
        return reconstruction_of(mdf)
