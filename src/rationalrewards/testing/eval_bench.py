"""Planted-pixel images and a scripted judge for evaluation tests and the harness-overhead benchmark.

Every image is a small solid PNG whose colour carries what the judge may read:
red = 50 x quality (1-4), green = a tag that makes images unique, blue = 255 for a
source image and 0 for an output. The scripted judge decodes the images of the
conversation it is given and writes a protocol-format critique with
``format.render_critique`` / ``render_pairwise``: a real, deterministic function of
its inputs whose accuracy can be counted by hand.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from ..conversation import Conversation
from ..format import render_critique, render_pairwise
from ..images import load_image
from ..rubric import dimensions_for
from ..schema import Critique, PairwiseCritique

SOURCE_BLUE = 255


def planted_png(quality: int, tag: int = 0, source: bool = False, size: int = 16) -> bytes:
    """A solid PNG carrying ``quality`` (1-4) and ``tag`` (0-255) in its colour."""
    if not 1 <= quality <= 4 and not source:
        raise ValueError("quality is 1-4")
    color = (50 * quality if not source else 0, tag % 256, SOURCE_BLUE if source else 0)
    buf = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buf, format="PNG")
    return buf.getvalue()


def read_planted(image: Any) -> tuple[int, int, bool]:
    """(quality, tag, is_source) of a planted image."""
    r, g, b = load_image(image).getpixel((0, 0))
    return round(r / 50), g, b == SOURCE_BLUE


def _outputs(conv: Conversation) -> list[int]:
    """Qualities of the output images of a conversation, in order (sources left out)."""
    out = []
    for img in conv.images():
        q, _, is_source = read_planted(img)
        if not is_source:
            out.append(q)
    return out


def _task(conv: Conversation) -> str:
    return "edit" if any(read_planted(i)[2] for i in conv.images()) else "t2i"


def pairwise_text(qa: float, qb: float, task: str = "t2i", first_slot_bias: bool = False, liar: bool = False) -> str:
    """The protocol text of a pairwise verdict that scores each side by its quality.

    ``first_slot_bias``: the stated preference is always A (scores stay honest).
    ``liar``: the justifications praise the side the scores rate lower.
    """
    keys = [d.key for d in dimensions_for(task)]
    scored = [k for k in keys if k != "text_rendering"]
    better, worse = ("A", "B") if qa >= qb else ("B", "A")
    if liar:
        better, worse = worse, better
    just = {
        k: (
            f"Image {better} is better and follows the request correctly, while Image {worse} fails and misses parts."
            if qa != qb
            else "Both images look alike."
        )
        for k in scored
    }
    pref = "A" if first_slot_bias else ("A" if qa > qb else "B" if qb > qa else "tie")
    c = PairwiseCritique(
        task=task,
        scores_a={k: float(qa) for k in scored} | {"text_rendering": None},
        scores_b={k: float(qb) for k in scored} | {"text_rendering": None},
        justifications=just,
        winners={k: ("A" if qa > qb else "B" if qb > qa else "tie") for k in scored},
        na=["text_rendering"],
        summary=f"A rates {qa}, B rates {qb}.",
        preference=pref,
    )
    return render_pairwise(c)


def pointwise_text(q: float, task: str = "t2i") -> str:
    keys = [d.key for d in dimensions_for(task)]
    scored = [k for k in keys if k != "text_rendering"]
    word = "correctly follows the request and is clean" if q >= 3 else "fails the request and shows artefacts"
    c = Critique(
        task=task,
        scores={k: float(q) for k in scored} | {"text_rendering": None},
        justifications={k: f"The image {word}." for k in scored},
        na=["text_rendering"],
        summary=f"quality {q}",
        refinement_comments="be explicit",
        refined_request="a clearer request",
    )
    return render_critique(c)


def planted_responder(
    first_slot_bias: bool = False, liar: bool = False, garble: Callable[[list[int]], bool] | None = None
) -> Callable[[Conversation, int], str]:
    """A ScriptedBackend responder judging by the planted qualities; ``garble(qualities)`` -> unparseable text."""

    def respond(conv: Conversation, _i: int) -> str:
        qs = _outputs(conv)
        if garble is not None and garble(qs):
            return "I cannot judge these images."
        task = _task(conv)
        if len(qs) >= 2:
            return pairwise_text(qs[-2], qs[-1], task, first_slot_bias=first_slot_bias, liar=liar)
        return pointwise_text(qs[-1], task)

    return respond


# ---------------------------------------------------------------------------
# stored records, as the runner writes them (for scoring tests without a model)


def stored_pairwise(
    pref: str | None, sa: float | None = None, sb: float | None = None, task: str = "t2i", failed: bool = False
) -> dict[str, Any]:
    """A stored pairwise critique with score ``sa``/``sb`` on every scored dimension and a stated preference."""
    keys = [d.key for d in dimensions_for(task) if d.key != "text_rendering"]
    c = PairwiseCritique(
        task=task,
        scores_a={k: sa for k in keys} if sa is not None else {},
        scores_b={k: sb for k in keys} if sb is not None else {},
        preference=pref,
        parse_status="failed" if failed else "ok",
    )
    return c.model_dump(mode="json")


def stored_pointwise(score: float | None, task: str = "t2i") -> dict[str, Any]:
    keys = [d.key for d in dimensions_for(task) if d.key != "text_rendering"]
    c = Critique(task=task, scores={k: score for k in keys}, parse_status="ok" if score is not None else "failed")
    return c.model_dump(mode="json")


def record(pid: str, label: str | None, fwd: Any = None, rev: Any = None, **extra: Any) -> dict[str, Any]:
    """A pairwise-mode record: ``fwd``/``rev`` are stored critiques (``rev`` judged with A and B swapped)."""
    return {"id": pid, "label": label, "task": "t2i", "mode": "pairwise", "forward": fwd, "reverse": rev, **extra}


def pointwise_record(pid: str, label: str | None, a: float | None, b: float | None, **extra: Any) -> dict[str, Any]:
    return {
        "id": pid,
        "label": label,
        "task": "t2i",
        "mode": "pointwise",
        "a": stored_pointwise(a),
        "b": stored_pointwise(b),
        **extra,
    }


# ---------------------------------------------------------------------------
# benchmark files in the public layouts


def _img(data: bytes, name: str = "img.png") -> dict[str, Any]:
    return {"bytes": data, "path": name}


def write_parquet(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(list(rows)), path)
    return path


def genai_t2i_rows(spec: Sequence[tuple[int, int, str]]) -> list[dict[str, Any]]:
    """GenAI-Bench image_generation rows from (quality_left, quality_right, vote_type)."""
    return [
        {
            "prompt": f"prompt {i}",
            "left_model": "m1",
            "left_image": _img(planted_png(ql, i)),
            "right_model": "m2",
            "right_image": _img(planted_png(qr, i)),
            "vote_type": vote,
        }
        for i, (ql, qr, vote) in enumerate(spec)
    ]


def genai_edit_rows(spec: Sequence[tuple[int, int, str]]) -> list[dict[str, Any]]:
    """GenAI-Bench image_edition rows from (quality_left, quality_right, vote_type)."""
    return [
        {
            "source_prompt": "a scene",
            "target_prompt": "an edited scene",
            "instruct_prompt": f"edit {i}",
            "source_image": _img(planted_png(1, i, source=True)),
            "left_model": "m1",
            "left_output_image": _img(planted_png(ql, i)),
            "right_model": "m2",
            "right_output_image": _img(planted_png(qr, i)),
            "vote_type": vote,
        }
        for i, (ql, qr, vote) in enumerate(spec)
    ]


def mmrb2_rows(spec: Sequence[tuple[int, int, str, bool]]) -> list[dict[str, Any]]:
    """MMRB2 rows from (quality_a, quality_b, chosen, is_edit); images in list columns."""
    return [
        {
            "pair_id": f"p{i}",
            "prompt_text": ("Edit <image_1> so that " if edit else "Draw ") + f"thing {i}",
            "prompt_images": [_img(planted_png(1, i, source=True))] if edit else [],
            "response_a_text": "",
            "response_a_images": [_img(planted_png(qa, i))],
            "response_b_text": "",
            "response_b_images": [_img(planted_png(qb, i))],
            "chosen": chosen,
            "prompt_source": "test",
            "response_a_model": "m1",
            "response_b_model": "m2",
        }
        for i, (qa, qb, chosen, edit) in enumerate(spec)
    ]


def editreward_rows(groups: Sequence[tuple[str, Sequence[int], Sequence[tuple[str, str]]]]) -> list[dict[str, Any]]:
    """EditReward-Bench rows: per group (group id, candidate qualities, [(comparison_type, ranking)])."""
    rows = []
    for g, (gid, qualities, comps) in enumerate(groups):
        k = len(qualities)
        for comp, ranking in comps:
            x, y = comp.split("vs")
            qx, qy = qualities["ABCD".index(x)], qualities["ABCD".index(y)]
            rows.append(
                {
                    "id": f"{gid}_{comp}",
                    "instruction": f"instruction {gid}",
                    "source_image": _img(planted_png(1, g, source=True)),
                    "candidate_1": _img(planted_png(qx, 16 * g + "ABCD".index(x))),
                    "candidate_2": _img(planted_png(qy, 16 * g + "ABCD".index(y))),
                    "ranking": ranking,
                    "comparison_type": comp,
                    "dataset": f"{k}pair",
                    "model_1": x,
                    "model_2": y,
                }
            )
    return rows
