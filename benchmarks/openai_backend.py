"""Throughput of the OpenAI-compatible backend against a loopback server that answers after a fixed latency.

The server runs in a child process (its own interpreter and event loop), so what is measured is the client:
at concurrency c and latency L the ideal rate is c / L requests per second, and the figure reported is the
achieved fraction of it (target: >= 0.8 at concurrency 64, i.e. >= 512 req/s at L = 100 ms).

    .venv/bin/python benchmarks/openai_backend.py            # full run (~15 s)
    .venv/bin/python benchmarks/openai_backend.py --quick    # a short check
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path

from _common import machine, write_results
from rationalrewards.backends import GenerationConfig
from rationalrewards.backends.openai_http import OpenAIBackend
from rationalrewards.conversation import Conversation
from rationalrewards.testing.loopback import LoopbackProcess

RESULTS = Path(__file__).parent / "results" / "openai_backend.json"
PROMPT = "Rate the image against the request 'three red cubes left of a blue sphere'. " * 12  # ~1 KB of text


async def measure(url: str, concurrency: int, requests: int, latency_s: float) -> dict:
    backend = OpenAIBackend(url, model="loopback-model", concurrency=concurrency, max_retries=0, timeout_s=30)
    config = GenerationConfig(n=1, max_tokens=256)
    convs = [Conversation().add("user", f"{PROMPT} #{i}") for i in range(requests)]
    async with backend:
        await backend.agenerate(convs[:concurrency], config)  # warm-up: open the connections
        backend.stats.requests = 0
        cpu0, t0 = time.process_time(), time.perf_counter()
        out = await backend.agenerate(convs, config)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    failed = sum(not o.ok for o in out)
    rate = requests / wall
    ideal = concurrency / latency_s
    lat = backend.stats.as_dict()["latency_s"]
    return {
        "concurrency": concurrency,
        "requests": requests,
        "failed": failed,
        "wall_s": round(wall, 3),
        "req_per_s": round(rate, 1),
        "ideal_req_per_s": round(ideal, 1),
        "fraction_of_ideal": round(rate / ideal, 3),
        "client_cpu_ms_per_request": round(1000 * cpu / requests, 3),
        "client_cpu_share": round(cpu / wall, 3),  # well below 1 with a low fraction: the client was starved
        "latency_p50_ms": round(1000 * lat["p50"], 1),
        "latency_p95_ms": round(1000 * lat["p95"], 1),
    }


async def measure_plain_httpx(url: str, concurrency: int, requests: int, latency_s: float) -> dict:
    """Baseline: one plain ``httpx.AsyncClient`` behind a semaphore (no sharding, no retries)."""
    import httpx

    body = {"model": "loopback-model", "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 256}
    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def one() -> bool:
            async with sem:
                r = await client.post(f"{url}/chat/completions", json=body)
                return r.status_code == 200 and bool(r.json()["choices"])

        await asyncio.gather(*(one() for _ in range(concurrency)))
        cpu0, t0 = time.process_time(), time.perf_counter()
        ok = await asyncio.gather(*(one() for _ in range(requests)))
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    ideal = concurrency / latency_s
    return {
        "client": "plain httpx.AsyncClient",
        "concurrency": concurrency,
        "requests": requests,
        "failed": requests - sum(ok),
        "wall_s": round(wall, 3),
        "req_per_s": round(requests / wall, 1),
        "ideal_req_per_s": round(ideal, 1),
        "fraction_of_ideal": round(requests / wall / ideal, 3),
        "client_cpu_ms_per_request": round(1000 * cpu / requests, 3),
        "client_cpu_share": round(cpu / wall, 3),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--latency-s", type=float, default=0.1, help="server latency per request")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 16, 64])
    p.add_argument("--rounds", type=int, default=30, help="requests per level = rounds x concurrency")
    p.add_argument("--quick", action="store_true", help="10 rounds per level")
    p.add_argument("--no-baseline", action="store_true", help="skip the plain-httpx baseline")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args()
    rounds = 10 if args.quick else args.rounds

    rows = []
    with LoopbackProcess(latency_s=args.latency_s) as server:
        for c in args.concurrency:
            server.stats(reset=True)
            row = asyncio.run(measure(server.url, c, rounds * c, args.latency_s))
            row["server_max_in_flight"] = server.stats()["max_in_flight"]
            rows.append(row)
        top_c = max(args.concurrency)
        baseline = (
            None
            if args.no_baseline
            else asyncio.run(measure_plain_httpx(server.url, top_c, rounds * top_c, args.latency_s))
        )

    head = f"{'conc':>5} {'reqs':>6} {'req/s':>8} {'ideal':>7} {'fraction':>9} {'cpu ms/req':>11} {'cpu share':>9}"
    head += f" {'p50 ms':>7} {'p95 ms':>7}"
    print(f"OpenAIBackend vs loopback server in a child process, latency {1000 * args.latency_s:g} ms")
    print(head)
    for r in rows:
        print(
            f"{r['concurrency']:>5} {r['requests']:>6} {r['req_per_s']:>8.1f} {r['ideal_req_per_s']:>7.0f} "
            f"{r['fraction_of_ideal']:>9.3f} {r['client_cpu_ms_per_request']:>11.3f} {r['client_cpu_share']:>9.2f} "
            f"{r['latency_p50_ms']:>7.1f} {r['latency_p95_ms']:>7.1f}"
        )
    if baseline:
        b = baseline
        print(
            f"baseline, one plain httpx.AsyncClient at concurrency {b['concurrency']}: {b['req_per_s']:.1f} req/s, "
            f"fraction {b['fraction_of_ideal']:.3f}, {b['client_cpu_ms_per_request']:.3f} cpu ms/req"
        )
    top = max(rows, key=lambda r: r["concurrency"])
    verdict = "meets" if top["fraction_of_ideal"] >= 0.8 else "MISSES"
    print(f"concurrency {top['concurrency']}: {top['fraction_of_ideal']:.3f} of ideal ({verdict} the 0.8 target)")

    record = {
        "benchmark": "openai_backend",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "latency_s": args.latency_s,
        "rounds": rounds,
        "target_fraction_at_64": 0.8,
        "machine": {**machine(), "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None},
        "results": rows,
        "baseline_plain_httpx": baseline,
    }
    write_results(args.out, record)


if __name__ == "__main__":
    main()
