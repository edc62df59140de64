"""A scripted PARROT teacher with known behaviours, so that hindsight and filtering are checked for real.

``ScriptedTeacher`` answers both PARROT prompts from the prompt text alone:

- the hindsight prompt: it reads the request and (when anchored) the stated label, and writes a
  protocol rationale with ``format.render_pairwise`` whose flaws follow the pair's scenario;
- the consistency prompt: it reads only the ``<analysis>`` block and answers from the evidence the
  text names ("Image X matches the request exactly"), never from a label.

Scenarios (per pair and sample index):

``good``          scores, winners and text all support the label              -> kept
``hallucinated``  the scores favour the other image (stated preference = label) -> "scores contradict label"
``inconsistent``  scores support the label, the text argues for the other image -> teacher predicts another
``leaky``         a good rationale that mentions the raters                       -> "mentions the label"
``garbage``       no protocol at all                                              -> "parse failed"
``flaky``         a good rationale; the third consistency vote disagrees        -> kept with confidence 2/3 (3 votes)
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence

from ..backends.scripted import ScriptedBackend
from ..conversation import Conversation
from ..format import render_pairwise
from ..rubric import dimensions_for
from ..schema import PairwiseCritique, Preference, PreferencePair

SCENARIOS = ("good", "hallucinated", "inconsistent", "leaky", "garbage", "flaky")
KEPT_SCENARIOS = ("good", "flaky")
_OTHER = {"A": "B", "B": "A", "tie": "A"}
_REQUEST_RE = re.compile(r"^(?:User request|Editing instruction): (.*)$", re.M)
_ANALYSIS_RE = re.compile(r"<analysis>\n(.*?)\n</analysis>", re.S)
_EVIDENCE_RE = re.compile(r"Image ([AB]) matches the request exactly")
_LABELS = {
    "Image A is better than Image B": "A",
    "Image B is better than Image A": "B",
    "equally good overall (a tie)": "tie",
}


def png(color: tuple[int, int, int], size: int = 32) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buf, format="PNG")
    return buf.getvalue()


def rationale(task: str, label: Preference, scenario: str) -> str:
    """The protocol text the teacher writes for a pair with ``label`` under ``scenario``."""
    if scenario == "garbage":
        return "I am not able to judge these two pictures right now."
    other = _OTHER[label]
    score_side = other if scenario == "hallucinated" else label
    text_side = other if scenario == "inconsistent" else label
    scores_a: dict[str, float | None] = {}
    scores_b: dict[str, float | None] = {}
    winners: dict[str, Preference | None] = {}
    justifications: dict[str, str] = {}
    na: list[str] = []
    for d in dimensions_for(task):
        if d.allows_na:
            scores_a[d.key] = scores_b[d.key] = None
            winners[d.key] = None
            na.append(d.key)
            justifications[d.key] = "The request asks for no text."
            continue
        if score_side == "tie":
            scores_a[d.key] = scores_b[d.key] = 3.0
        else:
            scores_a[d.key] = 3.5 if score_side == "A" else 2.0
            scores_b[d.key] = 3.5 if score_side == "B" else 2.0
        winners[d.key] = score_side
        if text_side == "tie":
            just = "Both images show the same content with the same care."
        else:
            loser = "B" if text_side == "A" else "A"
            just = f"Image {text_side} matches the request exactly. Image {loser} misses part of {d.title.lower()}."
        if scenario == "flaky":
            just += " The two look similar at a glance."
        justifications[d.key] = just
    summary = "Overall the comparison is settled by the aspects above."
    if scenario == "leaky":
        summary += " The raters preferred this outcome as well."
    c = PairwiseCritique(
        task=task,
        request_analysis="The request names objects, counts and colours that must all be checked.",
        scores_a=scores_a,
        scores_b=scores_b,
        winners=winners,
        justifications=justifications,
        na=na,
        summary=summary,
        preference=label,
        refinement_comments="State the count and the colour of every object explicitly.",
        refined_request="Exactly the objects named, each with its colour stated, on a plain background.",
    )
    return render_pairwise(c)


class ScriptedTeacher:
    """``teacher(conversation, sample_index) -> text`` for both PARROT prompts; see the module docs.

    ``plan`` maps a request to its label (the teacher's own opinion, used when the prompt states
    none) and its scenario per sample index (the last one repeats). ``interrupt_after`` raises
    ``KeyboardInterrupt`` once that many hindsight prompts were answered (a crash mid-run).
    """

    def __init__(self, plan: dict[str, tuple[Preference, Sequence[str]]], interrupt_after: int | None = None):
        self.plan = plan
        self.interrupt_after = interrupt_after
        self.hindsight_calls = 0
        self.consistency_calls = 0

    def _scenario(self, request: str, index: int) -> str:
        scenarios = self.plan[request][1]
        return scenarios[min(index, len(scenarios) - 1)]

    def __call__(self, conv: Conversation, index: int) -> str:
        text = "\n".join(m.text for m in conv.messages)
        m = _REQUEST_RE.search(text)
        if m is None:
            raise ValueError("no request in the prompt")
        request = m.group(1).strip()
        analysis = _ANALYSIS_RE.search(text)
        if analysis is not None:
            self.consistency_calls += 1
            return self._answer(analysis.group(1), index)
        if self.interrupt_after is not None and self.hindsight_calls >= self.interrupt_after:
            raise KeyboardInterrupt("simulated crash")
        if index == 0:
            self.hindsight_calls += 1
        label = next((v for k, v in _LABELS.items() if k in text), self.plan[request][0])
        task = "edit" if "Editing instruction:" in text else "t2i"
        return rationale(task, label, self._scenario(request, index))

    @staticmethod
    def _answer(analysis: str, vote: int) -> str:
        sides = _EVIDENCE_RE.findall(analysis)
        a, b = sides.count("A"), sides.count("B")
        answer = "A" if a > b else "B" if b > a else "tie"
        if "similar at a glance" in analysis and vote == 2:
            answer = {"A": "B", "B": "A", "tie": "A"}[answer]
        return f"Looking at the analysis, the evidence is clear.\nAnswer: {answer}"

    def backend(self, name: str = "scripted-teacher") -> ScriptedBackend:
        return ScriptedBackend(self, name=name)


def make_pairs(
    plan_items: Sequence[tuple[Preference, Sequence[str]]], edit_every: int = 3
) -> tuple[list[PreferencePair], dict[str, tuple[Preference, Sequence[str]]]]:
    """Pairs (every ``edit_every``-th an edit) with distinct requests and images, and the teacher's plan."""
    pairs: list[PreferencePair] = []
    plan: dict[str, tuple[Preference, Sequence[str]]] = {}
    for i, (label, scenarios) in enumerate(plan_items):
        request = f"{i + 1} red cubes and {i + 2} blue spheres on a table"
        edit = edit_every > 0 and i % edit_every == edit_every - 1
        if edit:
            request = f"add {i + 1} green cones next to the cube"
        pairs.append(
            PreferencePair(
                request=request,
                image_a=png((10 * i % 256, 100, 50)),
                image_b=png((10 * i % 256, 50, 100)),
                source=png((200, 200, 10 * i % 256)) if edit else None,
                label=label,
                meta={"source_dataset": "alpha" if i % 2 == 0 else "beta", "scenario": list(scenarios)},
            )
        )
        plan[request] = (label, tuple(scenarios))
    return pairs, plan
