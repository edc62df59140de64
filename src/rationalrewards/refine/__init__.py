"""Generate-Critique-Refine: test-time prompt refinement with the reward model's critiques."""

from .constraints import ConstraintCheck, extract_constraints, missing_constraints
from .generators import CallableGenerator, Generator, GeneratorError, load_generator
from .loop import Candidate, RefineItem, RefinePolicy, Round, Trajectory, refine, refine_many

__all__ = [
    "CallableGenerator",
    "Candidate",
    "ConstraintCheck",
    "Generator",
    "GeneratorError",
    "RefineItem",
    "RefinePolicy",
    "Round",
    "Trajectory",
    "extract_constraints",
    "load_generator",
    "missing_constraints",
    "refine",
    "refine_many",
]
