"""What the HTTP server costs around a model: JSON, base64 image decoding, templating, parsing, over real HTTP.

A ScriptedBackend answers instantly with protocol text, and the app runs under uvicorn on loopback in a
thread, so the figures are the server's overhead (not model speed): ``/v1/reward`` batches of 64x64 and
512x512 PNGs, and ``/v1/chat/completions`` with one image, sequential and with concurrent clients. The
client runs in the same process as the server (they share the GIL), so the figures are pessimistic.

    .venv/bin/python benchmarks/server_overhead.py            # full run
    .venv/bin/python benchmarks/server_overhead.py --quick    # a short check
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import platform
import time
from pathlib import Path

import httpx
from PIL import Image

from _common import write_results
from rationalrewards.backends.scripted import ScriptedBackend
from rationalrewards.format import render_critique
from rationalrewards.rubric import dimensions_for
from rationalrewards.schema import Critique
from rationalrewards.server import create_app
from rationalrewards.testing.servers import ThreadedServer

RESULTS = Path(__file__).parent / "results" / "server_overhead.json"
KEYS = [d.key for d in dimensions_for("t2i")]
ANSWER = render_critique(
    Critique(
        scores=dict.fromkeys(KEYS, 3.0),
        justifications=dict.fromkeys(KEYS, "three red cubes, as asked; one is slightly blurred. " * 3),
        summary="mostly right",
        refinement_comments="state the count",
        refined_request="exactly three red cubes",
    )
)


def _url(i: int, side: int) -> str:
    buf = io.BytesIO()
    img = Image.effect_noise((side, side), 40 + i % 20).convert("RGB")  # noise: a realistic PNG size
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


async def _run(base: str, path: str, bodies: list[dict], concurrency: int) -> tuple[float, int]:
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=120) as client:

        async def one(body: dict) -> None:
            async with sem:
                r = await client.post(base + path, json=body)
                r.raise_for_status()

        await one(bodies[0])  # warm-up
        t0 = time.perf_counter()
        await asyncio.gather(*(one(b) for b in bodies))
        return time.perf_counter() - t0, len(bodies)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="few requests: checks the script works")
    args = ap.parse_args()
    n_req = 8 if args.quick else 40
    batch = 16
    app = create_app(ScriptedBackend(lambda conv, i: ANSWER, name="scripted"))
    rows = []
    with ThreadedServer(app) as srv:
        for side in (64, 512):
            urls = [_url(i, side) for i in range(batch)]
            body = {"items": [{"request": "three red cubes", "image": u} for u in urls]}
            mb = len(json.dumps(body)) / 1e6
            for conc in (1, 4):
                secs, n = asyncio.run(_run(srv.base_url, "/v1/reward", [body] * n_req, conc))
                rows.append(
                    {
                        "endpoint": "/v1/reward",
                        "image": f"{side}x{side}",
                        "items_per_request": batch,
                        "body_mb": round(mb, 2),
                        "concurrency": conc,
                        "requests_per_s": round(n / secs, 1),
                        "items_per_s": round(n * batch / secs, 1),
                        "ms_per_item": round(1000 * secs / (n * batch), 2),
                    }
                )
        chat = {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "judge this"},
                        {"type": "image_url", "image_url": {"url": _url(0, 64)}},
                    ],
                }
            ]
        }
        for conc in (1, 8):
            secs, n = asyncio.run(_run(srv.base_url, "/v1/chat/completions", [chat] * (n_req * 4), conc))
            rows.append(
                {
                    "endpoint": "/v1/chat/completions",
                    "image": "64x64",
                    "items_per_request": 1,
                    "body_mb": round(len(json.dumps(chat)) / 1e6, 3),
                    "concurrency": conc,
                    "requests_per_s": round(n / secs, 1),
                    "items_per_s": round(n / secs, 1),
                    "ms_per_item": round(1000 * secs / n, 2),
                }
            )
    cols = list(rows[0])
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(str(r[c]) for c in cols))
    meta = {"quick": args.quick, "cpus": os.cpu_count(), "python": platform.python_version(), "note": "loopback HTTP"}
    write_results(RESULTS, {"meta": meta, "rows": rows})


if __name__ == "__main__":
    main()
