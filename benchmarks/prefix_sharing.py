"""How much of each prompt a serving engine's prefix cache can share: ``prefix-shared`` vs ``request-first``.

For each kind (pointwise/pairwise x t2i/edit) and layout, 100 different requests with
different images are rendered through the template, the tiny Qwen3-VL processor's chat
template and the processor itself (image placeholders expanded to the image tokens the
model sees). The shared prefix is the longest token prefix common to all 100 prompts; the
figure is its share of the mean prompt length.

Two token counts are reported: the tiny model's own tokenizer (a 1k-vocabulary BPE, so it
spends about twice as many tokens on English text as a production tokenizer would), and
a word-level estimate (words and punctuation marks, close to a 150k-vocabulary BPE on
English) with the same image-token counts. Image sizes: 256 px (64 image tokens per image
at patch 16 with a 2x2 merge) and 512 px (256 tokens).

    .venv/bin/python benchmarks/prefix_sharing.py [--n 100] [--sizes 256,512]
"""

from __future__ import annotations

import argparse
import random
import re
import time
from pathlib import Path

from PIL import Image, ImageDraw

from _common import write_results
from rationalrewards.rubric import Task
from rationalrewards.schema import PreferencePair, Sample
from rationalrewards.templates import LAYOUTS, get_template

ROOT = Path(__file__).resolve().parent
TARGET = 0.8
IMAGE_PAD = "<|image_pad|>"
_WORD_RE = re.compile(r"<\|[a-z_]+\|>|\w+|[^\w\s]")

_OBJECT_WORDS = "cube sphere cat dog teapot lighthouse bicycle umbrella kite violin apple clock"
_COLOUR_WORDS = "red green blue yellow purple orange black white golden silver"
_OBJECTS = tuple(_OBJECT_WORDS.split())
_COLOURS = tuple(_COLOUR_WORDS.split())
_PLACES = ("on a wooden table", "in a snowy forest", "on a beach at sunset", "in a busy street", "on the moon")
_EDITS = (
    "make the sky {c}",
    "replace the {o} with a {o2}",
    "add a {c} hat to the {o}",
    "remove the {o}",
    "turn the {o} {c}",
)


def requests(n: int, edit: bool, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        c, o, o2 = rng.choice(_COLOURS), rng.choice(_OBJECTS), rng.choice(_OBJECTS)
        if edit:
            out.append(rng.choice(_EDITS).format(c=c, o=o, o2=o2) + f", keeping the rest (variant {i})")
        else:
            k = rng.randint(1, 5)
            text = f"{k} {c} {o}s {rng.choice(_PLACES)}"
            if rng.random() < 0.3:
                text += f", with a sign that reads '{rng.choice(_OBJECTS).upper()}'"
            out.append(text + f" (variant {i})")
    return out


def image(rng: random.Random, size: int) -> Image.Image:
    img = Image.new("RGB", (size, size), tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(img)
    for _ in range(3):
        x0, y0 = rng.randrange(size // 2), rng.randrange(size // 2)
        draw.rectangle([x0, y0, x0 + size // 3, y0 + size // 3], fill=tuple(rng.randrange(256) for _ in range(3)))
    return img


def common_prefix(seqs: list[list]) -> int:
    first = seqs[0]
    n = min(len(s) for s in seqs)
    for i in range(n):
        x = first[i]
        if any(s[i] != x for s in seqs):
            return i
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100, help="different requests per kind")
    ap.add_argument("--sizes", default="256,512", help="image sizes in pixels")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "prefix_sharing.json")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    from rationalrewards.models.tiny import make_tiny_qwen3vl

    _, processor = make_tiny_qwen3vl(max_pixels=max(sizes) ** 2)
    rows = []
    t0 = time.perf_counter()
    for size in sizes:
        for mode in ("pointwise", "pairwise"):
            for task in Task:
                edit = task is Task.EDIT
                rng = random.Random(size)
                items = []
                for req in requests(args.n, edit):
                    src = image(rng, size) if edit else None
                    if mode == "pointwise":
                        items.append(Sample(request=req, image=image(rng, size), source=src))
                    else:
                        items.append(
                            PreferencePair(request=req, image_a=image(rng, size), image_b=image(rng, size), source=src)
                        )
                for layout in LAYOUTS:
                    t = get_template(layout)
                    engine, words = [], []
                    for item in items:
                        conv = t.pointwise(item) if mode == "pointwise" else t.pairwise(item)
                        text = processor.apply_chat_template(conv.to_hf(), tokenize=False, add_generation_prompt=True)
                        pil = [im for im in conv.images()]
                        ids = processor(text=[text], images=pil)["input_ids"][0]
                        ids = list(ids)
                        engine.append(ids)
                        per_image = ids.count(processor.tokenizer.convert_tokens_to_ids(IMAGE_PAD)) // max(1, len(pil))
                        toks = []
                        for tok in _WORD_RE.findall(text):
                            toks.extend([IMAGE_PAD] * per_image if tok == IMAGE_PAD else [tok])
                        words.append(toks)
                    for tokenizer, seqs in (("tiny-qwen3vl", engine), ("words", words)):
                        mean = sum(len(s) for s in seqs) / len(seqs)
                        shared = common_prefix(seqs)
                        n_image_tokens = per_image * len(pil)
                        rows.append(
                            {
                                "kind": f"{mode}-{task.value}",
                                "layout": layout,
                                "image_px": size,
                                "image_tokens_per_image": per_image,
                                "tokenizer": tokenizer,
                                "mean_prompt_tokens": round(mean, 1),
                                "shared_prefix_tokens": shared,
                                "shared_fraction": round(shared / mean, 4),
                                "image_tokens_per_prompt": n_image_tokens,
                                # images differ per request, so they can never be shared: the share of the rest
                                "shared_fraction_of_non_image": round(shared / (mean - n_image_tokens), 4),
                            }
                        )
    print(
        f"{'kind':16} {'layout':14} {'px':>4} {'img/im':>6} {'tokenizer':13} {'mean':>7} {'shared':>7} {'frac':>6}"
        f" {'of text':>7}"
    )
    for r in rows:
        print(
            f"{r['kind']:16} {r['layout']:14} {r['image_px']:>4} {r['image_tokens_per_image']:>6} {r['tokenizer']:13} "
            f"{r['mean_prompt_tokens']:>7} {r['shared_prefix_tokens']:>7} {r['shared_fraction']:>6.3f}"
            f" {r['shared_fraction_of_non_image']:>7.3f}"
        )
    ps = [r["shared_fraction"] for r in rows if r["layout"] == "prefix-shared"]
    head = [r for r in rows if r["layout"] == "prefix-shared" and r["tokenizer"] == "tiny-qwen3vl"]
    n_met = sum(f >= TARGET for f in ps)
    print(f"prefix-shared: min {min(ps):.3f} over all rows; target {TARGET} met in {n_met}/{len(ps)}")
    result = {
        "benchmark": "prefix_sharing",
        "n_requests": args.n,
        "target": TARGET,
        "token_counts": "tiny-qwen3vl: the tiny model's processor and chat template (image tokens expanded); "
        "words: words and punctuation of the same chat text, image tokens as the processor counts them",
        "templates": {name: get_template(name).version for name in LAYOUTS},
        "prefix_shared_min_fraction": min(ps),
        "prefix_shared_tiny_min_fraction": min(r["shared_fraction"] for r in head),
        "rows": rows,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    write_results(args.out, result)


if __name__ == "__main__":
    main()
