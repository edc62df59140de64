"""Parser: a hand-written corpus of real-looking outputs, round-trip properties, and fuzzing that it never raises."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rationalrewards.format import render_critique, render_pairwise
from rationalrewards.parsing import parse_critique, parse_pairwise
from rationalrewards.rubric import DIMENSIONS, SCORE_MAX, SCORE_MIN, Task, dimensions_for
from rationalrewards.schema import Critique, PairwiseCritique

CORPUS = Path(__file__).parent / "fixtures" / "outputs"
CASES = sorted(CORPUS.glob("*.txt"))


def test_corpus_is_there():
    assert len(CASES) >= 25
    sidecars = [json.loads(p.with_suffix(".json").read_text()) for p in CASES]
    kinds = {(e["kind"], e["task"]) for e in sidecars}
    assert kinds == {("pointwise", "t2i"), ("pointwise", "edit"), ("pairwise", "t2i"), ("pairwise", "edit")}


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_corpus(path: Path):
    exp = json.loads(path.with_suffix(".json").read_text())
    text = path.read_text()
    if exp["kind"] == "pointwise":
        c = parse_critique(text, task=exp["task"])
        assert c.scores == exp["scores"]
    else:
        c = parse_pairwise(text, task=exp["task"])
        assert c.scores_a == exp["scores_a"]
        assert c.scores_b == exp["scores_b"]
        assert c.winners == exp["winners"]
        assert c.preference == exp["preference"]
    assert c.raw_text == text
    assert c.task == Task(exp["task"])
    assert c.parse_status == exp["status"], c.parse_errors
    assert sorted(c.missing) == sorted(exp["missing"])
    assert sorted(c.na) == sorted(exp["na"])
    assert sorted(c.clamped) == sorted(exp["clamped"])
    if "errors" in exp:
        assert c.parse_errors == exp["errors"]
    for needle in exp.get("errors_contain", []):
        assert any(needle in e for e in c.parse_errors), (needle, c.parse_errors)
    for field in ("summary", "refinement_comments", "refined_request"):
        if field in exp:
            assert getattr(c, field) == exp[field]
    if "analysis_contains" in exp:
        assert exp["analysis_contains"] in c.request_analysis
    if "refined_request_contains" in exp:
        assert exp["refined_request_contains"] in c.refined_request
    for key, needle in exp.get("justifications_contain", {}).items():
        assert needle in c.justifications[key]


def test_failed_parse_has_no_reward():
    c = parse_critique("nothing useful here")
    assert c.parse_status == "failed" and c.reward is None and not c.parse_ok
    p = parse_pairwise("nothing useful here", task="edit")
    assert p.parse_status == "failed" and p.reward_a is None and p.reward_b is None and p.preference is None


def test_never_raises_on_non_text():
    for bad in (None, 3.5, b"# Summary: x", ["x"]):
        c = parse_critique(bad)  # type: ignore[arg-type]
        assert c.parse_status == "failed" and c.parse_errors
        p = parse_pairwise(bad)  # type: ignore[arg-type]
        assert p.parse_status == "failed" and p.parse_errors


def test_bad_task_is_a_caller_error():
    with pytest.raises(ValueError):
        parse_critique("# Summary: x", task="video")


def test_windows_line_endings():
    text = (CORPUS / "pw_t2i_canonical.txt").read_text().replace("\n", "\r\n")
    c = parse_critique(text)
    assert c.parse_status == "ok" and c.scores["text_faithfulness"] == 3.5
    assert c.summary == "A faithful image with a slightly off camera angle and a small seam."


def test_dimension_headers_before_detailed_judgement_are_prose():
    text = (
        "# User Request Analysis\nText Rendering:\n## Score: 1\n"
        "# Detailed Judgement\n1. Text Faithfulness:\n## Score: 3\n"
        "2. Physical and Visual Quality:\n## Score: 3\n3. Text Rendering:\n## Score: 4\n"
    )
    c = parse_critique(text)
    assert c.scores == {"text_faithfulness": 3.0, "physical_quality": 3.0, "text_rendering": 4.0}
    assert "Text Rendering:" in c.request_analysis


def test_ambiguous_title_is_not_a_dimension():
    # "Faithfulness" alone could be text or image faithfulness: neither is guessed.
    text = "# Detailed Judgement\nFaithfulness:\n## Score: 3\n"
    c = parse_critique(text, task="edit")
    assert c.parse_status == "failed"
    assert all(v is None for v in c.scores.values())


_PAIR_HEAD = (
    "# Detailed Judgement\n"
    + "".join(f"{i}. {d.title}:\n## Score A: 3\n## Score B: 3\n" for i, d in enumerate(dimensions_for("t2i"), 1))
    + "# Overall Preference: "
)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Image A", "A"),
        ("image b", "B"),
        ("Output B", "B"),
        ("**B**", "B"),
        ("A", "A"),
        ("B.", "B"),
        ("A>B", "A"),
        ("A < B", "B"),
        ("B ≻ A", "B"),
        ("Tie", "tie"),
        ("It's a tie", "tie"),
        ("a tie", "tie"),
        ("A tie: both are equally good", "tie"),
        ("Both are equally good", "tie"),
        ("Image B is clearly better than Image A", "B"),
        ("Edited Image A, by a wide margin", "A"),
        ("[Image A, Image B, Tie]", None),
        ("the first one", None),
    ],
)
def test_choice_phrasings(line: str, expected: str | None):
    c = parse_pairwise(_PAIR_HEAD + line)
    if expected is None:
        # unreadable: derived from the (equal) scores, and said so
        assert c.preference == "tie" and any("unreadable overall preference" in e for e in c.parse_errors)
    else:
        assert c.preference == expected
        assert not any("preference" in e for e in c.parse_errors)


@pytest.mark.parametrize(
    ("title", "key"),
    [
        ("Quality", "physical_quality"),
        ("Visual Quality", "physical_quality"),
        ("Rendering", "text_rendering"),
        ("Image", None),
        ("Text", None),
        ("Faithfulness", None),
        ("Visual", None),
    ],
)
def test_short_titles(title: str, key: str | None):
    c = parse_critique(f"# Detailed Judgement\n{title}:\n## Score: 2\n", task="edit")
    scored = [k for k, v in c.scores.items() if v is not None]
    assert scored == ([key] if key else [])


# ---------------------------------------------------------------- round trip

_SAFE_FIRST = st.sampled_from(
    [
        "The",
        "the",
        "cube",
        "x",
        "Überall",
        "3D",
        "(see",
        "'quoted'",
        '"A"',
        "«note»",
        "émoji🙂",
        "$5",
        "%",
        "—",
        "中文",
        "a",
    ]
)
_REST = st.lists(
    st.one_of(
        st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=8),
        st.sampled_from(list("#*:_.0123456789/ ")),
        st.sampled_from([" Score: 3.5", " # Summary:", " ## Winner: B", " N/A", " Image A", " 1. ", " **", " <b>"]),
    ),
    max_size=8,
).map("".join)


@st.composite
def free_text(draw) -> str:
    """Text a model could write inside a section: lines never begin with a protocol label (see format.py)."""
    n = draw(st.integers(1, 3))
    lines = [draw(_SAFE_FIRST) + draw(_REST) for _ in range(n)]
    text = "\n".join(lines).strip()
    return text if "</think>" not in text else "plain"


scores = st.one_of(
    st.floats(SCORE_MIN, SCORE_MAX).map(lambda x: round(x * 2) / 2),
    st.floats(SCORE_MIN, SCORE_MAX).map(lambda x: round(x, 1)),
)
optional_text = st.one_of(st.none(), free_text())


@st.composite
def critiques(draw) -> Critique:
    task = draw(st.sampled_from(list(Task)))
    sc: dict[str, float | None] = {}
    just: dict[str, str] = {}
    na: list[str] = []
    for d in dimensions_for(task):
        state = draw(st.sampled_from(["score", "score", "score", "absent"] + (["na"] if d.allows_na else [])))
        if state == "absent":
            continue
        just[d.key] = draw(free_text())
        if state == "na":
            na.append(d.key)
            sc[d.key] = None
        else:
            sc[d.key] = draw(scores)
    return Critique(
        task=task,
        scores=sc,
        justifications=just,
        na=na,
        request_analysis=draw(optional_text),
        summary=draw(optional_text),
        refinement_comments=draw(optional_text),
        refined_request=draw(optional_text),
    )


@st.composite
def pairwise_critiques(draw) -> PairwiseCritique:
    task = draw(st.sampled_from(list(Task)))
    sa: dict[str, float | None] = {}
    sb: dict[str, float | None] = {}
    wins: dict[str, str | None] = {}
    just: dict[str, str] = {}
    na: list[str] = []
    for d in dimensions_for(task):
        state = draw(st.sampled_from(["score", "score", "score", "absent"] + (["na"] if d.allows_na else [])))
        if state == "absent":
            continue
        just[d.key] = draw(free_text())
        if state == "na":
            na.append(d.key)
            sa[d.key] = sb[d.key] = wins[d.key] = None
        else:
            sa[d.key], sb[d.key] = draw(scores), draw(scores)
            wins[d.key] = draw(st.sampled_from(["A", "B", "tie"]))
    return PairwiseCritique(
        task=task,
        scores_a=sa,
        scores_b=sb,
        winners=wins,
        justifications=just,
        na=na,
        preference=draw(st.sampled_from(["A", "B", "tie"])),
        request_analysis=draw(optional_text),
        summary=draw(optional_text),
        refinement_comments=draw(optional_text),
        refined_request=draw(optional_text),
    )


def _expected_status(n_missing: int, n_all: int) -> str:
    return "ok" if n_missing == 0 else ("failed" if n_missing == n_all else "partial")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(critiques())
def test_round_trip_pointwise(c: Critique):
    back = parse_critique(render_critique(c), task=c.task)
    keys = [d.key for d in dimensions_for(c.task)]
    assert back.scores == {k: c.scores.get(k) for k in keys}
    assert back.justifications == c.justifications
    assert sorted(back.na) == sorted(c.na)
    absent = [k for k in keys if k not in c.justifications]
    assert sorted(back.missing) == sorted(absent)
    assert back.parse_status == _expected_status(len(absent), len(keys))
    assert back.clamped == []
    for field in ("request_analysis", "summary", "refinement_comments", "refined_request"):
        assert getattr(back, field) == getattr(c, field), field


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pairwise_critiques())
def test_round_trip_pairwise(c: PairwiseCritique):
    back = parse_pairwise(render_pairwise(c), task=c.task)
    keys = [d.key for d in dimensions_for(c.task)]
    assert back.scores_a == {k: c.scores_a.get(k) for k in keys}
    assert back.scores_b == {k: c.scores_b.get(k) for k in keys}
    assert back.winners == {k: c.winners.get(k) for k in keys}
    assert back.preference == c.preference
    assert back.justifications == c.justifications
    assert sorted(back.na) == sorted(c.na)
    absent = [k for k in keys if k not in c.justifications]
    assert sorted(back.missing) == sorted(absent)
    assert back.parse_status == _expected_status(len(absent), len(keys))
    for field in ("request_analysis", "summary", "refinement_comments", "refined_request"):
        assert getattr(back, field) == getattr(c, field), field


# ---------------------------------------------------------------- fuzz: never raises, always consistent


def _check_consistent(c: Critique | PairwiseCritique, text: object, task: Task) -> None:
    keys = {d.key for d in dimensions_for(task)}
    na_ok = {d.key for d in dimensions_for(task) if d.allows_na}
    assert c.task == task
    if isinstance(text, str):
        assert c.raw_text == text
    assert set(c.missing) <= keys and len(set(c.missing)) == len(c.missing)
    assert set(c.na) <= na_ok
    assert set(c.clamped) <= keys
    if isinstance(c, Critique):
        assert not set(c.missing) & set(c.na)
    n_done = len(keys) - len(c.missing)
    assert c.parse_status == _expected_status(len(c.missing), len(keys))
    assert c.parse_ok == (c.parse_status == "ok")
    assert n_done >= 0
    maps = [c.scores] if isinstance(c, Critique) else [c.scores_a, c.scores_b]
    for m in maps:
        assert set(m) == keys
        for k, v in m.items():
            assert v is None or SCORE_MIN <= v <= SCORE_MAX
            if k not in c.missing and k not in c.na:
                assert v is not None
    for k in c.clamped:
        assert any(m[k] is not None for m in maps)
    if isinstance(c, Critique):
        for k, v in c.scores.items():
            if k not in c.missing and k not in c.na:
                assert v is not None
            if k in c.missing:
                assert v is None
        assert (c.reward is None) or 0.0 <= c.reward <= 1.0
        if c.parse_status == "failed":
            assert c.reward is None
    else:
        assert set(c.winners) == keys
        assert c.preference in (None, "A", "B", "tie")
        assert all(w in (None, "A", "B", "tie") for w in c.winners.values())
    assert all(isinstance(e, str) and e for e in c.parse_errors)


junk = st.lists(
    st.one_of(
        st.text(max_size=10),
        st.sampled_from(
            [
                "\n",
                "#",
                "## ",
                "**",
                ":",
                "Score",
                "Score A",
                "Winner",
                "N/A",
                *[d.title for d in DIMENSIONS],
                "1. ",
                "3.5",
                "Summary",
                "Refined Request",
                "<think>",
                "</think>",
                "Image A",
                "tie",
                "```",
                "\r",
            ]
        ),
    ),
    max_size=60,
).map("".join)


@settings(max_examples=250, deadline=None)
@given(junk, st.sampled_from(list(Task)))
def test_fuzz_random_text(text: str, task: Task):
    _check_consistent(parse_critique(text, task=task), text, task)
    _check_consistent(parse_pairwise(text, task=task), text, task)


@st.composite
def mutated(draw) -> tuple[str, Task, bool]:
    pairwise = draw(st.booleans())
    c = draw(pairwise_critiques() if pairwise else critiques())
    text = render_pairwise(c) if pairwise else render_critique(c)
    lines = text.split("\n")
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["truncate", "drop", "dup", "swap", "insert", "case", "hashes"]))
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        if op == "truncate":
            joined = "\n".join(lines)
            lines = joined[: draw(st.integers(0, len(joined)))].split("\n")
        elif op == "drop":
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "insert":
            lines.insert(i, draw(junk))
        elif op == "case":
            lines[i] = lines[i].upper() if draw(st.booleans()) else lines[i].lower()
        else:
            lines[i] = "#" * draw(st.integers(0, 5)) + lines[i].lstrip("#")
    return "\n".join(lines), c.task, pairwise


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_fuzz_mutated_critiques(case: tuple[str, Task, bool]):
    text, task, pairwise = case
    c = parse_pairwise(text, task=task) if pairwise else parse_critique(text, task=task)
    _check_consistent(c, text, task)
