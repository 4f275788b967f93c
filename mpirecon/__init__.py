"""mpirecon: Magnetic Particle Imaging reconstruction toolkit.

Data flow: :mod:`mdf_io` (files) -> :mod:`mpirecon` (selection, interface, simulation) ->
reconstruction plugins (:mod:`baselines`, :mod:`baselines.learned`, :mod:`mpirecon_dernet`); shared
infrastructure of learned methods in :mod:`mpirecon.learning` (imports torch; `import mpirecon` does not).
"""
from mpirecon._version import __version__
from mpirecon.errors import UsageError, WeightsError
from mpirecon.io.loading import load_measurement_for, load_system_matrix
from mpirecon.reconstructor import (Capabilities, ReconstructionResult, Reconstructor, ReconstructorConfig,
                            ReconstructorError)
from mpirecon.registry import ENTRY_POINT_GROUP, list_reconstructors, load_reconstructor
from mpirecon.preprocess.selection import (DEFAULT_SNR_THRESHOLD, SelectionCriteria, apply_selection,
                        select_frequencies, selected_system_matrix)

__all__ = [
    "Capabilities", "DEFAULT_SNR_THRESHOLD", "ENTRY_POINT_GROUP", "ReconstructionResult",
    "Reconstructor", "ReconstructorConfig", "ReconstructorError", "SelectionCriteria", "UsageError", "WeightsError",
    "__version__", "apply_selection", "list_reconstructors", "load_measurement_for",
    "load_reconstructor", "load_system_matrix", "select_frequencies", "selected_system_matrix",
]
