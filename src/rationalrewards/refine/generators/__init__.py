"""Generators for the refine loop: the contract, spec loading, and adapters (imported lazily by spec)."""

from .base import GENERATORS, Generator, GeneratorError, load_generator
from .callable import CallableGenerator

__all__ = ["GENERATORS", "CallableGenerator", "Generator", "GeneratorError", "load_generator"]
