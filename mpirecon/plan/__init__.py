"""Reconstruction plans: every choice of a reconstruction as validated, saved, re-runnable data,
and the one pipeline that runs them (:func:`run_plan`), with a cache shared between runs."""
from mpirecon.plan.cache import PlanCache
from mpirecon.plan.model import ReconstructionPlan
from mpirecon.plan.pipeline import PlanResult, run_plan

__all__ = ["PlanCache", "PlanResult", "ReconstructionPlan", "run_plan"]
