"""PARROT phase 1, hindsight: a teacher writes pairwise rationales that explain a known human preference.

The prompt is ``templates/parrot-hindsight.jinja``: the reward model's own pairwise task, rubric and
output format (from the shared template pieces, so titles and levels come from ``rubric.py``), plus
one paragraph stating the label, plus a request for the refinement section (whose headers come from
``format.py``) so that projected pointwise targets can carry a refined request. ``mode="direct"``
renders the same prompt without the label paragraph: the direct-distillation baseline.

One record per pair (``id`` = ``stable_id`` of the pair key and every setting that changes the
output): the k rationale texts with their parsed scores, the teacher, template name and version,
and the sampling settings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import format as fmt
from ..backends import Backend, GenerationConfig, run_sync
from ..conversation import Conversation
from ..parsing import parse_pairwise
from ..schema import PairwiseCritique, PreferencePair, stable_id
from ..templates import TEMPLATE_DIR, PromptTemplate, get_template, rubric_context
from .config import HindsightConfig

HINDSIGHT_TEMPLATE = TEMPLATE_DIR / "parrot-hindsight.jinja"
TEMPLATE_NAME = "parrot-hindsight"

# the label, as the hindsight prompt states it
LABEL_STATEMENTS: dict[str, str] = {
    "A": "Image A is better than Image B",
    "B": "Image B is better than Image A",
    "tie": "neither image is better than the other: they are equally good overall (a tie)",
}


def refinement_format() -> str:
    """The protocol lines of the refinement section, as the hindsight prompt asks for them."""
    return "\n".join(
        [
            "After the overall preference, add this section, about how the request itself could be written "
            "so that a generator gets it right:",
            "",
            fmt.REFINEMENT.line(""),
            fmt.COMMENTS.line(fmt.COMMENTS.placeholder),
            fmt.REFINED.line(fmt.REFINED.placeholder),
        ]
    )


def load_hindsight_template(template: str | Path | None = None) -> PromptTemplate:
    return get_template(template if template is not None else HINDSIGHT_TEMPLATE)


def hindsight_conversation(
    pair: PreferencePair, template: str | Path | PromptTemplate | None = None, anchored: bool = True
) -> Conversation:
    """The teacher's prompt for ``pair``; ``anchored`` states the pair's label (which must then be set)."""
    tpl = template if isinstance(template, PromptTemplate) else load_hindsight_template(template)
    if anchored and pair.label is None:
        raise ValueError("a label-anchored hindsight prompt needs a labelled pair (label A, B or tie)")
    context = {
        **rubric_context(pair.task, pairwise=True),
        "request": pair.request,
        "label_statement": LABEL_STATEMENTS[pair.label] if anchored and pair.label else None,
        "refinement_format": refinement_format(),
    }
    images = {"a": pair.image_a, "b": pair.image_b}
    if pair.source is not None:
        images["source"] = pair.source
    return tpl.render(context, images)


def generation_config(config: HindsightConfig) -> GenerationConfig:
    return GenerationConfig(
        n=config.samples,
        temperature=config.temperature,
        top_p=config.top_p,
        max_tokens=config.max_tokens,
        seed=config.seed,
    )


def sampling_settings(config: HindsightConfig) -> dict[str, Any]:
    return dataclasses.asdict(generation_config(config))


def teacher_name(teacher: str | Backend) -> str:
    """What identifies the teacher in ids and records: the spec string, or the backend's name."""
    return teacher if isinstance(teacher, str) else getattr(teacher, "name", type(teacher).__name__)


def hindsight_id(pair: PreferencePair, config: HindsightConfig, teacher: str, template: PromptTemplate) -> str:
    """The record key: the pair and everything that changes what the teacher writes."""
    label = pair.label if config.mode == "anchored" else None
    return stable_id("hindsight", pair.key(), label, config.mode, teacher, template.version, sampling_settings(config))


def _sample_record(text: str, critique: PairwiseCritique) -> dict[str, Any]:
    return {
        "text": text,
        "parse_status": critique.parse_status,
        "parse_errors": critique.parse_errors,
        "preference": critique.preference,
        "scores_a": critique.scores_a,
        "scores_b": critique.scores_b,
        "winners": critique.winners,
    }


def base_record(pair: PreferencePair) -> dict[str, Any]:
    """The fields every PARROT record of a pair carries."""
    return {
        "pair_key": pair.key(),
        "request": pair.request,
        "task": pair.task.value,
        "label": pair.label,
        "source_dataset": pair.meta.get("source_dataset"),
    }


async def agenerate_hindsight(
    pairs: Sequence[PreferencePair],
    backend: Backend,
    config: HindsightConfig,
    teacher: str | None = None,
    template: PromptTemplate | None = None,
) -> list[dict[str, Any]]:
    """One record per pair (without ``id``): k rationales, parsed, with provenance."""
    tpl = template or load_hindsight_template(config.template)
    anchored = config.mode == "anchored"
    gen = generation_config(config)
    settings = sampling_settings(config)
    name = teacher or teacher_name(backend)
    records: list[dict[str, Any] | None] = [None] * len(pairs)
    convs: list[Conversation] = []
    slots: list[int] = []
    for i, pair in enumerate(pairs):
        rec = {
            **base_record(pair),
            "mode": config.mode,
            "teacher": name,
            "template": TEMPLATE_NAME if config.template is None else str(config.template),
            "template_version": tpl.version,
            "sampling": settings,
            "samples": [],
            "error": None,
        }
        records[i] = rec
        try:
            convs.append(hindsight_conversation(pair, tpl, anchored=anchored))
            slots.append(i)
        except Exception as exc:  # a bad item (no label, unreadable image) fails alone
            rec["error"] = f"input: {type(exc).__name__}: {exc}"
    completions = await backend.agenerate(convs, gen) if convs else []
    if len(completions) != len(convs):
        raise RuntimeError(f"teacher returned {len(completions)} completions for {len(convs)} prompts")
    for i, comp in zip(slots, completions, strict=True):
        rec = records[i]
        assert rec is not None
        if not comp.ok:
            rec["error"] = f"teacher: {comp.error}"
            continue
        task = rec["task"]
        rec["samples"] = [_sample_record(t, parse_pairwise(t, task)) for t in comp.texts]
        if rec["samples"] and all(s["parse_status"] == "failed" for s in rec["samples"]):
            rec["error"] = "parse: no rationale parsed"
    return [r for r in records if r is not None]


def generate_hindsight(
    pairs: Sequence[PreferencePair],
    backend: Backend,
    config: HindsightConfig,
    teacher: str | None = None,
    template: PromptTemplate | None = None,
) -> list[dict[str, Any]]:
    """Sync twin of ``agenerate_hindsight``."""
    return run_sync(agenerate_hindsight(pairs, backend, config, teacher, template))


def failure_reason(record: dict[str, Any]) -> str | None:
    """Why a hindsight record failed, as a short countable reason (None when it did not)."""
    err = str(record.get("error") or "")
    if not err:
        return None
    prefix = err.split(":", 1)[0]
    return {"input": "bad input", "teacher": "teacher error", "parse": "no rationale parsed"}.get(prefix, prefix)
