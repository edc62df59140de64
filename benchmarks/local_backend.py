"""Critiques per second of the local transformers backend: batched vs one conversation at a time.

Same tiny Qwen3-VL, same prompts (a pointwise critique prompt with one 128x128 image each), greedy decoding,
so the outputs must be identical; the script checks that and reports the speed-up (target: >= 4x at batch 16).

    .venv/bin/python benchmarks/local_backend.py              # 16 critiques, 64 new tokens each
    .venv/bin/python benchmarks/local_backend.py --quick      # a short check
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw

from rationalrewards.backends import GenerationConfig
from rationalrewards.backends.transformers_local import TransformersBackend
from rationalrewards.conversation import Conversation, ImagePart
from rationalrewards.images import load_image
from rationalrewards.models.tiny import build_tiny_qwen3vl

RESULTS = Path(__file__).parent / "results" / "local_backend.json"
COLOURS = ["red", "green", "blue", "yellow", "purple", "orange"]
SHAPES = ["circle", "square", "triangle"]


def _image(i: int) -> Image.Image:
    img = Image.new("RGB", (128, 128), (240, 240, 240))
    d = ImageDraw.Draw(img)
    for k in range(1 + i % 4):
        x = 10 + 28 * k
        d.ellipse((x, 40 + 5 * (i % 3), x + 24, 64 + 5 * (i % 3)), fill=((50 * i) % 255, 80 + 10 * k, 200 - 9 * i))
    return img


def _conversations(n: int, kind: str = "critique") -> tuple[list[Conversation], str]:
    """``critique``: the package's pointwise critique prompt; ``short``: the image and a one-line request."""
    requests = [
        f"{1 + i % 4} {COLOURS[i % len(COLOURS)]} {SHAPES[i % len(SHAPES)]}s on a white table, no text"
        for i in range(n)
    ]
    if kind == "short":
        return [Conversation().add("user", ImagePart(_image(i)), f"Rate it: {r}") for i, r in enumerate(requests)], kind
    try:
        from rationalrewards.schema import Sample
        from rationalrewards.templates import get_template

        template = get_template("request-first")
        convs = [template.pointwise(Sample(request=r, image=_image(i))) for i, r in enumerate(requests)]
        return convs, f"templates:{template.name}"
    except ImportError:  # the templates module not there yet: a long text prompt of similar size
        filler = "Judge text faithfulness, physical quality and text rendering; justify each score. " * 20
        convs = [
            Conversation().add("user", ImagePart(_image(i)), f"Request: {r}\n{filler}") for i, r in enumerate(requests)
        ]
        return convs, "fallback-text"


def _prompt_tokens(backend: TransformersBackend, conv: Conversation) -> int:
    text = backend.processor.apply_chat_template(conv.to_hf(), add_generation_prompt=True, tokenize=False)
    images = [load_image(im) for im in conv.images()] or None
    return len(backend.processor(text=[text], images=images)["input_ids"][0])


def _measure(backend: TransformersBackend, convs: list[Conversation], max_tokens: int) -> dict:
    config = GenerationConfig(max_tokens=max_tokens)
    t0 = time.perf_counter()
    single = [backend.generate([c], config)[0] for c in convs]
    t_single = time.perf_counter() - t0
    t0 = time.perf_counter()
    batched = backend.generate(convs, config)
    t_batched = time.perf_counter() - t0
    n = len(convs)
    return {
        "prompt_tokens": _prompt_tokens(backend, convs[0]),
        "max_tokens": max_tokens,
        "one_at_a_time": {"wall_s": round(t_single, 3), "critiques_per_s": round(n / t_single, 3)},
        "batched": {"wall_s": round(t_batched, 3), "critiques_per_s": round(n / t_batched, 3)},
        "speedup": round(t_single / t_batched, 2),
        "outputs_identical": [c.texts for c in single] == [c.texts for c in batched],
        "failed": sum(not c.ok for c in single + batched),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--critiques", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-tokens", type=int, nargs="+", default=[64, 128])
    p.add_argument("--prompts", nargs="+", default=["critique"], choices=["critique", "short"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--quick", action="store_true", help="8 critiques, 16 tokens")
    args = p.parse_args()
    if args.quick:
        args.critiques, args.max_tokens = 8, [16]

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        path = build_tiny_qwen3vl(Path(tmp) / "tiny", seed=0)
        backend = TransformersBackend(path, device=args.device, batch_size=args.batch_size)
        backend.generate(_conversations(2, "short")[0], GenerationConfig(max_tokens=4))  # warm-up
        runs = []
        for kind in args.prompts:
            convs, prompt_kind = _conversations(args.critiques, kind)
            runs += [{"prompt": prompt_kind, **_measure(backend, convs, m)} for m in args.max_tokens]

    print(f"{args.critiques} critiques, one 128x128 image each (16 image tokens), greedy")
    head = (
        f"{'prompt':<24}{'tokens':>7}{'new':>6}{'1-at-a-time/s':>15}{'batched/s':>11}{'speed-up':>10}{'identical':>11}"
    )
    print(head)
    for r in runs:
        print(
            f"{r['prompt']:<24}{r['prompt_tokens']:>7}{r['max_tokens']:>6}"
            f"{r['one_at_a_time']['critiques_per_s']:>15.2f}{r['batched']['critiques_per_s']:>11.2f}"
            f"{r['speedup']:>9.2f}x{r['outputs_identical']!s:>11}"
        )
    print(f"target: >= 4x at batch {args.batch_size}")

    result = {
        "benchmark": "local_backend",
        "critiques": args.critiques,
        "batch_size": args.batch_size,
        "device": args.device,
        "runs": runs,
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "load_avg_1m": round(os.getloadavg()[0], 2),
        },
        "note": "taken on a shared 2-core machine while other work ran: noisy",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS}")
    if not all(r["outputs_identical"] and not r["failed"] for r in runs):
        raise SystemExit("batched and one-at-a-time outputs differ (or items failed)")


if __name__ == "__main__":
    main()
