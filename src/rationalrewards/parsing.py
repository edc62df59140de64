"""Model text -> Critique / PairwiseCritique: rubric-driven, tolerant, and never raising on model text.

The headers come from ``format.py`` and the dimension titles from ``rubric.py``. What is
tolerated: bold markers and bullets around labels, any number of ``#`` (or none when the
label ends with ``:``), any or no numbering, title variants (case, ``&`` for ``and``, a
missing word such as "Visual"), sections in any order, a score before its justification,
scores written ``3.5``, ``**3.5**``, ``3.5/4`` or ``3.5 out of 4``, N/A written ``N/A``,
``n/a``, ``NA``, ``Not applicable`` or ``None``, extra prose, fenced output, a
``<think>...</think>`` block (an unterminated one fails: drafts are not scores), a label
repeated inside text (the first is kept, the repeat read as text), a bracketed placeholder
echoed from the prompt (unreadable, never a number), and truncation.

Failures are explicit, never a made-up number: a dimension without a readable score is
``None`` and listed in ``missing``; N/A where the rubric does not allow it is ``None``
plus an error; an out-of-range score is clamped (``rubric.clamp_score``) and listed in
``clamped``. ``parse_status`` is ``ok`` when every applicable dimension has a score (or an
allowed N/A), ``partial`` when some do, ``failed`` when none do. Every deviation from the
protocol is described in ``parse_errors``.

Pairwise: a dimension counts as parsed when both ``Score A`` and ``Score B`` are read. A
missing or unreadable ``Winner`` is derived from the two scores (higher wins, equal is a
tie) and the derivation is noted in ``parse_errors``. A missing or unreadable
``# Overall Preference`` line (the public checkpoints do not write one) is derived from
the two aggregate rewards (``rubric.aggregate`` over the applicable dimensions; equal is
a tie), also noted in ``parse_errors``; it is derived only when every applicable
dimension parsed (a truncated critique gives no preference rather than a guess from part
of the evidence).
"""

from __future__ import annotations

import re
from typing import Any

from . import format as fmt
from .rubric import DIMENSIONS, Dimension, Task, aggregate, clamp_score, dimensions_for
from .schema import Critique, PairwiseCritique, Preference

# A line that may be a header: a run of markup (bullet, '#'s, bold, numbering), a label, then ':' and a value, or
# the end of the line. Found in two steps for speed: this cheap pattern splits every line start into
# (markup, title, colon, rest); only when the title names something is the markup checked by _PREFIX_RE.
_HEAD_RE = re.compile(r"([ \t#*_>+\-\d.)]*)([A-Za-z][A-Za-z0-9 &/'()-]{0,60})[ \t*_]*(:?)(.*)")
_PREFIX_RE = re.compile(
    r"[ \t]*(?:[-*+>][ \t]+)?(#{1,6})?[ \t]*(\*\*|__)?[ \t]*(?:(\d{1,2})[ \t]*[.):][ \t]*)?(\*\*|__)?[ \t]*"
)
_FENCE_RE = re.compile(r"^[ \t]*```[^\n]*$", re.M)
_WORD_RE = re.compile(r"[a-z0-9]+")
_PAREN_RE = re.compile(r"\([^)]*\)")
_NA_RE = re.compile(r"[\s*_`\[(\"']*(?:n\s*/\s*a|n\.a\.?|na|not[\s_-]+applicable|none)(?![a-z0-9])", re.I)
_NUM_RE = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?")
_CMP_RE = re.compile(r"(?<![a-z])([ab])\s*(>=|<=|>|<|≥|≤|≻|≺)\s*([ab])(?![a-z])", re.I)
_AB_RE = re.compile(
    r"\b(?:image|output|picture|option|candidate|response|edit|generation|img)\s*[-_#]?\s*([ab])(?![a-z0-9])", re.I
)
_BARE_RE = re.compile(r"[\s*_`\[(\"']*([ab])(?=[\s*_`\])\"'.,:;!]|\Z)(?!\s+(?:tie|draw)\b)", re.I)
_TIE_RE = re.compile(r"\b(?:tie|tied|draw)\b", re.I)
_WEAK_TIE_RE = re.compile(r"\b(?:equal|equally|same|neither|both|even)\b", re.I)

_LABEL_STOP = frozenset({"and", "for", "of"})
_DIM_STOP = frozenset({"and", "of", "to"})

_TOP = 1
_FIELD = 2
_DIM = 3


def _label_key(title: str) -> str:
    return " ".join(w for w in _WORD_RE.findall(title.lower().replace("&", " and ")) if w not in _LABEL_STOP)


def _dim_words(title: str) -> frozenset[str]:
    t = _PAREN_RE.sub(" ", title.lower().replace("&", " and "))
    return frozenset(w for w in _WORD_RE.findall(t) if w not in _DIM_STOP)


def _build_labels() -> dict[str, tuple[int, str]]:
    labels: dict[str, tuple[int, str]] = {}
    for kind, headers in ((_TOP, fmt.TOP_LEVEL), (_FIELD, fmt.FIELDS)):
        for h in headers:
            for name in (h.label, *h.aliases):
                labels.setdefault(_label_key(name), (kind, h.key))
    for side in ("A", "B"):
        key = f"score_{side.lower()}"
        for noun in ("image", "output", "generated image", "edited image"):
            for name in (f"score {noun} {side}", f"{noun} {side} score"):
                labels.setdefault(_label_key(name), (_FIELD, key))
    return labels


_LABELS = _build_labels()
_DIM_SETS = [(_dim_words(d.title), d.key) for d in DIMENSIONS]
# A one-word title names a dimension only as its head noun (the last word of its title, e.g. "Quality").
_DIM_HEADS = {d.key: _WORD_RE.findall(d.title.lower())[-1] for d in DIMENSIONS}
_labels_get = _LABELS.get
_classify_cache: dict[str, tuple[int, str] | None] = {}


def _classify(title: str) -> tuple[int, str] | None:
    """What a header title names: a top-level section, a field, a dimension (by key), or nothing."""
    hit = _labels_get(_label_key(title))
    if hit is not None:
        return hit
    words = _dim_words(title)
    if not words:
        return None
    exact = [k for s, k in _DIM_SETS if s == words]
    if exact:
        return (_DIM, exact[0])
    subset = [k for s, k in _DIM_SETS if words < s]
    if len(subset) != 1 or (len(words) == 1 and _DIM_HEADS[subset[0]] not in words):
        return None
    return (_DIM, subset[0])


def _classify_cached(title: str) -> tuple[int, str] | None:
    try:
        return _classify_cache[title]
    except KeyError:
        pass
    hit = _classify(title)
    if len(_classify_cache) > 50_000:
        _classify_cache.clear()
    _classify_cache[title] = hit
    return hit


_prefix_cache: dict[str, tuple[bool, bool] | None] = {}
_UNSEEN: Any = object()


def _prefix(markup: str) -> tuple[bool, bool] | None:
    """(marked by '#' or a number, opened bold) for a header's markup; None when it is not header markup."""
    try:
        return _prefix_cache[markup]
    except KeyError:
        pass
    m = _PREFIX_RE.fullmatch(markup)
    out = None if m is None else (m.group(1) is not None or m.group(3) is not None, bool(m.group(2) or m.group(4)))
    if len(_prefix_cache) > 10_000:
        _prefix_cache.clear()
    _prefix_cache[markup] = out
    return out


class _NAType:
    def __repr__(self) -> str:
        return "N/A"


_NA = _NAType()


_score_cache: dict[str, float | _NAType | None] = {}
_choice_cache: dict[str, Preference | None] = {}


def _memo(cache: dict, fn, text: str):
    """Values such as "3.5" or "Image A" repeat across critiques: remember short ones."""
    try:
        return cache[text]
    except KeyError:
        pass
    out = fn(text)
    if len(text) <= 32:
        if len(cache) > 10_000:
            cache.clear()
        cache[text] = out
    return out


def _read_score(text: str) -> float | _NAType | None:
    return _memo(_score_cache, _read_score_uncached, text)


def _read_choice(text: str) -> Preference | None:
    return _memo(_choice_cache, _read_choice_uncached, text)


def _read_score_uncached(text: str) -> float | _NAType | None:
    if _NA_RE.match(text):
        return _NA
    m = _NUM_RE.search(text)
    return float(m.group()) if m else None


def _read_choice_uncached(text: str) -> Preference | None:
    """In order: a comparison (``A > B``); the word tie/draw; the first ``Image X`` (or Output, Edit...);
    a bare ``A``/``B`` at the start; a weak tie word (equal, same, both, neither). None otherwise,
    or when the value is a bracketed placeholder echoed from the prompt."""
    if text.startswith("["):
        return None
    m = _CMP_RE.search(text)
    if m and m.group(1).lower() != m.group(3).lower():
        bigger = m.group(2) in (">", ">=", "≥", "≻")
        return (m.group(1) if bigger else m.group(3)).upper()  # type: ignore[return-value]
    if _TIE_RE.search(text):
        return "tie"
    m = _AB_RE.search(text) or _BARE_RE.match(text)
    if m:
        return m.group(1).upper()  # type: ignore[return-value]
    if _WEAK_TIE_RE.search(text):
        return "tie"
    return None


def _strip_think(text: str, errors: list[str]) -> str | None:
    i = text.find("</think>")
    if i >= 0:
        return text[i + 8 :]
    if text.lstrip().startswith("<think>"):
        errors.append("unterminated <think> block: the output ended while thinking")
        return None
    return text


def _scan(text: str, task: Task, errors: list[str]) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """Find the header lines, then cut the text between them: content of top-level sections and dimension fields."""
    if "```" in text:
        text = _FENCE_RE.sub("", text)
    lines = text.split("\n")
    heads: list[tuple[int, int, str, str]] = []  # (line index, kind, key, value on the header line)
    judgement_at = -1
    classified = _classify_cache.get
    prefixes = _prefix_cache.get
    match = _HEAD_RE.match
    for idx, line in enumerate(lines):
        m = match(line) if line else None
        if m is None:
            continue
        prefix, title, colon, rest = m.groups()
        hit = classified(title, _UNSEEN)
        if hit is _UNSEEN:
            hit = _classify_cached(title)
        if hit is None:
            continue
        pre = prefixes(prefix, _UNSEEN)
        if pre is _UNSEEN:
            pre = _prefix(prefix)
        if pre is None:
            continue
        marked, bold = pre
        rest = rest.lstrip(" \t")
        if bold and rest[:2] in ("**", "__"):
            rest = rest[2:].lstrip(" \t")
        if not colon:
            if rest.strip("*_ \t"):
                continue
            rest = ""
        kind, key = hit
        if kind == _DIM:
            if not (marked or (colon and not rest.strip())):
                continue
        elif kind == _FIELD:
            if not (colon or (marked and not rest)):
                continue
        elif key == "judgement" and judgement_at < 0:
            judgement_at = len(heads)
        heads.append((idx, kind, key, rest))
    if judgement_at > 0 and any(h[1] == _DIM for h in heads[:judgement_at]):
        heads = [h for i, h in enumerate(heads) if i >= judgement_at or h[1] != _DIM]

    applicable = _applicable(task)
    top: dict[str, str] = {}
    dims: dict[str, dict[str, str]] = {}
    block: dict[str, str] | None = None
    target: tuple[dict[str, str], str] | None = None  # where the text of a header not taken goes
    n = len(heads)
    n_lines = len(lines)
    for i, (idx, kind, key, rest) in enumerate(heads):
        stop = heads[i + 1][0] if i + 1 < n else n_lines
        content = rest if stop == idx + 1 else rest + "\n" + "\n".join(lines[idx + 1 : stop])
        if kind == _DIM:
            target = None
            if key not in applicable:
                errors.append(f"{key} is not judged for {task.value} outputs; its block was ignored")
                block = {}  # a throwaway block: its fields are read and dropped
            elif key in dims:
                errors.append(f"{key} appears more than once; the first block was kept")
                block = {}
            else:
                block = dims[key] = {"_body": content}
                target = (block, "_body")
            continue
        if kind == _FIELD:
            if block is None:
                errors.append(f"'{key}' line outside a dimension block was ignored")
                target = None
                continue
            where = block
        else:
            block = None
            where = top
        if key in where:
            # A repeated label inside text (e.g. a justification with a line "Explanation: ..."): keep it as text.
            errors.append(f"repeated '{key}' line; the first was kept and the repeat read as text")
            if target is not None:
                raw = lines[idx] if stop == idx + 1 else "\n".join(lines[idx:stop])
                target[0][target[1]] += "\n" + raw
            continue
        where[key] = content
        target = (where, key)
    return top, dims


_APPLICABLE = {t: frozenset(d.key for d in dimensions_for(t)) for t in Task}
_DIMS_FOR = {t: dimensions_for(t) for t in Task}


def _applicable(task: Task) -> frozenset[str]:
    return _APPLICABLE[task]


def _text(content: str | None) -> str | None:
    return None if content is None else content.strip()


def _score(
    block: dict[str, str], field: str, key: str, allows_na: bool, errors: list[str], clamped: list[str]
) -> tuple[float | None, bool]:
    """(score, is_na) of one field of a block; errors say why a present field gave no score."""
    raw = _text(block.get(field))
    if raw is None:
        return None, False
    value = _read_score(raw)
    if value is _NA:
        if allows_na:
            return None, True
        errors.append(f"{key}: N/A is not allowed for this dimension")
        return None, False
    if value is None:
        errors.append(f"{key}: unreadable {field.replace('_', ' ')} {raw[:40]!r}")
        return None, False
    v = float(value)  # type: ignore[arg-type]
    c = clamp_score(v)
    if c != v:
        clamped.append(key)
        errors.append(f"{key}: {field.replace('_', ' ')} {raw[:20]!r} out of range, clamped to {c:g}")
    return c, False


def _justification(block: dict[str, str]) -> str | None:
    """The block's justification line, else its free text (a model that skipped the label)."""
    just = _text(block.get("justification"))
    return just if just is not None else (_text(block.get("_body")) or None)


def _status(n_done: int, n_all: int) -> str:
    if n_done == n_all:
        return "ok"
    return "partial" if n_done else "failed"


def _common(top: dict[str, str], expected: tuple[str, ...], errors: list[str]) -> dict:
    for k in expected:
        if k not in top:
            errors.append(f"missing section '{k}'")
    return {
        "request_analysis": _text(top.get("analysis")),
        "summary": _text(top.get("summary")),
        "refinement_comments": _text(top.get("refinement_comments")),
        "refined_request": _text(top.get("refined_request")),
    }


_POINTWISE_SECTIONS = ("analysis", "summary", "refinement_comments", "refined_request")
_PAIRWISE_SECTIONS = ("analysis", "summary", "preference")


def _prepare(text: object, task: Task | str, errors: list[str]) -> tuple[Task, str, str | None]:
    t = Task(task)
    if not isinstance(text, str):
        errors.append(f"expected text, got {type(text).__name__}")
        raw = "" if text is None else str(text)
        return t, raw, None
    body = text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text
    body = _strip_think(body, errors)
    if body is not None and not body.strip():
        errors.append("empty output")
        body = None
    return t, text, body


def _failed(dims: tuple[Dimension, ...], errors: list[str]) -> dict[str, Any]:
    """The fields every unparseable output shares: failed, every dimension missing."""
    return {"parse_status": "failed", "parse_errors": errors, "missing": [d.key for d in dims]}


def parse_critique(text: str, task: Task | str = Task.T2I) -> Critique:
    """Parse a pointwise critique. Never raises on model text (``task`` must be a valid Task)."""
    errors: list[str] = []
    task, raw, body = _prepare(text, task, errors)
    dims_all = _DIMS_FOR[task]
    if body is None:
        return Critique(task=task, raw_text=raw, scores={d.key: None for d in dims_all}, **_failed(dims_all, errors))
    top, blocks = _scan(body, task, errors)
    scores: dict[str, float | None] = {}
    justifications: dict[str, str] = {}
    missing: list[str] = []
    na: list[str] = []
    clamped: list[str] = []
    for d in dims_all:
        block = blocks.get(d.key)
        if block is None:
            scores[d.key] = None
            missing.append(d.key)
            continue
        just = _justification(block)
        if just is not None:
            justifications[d.key] = just
        value, is_na = _score(block, "score", d.key, d.allows_na, errors, clamped)
        scores[d.key] = value
        if is_na:
            na.append(d.key)
        elif value is None:
            missing.append(d.key)
            if "score" not in block:
                errors.append(f"{d.key}: no score line")
    for k in missing:
        if k not in blocks:
            errors.append(f"{k}: dimension not found")
    return Critique(
        task=task,
        raw_text=raw,
        scores=scores,
        justifications=justifications,
        parse_status=_status(len(dims_all) - len(missing), len(dims_all)),  # type: ignore[arg-type]
        parse_errors=errors,
        missing=missing,
        na=na,
        clamped=clamped,
        **_common(top, _POINTWISE_SECTIONS, errors),
    )


def _derive(a: float | None, b: float | None) -> Preference | None:
    if a is None or b is None:
        return None
    if abs(a - b) < 1e-9:
        return "tie"
    return "A" if a > b else "B"


def parse_pairwise(text: str, task: Task | str = Task.T2I) -> PairwiseCritique:
    """Parse a pairwise critique. Never raises on model text (``task`` must be a valid Task)."""
    errors: list[str] = []
    task, raw, body = _prepare(text, task, errors)
    dims_all = _DIMS_FOR[task]
    if body is None:
        none = {d.key: None for d in dims_all}
        return PairwiseCritique(
            task=task, raw_text=raw, scores_a=none, scores_b=dict(none), winners=dict(none), **_failed(dims_all, errors)
        )
    top, blocks = _scan(body, task, errors)
    scores_a: dict[str, float | None] = {}
    scores_b: dict[str, float | None] = {}
    winners: dict[str, Preference | None] = {}
    justifications: dict[str, str] = {}
    missing: list[str] = []
    na: list[str] = []
    clamped: list[str] = []
    for d in dims_all:
        block = blocks.get(d.key)
        if block is None:
            scores_a[d.key] = scores_b[d.key] = winners[d.key] = None
            missing.append(d.key)
            errors.append(f"{d.key}: dimension not found")
            continue
        just = _justification(block)
        if just is not None:
            justifications[d.key] = just
        n_clamped = len(clamped)
        a, a_na = _score(block, "score_a", d.key, d.allows_na, errors, clamped)
        b, b_na = _score(block, "score_b", d.key, d.allows_na, errors, clamped)
        if len(clamped) - n_clamped > 1:
            clamped.pop()
        scores_a[d.key], scores_b[d.key] = a, b
        if a_na or b_na:
            na.append(d.key)
            if a_na != b_na:
                errors.append(f"{d.key}: N/A for one output only")
        done_a = a is not None or a_na
        done_b = b is not None or b_na
        if not (done_a and done_b):
            missing.append(d.key)
            for side, present in (("score_a", done_a), ("score_b", done_b)):
                if not present and side not in block:
                    errors.append(f"{d.key}: no {side.replace('_', ' ')} line")
        win_raw = _text(block.get("winner"))
        winner = _read_choice(win_raw) if win_raw else None
        if winner is None and a is not None and b is not None:
            winner = _derive(a, b)
            why = "no winner line" if win_raw is None else f"unreadable winner {win_raw[:30]!r}"
            errors.append(f"{d.key}: {why}; winner derived from scores")
        elif winner is None and win_raw and not _NA_RE.match(win_raw):
            errors.append(f"{d.key}: unreadable winner {win_raw[:30]!r}")
        winners[d.key] = winner

    pref_raw = _text(top.get("preference"))
    preference = _read_choice(pref_raw) if pref_raw else None
    if preference is None:
        why = (
            f"unreadable overall preference {pref_raw[:30]!r}"
            if pref_raw
            else ("empty overall preference" if "preference" in top else "no overall preference line")
        )
        if missing:
            errors.append(f"{why}; not derived because some dimensions are missing")
        else:
            keys = [d.key for d in dims_all]
            preference = _derive(aggregate(scores_a, keys=keys), aggregate(scores_b, keys=keys))
            errors.append(f"{why}; derived from mean scores")
    common = _common(top, tuple(k for k in _PAIRWISE_SECTIONS if k != "preference"), errors)
    return PairwiseCritique(
        task=task,
        raw_text=raw,
        scores_a=scores_a,
        scores_b=scores_b,
        winners=winners,
        justifications=justifications,
        preference=preference,
        parse_status=_status(len(dims_all) - len(missing), len(dims_all)),  # type: ignore[arg-type]
        parse_errors=errors,
        missing=missing,
        na=na,
        clamped=clamped,
        **common,
    )
