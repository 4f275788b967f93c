"""MDF v2 (MPI Data Format) reading and writing, without torch.

Public API::

    from mdf_io import read_system_matrix, read_measurement, read_reconstruction
    from mdf_io import write_system_matrix, write_measurement, write_reconstruction, write_mdf
    from mdf_io import MDFFile, SystemMatrix, Measurement, Reconstruction, MDFHeader
    from mdf_io import atomic_output, atomic_outputs   # all-or-nothing output files

``read_system_matrix`` / ``read_measurement`` accept a path or an open ``MDFFile``.
"""
from .atomic import atomic_output, atomic_outputs
from .containers import Measurement, Reconstruction, SystemMatrix
from .geometry import Geometry, RowIndex, frequency_axis
from .errors import (MDFDiskFullError, MDFError, MDFFormatError, MDFMismatchError, MDFNotSupportedError,
                     MDFWriteError)
from .info import describe
from .metadata import (MDF_VERSION, Acquisition, Calibration, DriveField, Experiment, GeneralInfo,
                       MDFHeader, Receiver, Scanner, Study, Tracer)
from .file import MDFFile
from .measurement import read_measurement
from .reconstruction import read_reconstruction
from .system_matrix import read_system_matrix
from .writer import ReconstructionStream, write_mdf, write_measurement, write_reconstruction, write_system_matrix

__all__ = [
    "Acquisition", "Calibration", "DriveField", "Experiment", "GeneralInfo", "Geometry", "MDFError",
    "MDFFile", "MDFFormatError", "MDFHeader", "MDFMismatchError", "MDFNotSupportedError",
    "MDFDiskFullError", "MDFWriteError", "MDF_VERSION", "Measurement", "Receiver", "Reconstruction", "RowIndex",
    "Scanner", "Study", "SystemMatrix", "Tracer", "atomic_output", "atomic_outputs", "describe",
    "frequency_axis",
    "read_measurement", "read_reconstruction", "read_system_matrix", "write_mdf",
    "ReconstructionStream", "write_measurement", "write_reconstruction", "write_system_matrix",
]
