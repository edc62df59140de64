"""The critique output format (the protocol), defined once as data.

The renderer (``render_critique`` / ``render_pairwise``), the prompt templates (through
``skeleton``) and the parser (``rationalrewards.parsing``) all read the headers below.
It is the format the public RationalRewards-8B checkpoints write::

    # User Request Analysis
    <analysis>
    # Detailed Judgement
    1. <Dimension title>:
    ## Justification: <text>
    ## Score: <1-4 float, or N/A where the rubric allows it>
    ...
    # Summary: <text>

    # User Request Refinement:
    ## Refinement Comments: <text>
    ## Refined Request: <text>

Pairwise critiques replace ``## Score:`` by ``## Score A:``, ``## Score B:`` and
``## Winner:`` (``Image A`` / ``Image B`` / ``Tie``, ``N/A`` when both scores are N/A),
and add one line of their own after the summary::

    # Overall Preference: Image A

The refinement section is optional in pairwise critiques (rendered when present).
Dimension titles and numbering come from ``rubric.dimensions_for(task)``.

Free text inside a section may span lines and contain anything, except that a
line must not begin with a section label of this protocol (e.g. ``Score:`` or
``# Summary``; such a line starts a new section when parsed, or is kept as text when
that section was already read), and ``</think>`` ends a reasoning block (the parser
drops everything up to it).

Overall preference: the public checkpoints write none; ``parsing`` then derives it from
the scores and says so in ``parse_errors``. Templates ask for it (see ``skeleton``).
"""

from __future__ import annotations

from dataclasses import dataclass

from .rubric import Dimension, Task, dimensions_for
from .schema import Critique, PairwiseCritique

FORMAT_VERSION = "1"


@dataclass(frozen=True)
class Header:
    """One section header of the protocol.

    ``level`` is the number of ``#``; ``colon`` whether the label ends with ``:``;
    ``inline`` whether the value follows on the same line (else on the lines below);
    ``aliases`` are other labels the parser accepts for it (normalized, see ``parsing``).
    """

    key: str
    label: str
    level: int
    colon: bool = True
    inline: bool = True
    aliases: tuple[str, ...] = ()
    placeholder: str = ""

    def line(self, value: str | None = None) -> str:
        head = "#" * self.level + " " + self.label + (":" if self.colon else "")
        if value is None:
            return head
        if self.inline:
            return f"{head} {value}" if value else head
        return f"{head}\n{value}" if value else head


ANALYSIS = Header(
    "analysis",
    "User Request Analysis",
    1,
    colon=False,
    inline=False,
    aliases=("request analysis", "analysis"),
    placeholder="[what the request asks for, what it implies, and what must be checked]",
)
JUDGEMENT = Header("judgement", "Detailed Judgement", 1, colon=False, aliases=("detailed judgment", "judgement"))
JUSTIFICATION = Header(
    "justification",
    "Justification",
    2,
    aliases=("reasoning", "rationale", "analysis", "explanation"),
    placeholder="[what you see in the image(s) and why it earns the score]",
)
SCORE = Header("score", "Score", 2, placeholder="[float score]")
SCORE_A = Header("score_a", "Score A", 2, placeholder="[float score for image A]")
SCORE_B = Header("score_b", "Score B", 2, placeholder="[float score for image B]")
WINNER = Header("winner", "Winner", 2, placeholder="[Image A, Image B, Tie]")
SUMMARY = Header("summary", "Summary", 1, aliases=("overall summary", "final summary"), placeholder="[a summary]")
OVERALL = Header(
    "preference",
    "Overall Preference",
    1,
    aliases=("preference", "overall winner", "final preference", "final verdict", "overall preferred"),
    placeholder="[Image A, Image B, Tie]",
)
REFINEMENT = Header("refinement", "User Request Refinement", 1, aliases=("request refinement", "refinement"))
COMMENTS = Header(
    "refinement_comments",
    "Refinement Comments",
    2,
    aliases=("comments",),
    placeholder="[what the request should state more explicitly so that a generator gets it right]",
)
REFINED = Header(
    "refined_request",
    "Refined Request",
    2,
    aliases=("refined prompt", "refined instruction", "improved request"),
    placeholder="[the improved request, written as a user would write it]",
)

TOP_LEVEL: tuple[Header, ...] = (ANALYSIS, JUDGEMENT, SUMMARY, OVERALL, REFINEMENT, COMMENTS, REFINED)
FIELDS: tuple[Header, ...] = (JUSTIFICATION, SCORE, SCORE_A, SCORE_B, WINNER)
HEADERS: tuple[Header, ...] = TOP_LEVEL + FIELDS

NA = "N/A"
# How a choice (per-dimension winner, overall preference) is written.
CHOICE_TEXT: dict[str, str] = {"A": "Image A", "B": "Image B", "tie": "Tie"}


def dimension_line(number: int, dim: Dimension) -> str:
    """The header that opens one dimension's block, e.g. ``1. <title>:``."""
    return f"{number}. {dim.title}:"


def format_score(value: float) -> str:
    """Shortest text that reads back as the same float (``3.0`` is written ``3``)."""
    s = repr(float(value))
    return s[:-2] if s.endswith(".0") else s


def _score_text(value: float | None, key: str, na: list[str]) -> str | None:
    if value is not None:
        return format_score(value)
    return NA if key in na else None


def _join(lines: list[str]) -> str:
    return "\n".join(lines) + "\n"


def _head(c: Critique | PairwiseCritique) -> list[str]:
    lines: list[str] = []
    if c.request_analysis is not None:
        lines.append(ANALYSIS.line(c.request_analysis))
    lines.append(JUDGEMENT.line())
    return lines


def _refinement(c: Critique | PairwiseCritique) -> list[str]:
    if c.refinement_comments is None and c.refined_request is None:
        return []
    lines = ["", REFINEMENT.line("")]
    if c.refinement_comments is not None:
        lines.append(COMMENTS.line(c.refinement_comments))
    if c.refined_request is not None:
        lines.append(REFINED.line(c.refined_request))
    return lines


def render_critique(c: Critique) -> str:
    """The protocol text of a pointwise critique; ``parse_critique`` reads it back to the same values.

    A dimension with neither justification nor score is left out; a score that is
    None is written ``N/A`` when the dimension is in ``c.na``, else its line is left out.
    """
    lines = _head(c)
    for i, dim in enumerate(dimensions_for(c.task), start=1):
        just = c.justifications.get(dim.key)
        score = _score_text(c.scores.get(dim.key), dim.key, c.na)
        if just is None and score is None:
            continue
        lines.append(dimension_line(i, dim))
        if just is not None:
            lines.append(JUSTIFICATION.line(just))
        if score is not None:
            lines.append(SCORE.line(score))
    if c.summary is not None:
        lines.append(SUMMARY.line(c.summary))
    lines += _refinement(c)
    return _join(lines)


def render_pairwise(c: PairwiseCritique) -> str:
    """The protocol text of a pairwise critique; ``parse_pairwise`` reads it back to the same values."""
    lines = _head(c)
    for i, dim in enumerate(dimensions_for(c.task), start=1):
        just = c.justifications.get(dim.key)
        sa = _score_text(c.scores_a.get(dim.key), dim.key, c.na)
        sb = _score_text(c.scores_b.get(dim.key), dim.key, c.na)
        winner = c.winners.get(dim.key)
        if winner is not None:
            win_text: str | None = CHOICE_TEXT[winner]
        elif sa == NA and sb == NA:
            win_text = NA
        else:
            win_text = None
        if just is None and sa is None and sb is None and win_text is None:
            continue
        lines.append(dimension_line(i, dim))
        if just is not None:
            lines.append(JUSTIFICATION.line(just))
        if sa is not None:
            lines.append(SCORE_A.line(sa))
        if sb is not None:
            lines.append(SCORE_B.line(sb))
        if win_text is not None:
            lines.append(WINNER.line(win_text))
    if c.summary is not None:
        lines.append(SUMMARY.line(c.summary))
    if c.preference is not None:
        lines.append(OVERALL.line(CHOICE_TEXT[c.preference]))
    lines += _refinement(c)
    return _join(lines)


def _or_na(placeholder: str, dim: Dimension) -> str:
    return placeholder[:-1] + f" or {NA}]" if dim.allows_na else placeholder


def skeleton(task: Task | str, pairwise: bool = False) -> str:
    """The output-format instructions templates show the model: every header, with placeholders."""
    lines = [ANALYSIS.line(ANALYSIS.placeholder), JUDGEMENT.line()]
    for i, dim in enumerate(dimensions_for(task), start=1):
        lines.append(dimension_line(i, dim))
        lines.append(JUSTIFICATION.line(JUSTIFICATION.placeholder))
        if pairwise:
            for h in (SCORE_A, SCORE_B, WINNER):
                lines.append(h.line(_or_na(h.placeholder, dim)))
        else:
            lines.append(SCORE.line(_or_na(SCORE.placeholder, dim)))
    lines.append(SUMMARY.line(SUMMARY.placeholder))
    if pairwise:
        lines.append(OVERALL.line(OVERALL.placeholder))
    else:
        lines += ["", REFINEMENT.line(""), COMMENTS.line(COMMENTS.placeholder), REFINED.line(REFINED.placeholder)]
    return "\n".join(lines)
