"""Compatibility module: the reader was split by job. Import from :mod:`mdf_io` instead.

* :mod:`mdf_io.file` -- :class:`MDFFile` (open, version check, lazy access)
* :mod:`mdf_io.schema` -- metadata table (HDF5 path <-> header field), read and write
* :mod:`mdf_io.layout`, :mod:`mdf_io.spectra` -- data layout and spectra
* :mod:`mdf_io.rows` -- available / wanted rows and SNR
* :mod:`mdf_io.measurement` -- background and averaging
* :mod:`mdf_io.system_matrix`, :mod:`mdf_io.reconstruction` -- the typed readers
"""
from .file import MDFFile, opened
from .layout import DataLayout
from .measurement import read_measurement
from .reconstruction import read_reconstruction
from .system_matrix import read_system_matrix

__all__ = ["DataLayout", "MDFFile", "opened", "read_measurement", "read_reconstruction",
           "read_system_matrix"]
