"""Synthetic teacher throughput: critiques per second for each prompt kind, on one core.

Prompts are rendered once through the real templates (pointwise and pairwise: ``request-first``;
hindsight and consistency: the PARROT templates) from world pairs (half text-to-image, half
edits, images as PNG bytes); the timed part is ``SyntheticTeacher.generate`` on those
conversations: image hashing and registry lookup, reading the prompt, judging, writing the
protocol text. Prints a table and writes benchmarks/results/world_teacher.json.

``--examples`` instead prints the teacher examples of docs/synthetic-world.md (a critique of a
pictured generation, a hindsight rationale under a noisy label with its hallucination flagged,
and the consistency verdicts) and writes them to benchmarks/results/world_teacher_examples.md.

    .venv/bin/python benchmarks/world_teacher.py [--n 300] [--repeat 3]
    .venv/bin/python benchmarks/world_teacher.py --examples
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from _common import print_table, write_results
from rationalrewards.backends import GenerationConfig
from rationalrewards.images import image_hash
from rationalrewards.parrot.consistency import consistency_conversation, rationale_view
from rationalrewards.parrot.hindsight import hindsight_conversation
from rationalrewards.parsing import parse_pairwise
from rationalrewards.schema import PreferencePair, Sample
from rationalrewards.synthetic import GeneratorConfig, World, make_pairs
from rationalrewards.synthetic.gallery import T2I_REQUEST
from rationalrewards.synthetic.teacher import SyntheticTeacher, hallucinations
from rationalrewards.templates import get_template

ROOT = Path(__file__).resolve().parent
GALLERY = ROOT.parent / "docs" / "images"


def _rate(teacher: SyntheticTeacher, convs: list, repeat: int, n: int = 1) -> float:
    best = 0.0
    cfg = GenerationConfig(n=n, temperature=0.7 if n > 1 else 0.0)
    for _ in range(repeat):
        teacher.clear_log()
        t0 = time.perf_counter()
        comps = teacher.generate(convs, cfg)
        dt = time.perf_counter() - t0
        bad = [c.error for c in comps if not c.ok]
        if bad:
            raise RuntimeError(f"teacher failed on {len(bad)} items, e.g. {bad[0]}")
        best = max(best, len(convs) * n / dt)
    return best


def _gallery_image(world: World, name: str):
    """Regenerate a pictured gallery image from its seed (and check it is the pictured one)."""
    info = json.loads((GALLERY / "gallery.json").read_text())
    entry = next(e for e in info["t2i"] if e["file"] == name)
    gen = world.generate(info["t2i_request"], seed=entry["seed"], vividness=0.55)
    if image_hash(gen.image) != image_hash(GALLERY / name):
        raise RuntimeError(f"regenerated {name} differs from the pictured one: rerun `rationalrewards world gallery`")
    return gen


def examples() -> str:
    """The docs examples, as markdown."""
    world = World(GeneratorConfig())
    out = []
    clean, counted, negated = (_gallery_image(world, f"world-t2i-{i}.png") for i in (0, 1, 2))
    teacher = SyntheticTeacher(world=world)
    tpl = get_template("request-first")
    sample = Sample(request=T2I_REQUEST, image=counted.image)
    text = teacher.generate([tpl.pointwise(sample)])[0].texts[0]
    out += ["Teacher critique of `world-t2i-1.png`:", "", "```", text.strip(), "```", ""]
    # a hindsight rationale for a noisy label: the image that ignored the negation labelled better
    pair = PreferencePair(request=T2I_REQUEST, image_a=clean.image, image_b=negated.image, label="B")
    for seed in range(100):
        teacher = SyntheticTeacher(world=world, seed=seed)
        rationale = teacher.generate([hindsight_conversation(pair)])[0].texts[0]
        if teacher.log[-1]["behaviour"] == "hallucinate":
            break
    rec = teacher.log[-1]
    flagged = hallucinations(rationale, pair, world=world)
    out += [
        f"Hindsight rationale for the pair (`world-t2i-0.png`, `world-t2i-2.png`) under the noisy label `B` "
        f"(teacher seed {seed}, default rates; the teacher's own view: `{rec['own_preference']}`; behaviour: "
        f"`{rec['behaviour']}`):",
        "",
        "```",
        rationale.strip(),
        "```",
        "",
        "Side channel (`teacher.log[-1]['false']`): "
        + "; ".join(f"Image {f['image']}: {f['description']}" for f in rec["false"]),
        "",
        "`hallucinations(rationale, pair)`: " + "; ".join(f"Image {c.image}: {c.text}" for c in flagged),
        "",
    ]
    view = rationale_view(parse_pairwise(rationale, "t2i"))
    verdict = teacher.generate([consistency_conversation(pair, view)])[0].texts[0]
    out += ["Consistency check (label not shown; the rationale without its verdict):", "", "```", verdict, "```", ""]
    honest_pair = pair.model_copy(update={"label": "A"})
    honest = teacher.generate([hindsight_conversation(honest_pair)])[0].texts[0]
    hview = rationale_view(parse_pairwise(honest, "t2i"))
    hverdict = teacher.generate([consistency_conversation(honest_pair, hview)])[0].texts[0]
    out += ["The same pair with the true label `A`: the honest rationale's check:", "", "```", hverdict, "```", ""]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300, help="pairs (half text-to-image, half edits)")
    ap.add_argument("--repeat", type=int, default=3, help="timed passes; the best is reported")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "world_teacher.json")
    ap.add_argument("--examples", action="store_true", help="print the docs examples instead of timing")
    args = ap.parse_args()
    if args.examples:
        md = examples()
        print(md)
        (ROOT / "results" / "world_teacher_examples.md").write_text(md)
        return
    world = World()
    pairs = make_pairs(args.n, seed=123, task="both", world=world)
    tpl = get_template("request-first")
    teacher = SyntheticTeacher(world=world)
    generic = SyntheticTeacher(world=world, judge="generic")
    pointwise = [tpl.pointwise(p.sample_a()) for p in pairs]
    pairwise = [tpl.pairwise(p) for p in pairs]
    hindsight = [hindsight_conversation(p) for p in pairs]
    rationales = [c.texts[0] for c in teacher.generate(hindsight)]
    consistency = [
        consistency_conversation(p, rationale_view(parse_pairwise(t, p.task.value)))
        for p, t in zip(pairs, rationales, strict=True)
    ]
    rows = []
    for name, backend, convs, n in (
        ("pointwise", teacher, pointwise, 1),
        ("pairwise", teacher, pairwise, 1),
        ("hindsight", teacher, hindsight, 1),
        ("hindsight, 4 samples", teacher, hindsight, 4),
        ("consistency", teacher, consistency, 1),
        ("pointwise (generic judge)", generic, pointwise, 1),
        ("pairwise (generic judge)", generic, pairwise, 1),
    ):
        rate = _rate(backend, convs, args.repeat, n)
        rows.append({"prompt": name, "items": len(convs), "samples": n, "per_s": round(rate, 1)})
    print_table(
        rows,
        [("prompt", "prompt", "s"), ("items", "items", "d"), ("n", "samples", "d"), ("critiques/s", "per_s", ",.1f")],
    )
    result = {
        "benchmark": "world_teacher",
        "rows": rows,
        "pairs": args.n,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_avg": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "note": "one single-threaded process; best of --repeat passes; images 128x128 PNG bytes (hashed per call)",
    }
    write_results(args.out, result)


if __name__ == "__main__":
    main()
