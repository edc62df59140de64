"""The synthetic world: a small, fully known world of shapes, signs and requests in which every part
of the toolkit runs for real on a CPU, with ground truth.

- ``Scene`` / ``Request``: structured scenes and requests (canonical JSON), ``parse_request`` reads
  request text back, with an explicitness level per constraint; ``phrase_request`` writes text.
- ``World``: samples requests and edit sources, generates imperfect images (``WorldGenerator``,
  ``GeneratorConfig``), and finds the record behind any image it made (``World.lookup``).
- ``judge`` / ``Truth`` / ``Finding``: true per-dimension scores, findings with descriptions, the
  hidden human utility (evaluation only), ``false_findings`` and ``check_finding``.
- ``make_pairs`` / ``save_pairs`` / ``load_pairs``: labelled preference pairs; ``make_bench``:
  pointwise request sets for Generate-Critique-Refine and RL.

See docs/synthetic-world.md.
"""

from .generator import Decision, Generation, GenerationRecord, GeneratorConfig, WorldGenerator
from .labeler import (
    EVAL_KEY,
    PAIR_VIVIDNESS,
    BenchItem,
    LabelerConfig,
    load_bench,
    load_pairs,
    make_bench,
    make_pairs,
    save_bench,
    save_pairs,
    strip_eval,
)
from .parse import parse_request, parse_request_verbose
from .phrase import phrase_request
from .render import Artefact, render_scene
from .request import Constraint, Request
from .sample import RequestConfig
from .scene import Obj, Scene, Sign
from .truth import Finding, Truth, check_finding, false_findings, judge, vividness_bonus
from .world import Registry, World, default_world, registry_path

__all__ = [
    "Artefact",
    "BenchItem",
    "Constraint",
    "Decision",
    "EVAL_KEY",
    "Finding",
    "Generation",
    "GenerationRecord",
    "GeneratorConfig",
    "LabelerConfig",
    "Obj",
    "PAIR_VIVIDNESS",
    "Registry",
    "Request",
    "RequestConfig",
    "Scene",
    "Sign",
    "Truth",
    "World",
    "WorldGenerator",
    "check_finding",
    "default_world",
    "false_findings",
    "judge",
    "load_bench",
    "load_pairs",
    "make_bench",
    "make_pairs",
    "parse_request",
    "parse_request_verbose",
    "phrase_request",
    "registry_path",
    "render_scene",
    "save_bench",
    "save_pairs",
    "strip_eval",
    "vividness_bonus",
]
