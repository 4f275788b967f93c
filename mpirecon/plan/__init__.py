"""Reconstruction plans: every choice of a reconstruction as validated, saved, re-runnable data,
and the one pipeline that runs them (:func:`run_plan`), with a cache shared between runs."""
from .cache import PlanCache
from .model import ReconstructionPlan
from .pipeline import PlanResult, run_plan

__all__ = ["PlanCache", "PlanResult", "ReconstructionPlan", "run_plan"]
