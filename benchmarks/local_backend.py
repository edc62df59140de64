"""Critiques per second of the local transformers backend: batched vs one conversation at a time.

Same tiny Qwen3-VL, the package's real pointwise critique prompts (``get_template(name).pointwise``, one
128x128 image each = 16 image tokens), greedy decoding, so the outputs must be identical; the script checks
that and reports the speed-up (target: >= 4x at batch 16). Every critique is forced to its full length
(``min_new_tokens`` = ``max_tokens``, benchmark only): the random tiny model would otherwise stop at random
places. Both modes run after one warm-up call per template, so the template's system-message prefix is
in the backend's cross-call prefix cache for both (as in a long-running service). Each setting runs
``--repeats`` times; the table shows medians.

    .venv/bin/python benchmarks/local_backend.py                       # the full table (several minutes)
    .venv/bin/python benchmarks/local_backend.py --max-tokens 256 --threads 2 --engines auto generate --append
    .venv/bin/python benchmarks/local_backend.py --quick               # a short check
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw

from rationalrewards.backends import GenerationConfig
from rationalrewards.backends.transformers_local import TransformersBackend
from rationalrewards.conversation import Conversation
from rationalrewards.images import load_image
from rationalrewards.models.tiny import build_tiny_qwen3vl
from rationalrewards.schema import Sample
from rationalrewards.templates import get_template

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


def _conversations(template: str, n: int, offset: int = 0) -> list[Conversation]:
    t = get_template(template)
    out = []
    for i in range(offset, offset + n):
        request = f"{1 + i % 4} {COLOURS[i % len(COLOURS)]} {SHAPES[i % len(SHAPES)]}s on a white table, no text"
        out.append(t.pointwise(Sample(request=request, image=_image(i))))
    return out


def _prompt_tokens(backend: TransformersBackend, conv: Conversation) -> int:
    text = backend.processor.apply_chat_template(conv.to_hf(), add_generation_prompt=True, tokenize=False)
    images = [load_image(im) for im in conv.images()] or None
    return len(backend.processor(text=[text], images=images)["input_ids"][0])


def _measure(backend: TransformersBackend, convs: list[Conversation], max_tokens: int, repeats: int) -> dict:
    backend.generate_kwargs["min_new_tokens"] = max_tokens
    config = GenerationConfig(max_tokens=max_tokens)
    singles, batches, identical, failed = [], [], True, 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        single = [backend.generate([c], config)[0] for c in convs]
        singles.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        batched = backend.generate(convs, config)
        batches.append(time.perf_counter() - t0)
        identical &= [c.texts for c in single] == [c.texts for c in batched]
        failed += sum(not c.ok for c in single + batched)
    del backend.generate_kwargs["min_new_tokens"]
    n = len(convs)
    t_single, t_batched = statistics.median(singles), statistics.median(batches)
    return {
        "max_tokens": max_tokens,
        "one_at_a_time": {"wall_s": [round(t, 3) for t in singles], "critiques_per_s": round(n / t_single, 3)},
        "batched": {"wall_s": [round(t, 3) for t in batches], "critiques_per_s": round(n / t_batched, 3)},
        "speedup": round(t_single / t_batched, 2),
        "outputs_identical": identical,
        "failed": failed,
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--critiques", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-tokens", type=int, nargs="+", default=[64, 128, 256])
    p.add_argument("--templates", nargs="+", default=["prefix-shared", "request-first"])
    p.add_argument("--threads", type=int, nargs="+", default=[1], help="torch CPU threads to try")
    p.add_argument("--engines", nargs="+", default=["auto"], choices=["auto", "generate"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--append", action="store_true", help="add the runs to those already in --out")
    p.add_argument("--quick", action="store_true", help="8 critiques, 16 tokens, one repeat")
    args = p.parse_args()
    if args.quick:
        args.critiques, args.max_tokens, args.repeats = 8, [16], 1

    import torch

    logging.getLogger("transformers").setLevel(logging.ERROR)
    load_before = os.getloadavg()
    earlier = json.loads(args.out.read_text())["runs"] if args.append and args.out.exists() else []
    runs: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = build_tiny_qwen3vl(Path(tmp) / "tiny", seed=0)
        for engine in args.engines:
            backend = TransformersBackend(path, device=args.device, batch_size=args.batch_size, engine=engine)
            for threads in args.threads:
                torch.set_num_threads(threads)
                for template in args.templates:
                    convs = _conversations(template, args.critiques)
                    backend.generate(_conversations(template, 1, offset=args.critiques), GenerationConfig(max_tokens=4))
                    tokens = _prompt_tokens(backend, convs[0])
                    for m in args.max_tokens:
                        row = {"template": template, "engine": backend.engine, "threads": threads}
                        runs.append({**row, "prompt_tokens": tokens, **_measure(backend, convs, m, args.repeats)})
                        _print_row(runs[-1])
                        _write(args, earlier + runs, load_before)  # after every row: a cut-off run keeps its rows

    print(f"load average (1 min): {load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after")
    print(f"target: >= 4x at batch {args.batch_size}; wrote {args.out}")
    if not all(r["outputs_identical"] and not r["failed"] for r in runs):
        raise SystemExit("batched and one-at-a-time outputs differ (or items failed)")


def _write(args: argparse.Namespace, runs: list[dict], load_before: tuple[float, float, float]) -> None:
    import torch

    result = {
        "benchmark": "local_backend",
        "critiques": args.critiques,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "device": args.device,
        "forced_length": "min_new_tokens = max_tokens in both modes",
        "runs": runs,
        "machine": {  # of the last invocation; each run records the load average when it ended
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "load_avg_1m_before": round(load_before[0], 2),
            "load_avg_1m_after": round(os.getloadavg()[0], 2),
        },
        "note": "shared 2-core machine, loaded by other work while this ran: noisy; medians of the repeats",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


_printed_head = False


def _print_row(r: dict) -> None:
    global _printed_head
    if not _printed_head:
        print("critiques: real pointwise prompts, one 128x128 image each (16 image tokens), greedy, forced length")
        print(
            f"{'template':<15}{'engine':<10}{'thr':>4}{'prompt':>8}{'new':>6}{'1-at-a-time/s':>15}"
            f"{'batched/s':>11}{'speed-up':>10}{'identical':>11}"
        )
        _printed_head = True
    print(
        f"{r['template']:<15}{r['engine']:<10}{r['threads']:>4}{r['prompt_tokens']:>8}{r['max_tokens']:>6}"
        f"{r['one_at_a_time']['critiques_per_s']:>15.2f}{r['batched']['critiques_per_s']:>11.2f}"
        f"{r['speedup']:>9.2f}x{'yes' if r['outputs_identical'] else 'NO':>11}",
        flush=True,
    )


if __name__ == "__main__":
    main()
