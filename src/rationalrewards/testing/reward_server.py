"""A real HTTP reward server on 127.0.0.1 with scripted failures, for testing ``rl.client.RewardClient``.

``ScriptedRewardServer`` is a ``loopback.ScriptedChatServer`` whose ``POST /v1/reward`` follows the script
(one behaviour per reward request, in order, then ``default``): ``reward_answer(fn)`` answers in the
server's ``RewardResponse`` shape, and every failure behaviour of ``loopback`` (``error(429,
retry_after=...)``, ``error(503)``, ``hang()``, ``drop()``, ``garbage()``) works unchanged. Requests are
recorded as in the chat server (``reward_requests``).
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from ..rubric import SCORE_MAX, SCORE_MIN, dimensions_for
from .loopback import Behaviour, RecordedRequest, Reply, ScriptedChatServer, drop, error, garbage, hang

__all__ = [
    "ScriptedRewardServer",
    "drop",
    "error",
    "garbage",
    "hang",
    "reward_answer",
    "text_reward",
]

RewardFn = Callable[[dict, int], "float | None"]


def text_reward(request: str) -> float:
    """A stable reward in [0, 1] that depends only on the request text."""
    return int(hashlib.sha256(request.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def _default_fn(item: dict, index: int) -> float | None:
    return text_reward(item.get("request", ""))


def reward_answer(fn: RewardFn | None = None, *, model: str = "scripted-reward", delay_s: float = 0.0) -> Any:
    """A ``RewardResponse`` with ``reward = fn(item, index)`` (default ``text_reward(item["request"])``).

    ``None`` from ``fn`` makes that item a failed parse (null reward and scores). Every applicable dimension
    scores ``1 + 3 * reward``, so the aggregate of the scores is the reward again.
    """
    fn = fn or _default_fn

    def build(req: RecordedRequest) -> Reply:
        payload = req.json if isinstance(req.json, dict) else {}
        results = []
        for i, item in enumerate(payload.get("items") or []):
            reward = fn(item, i)
            task = "edit" if item.get("source") else "t2i"
            keys = [d.key for d in dimensions_for(task)]
            if reward is None:
                scores = {k: None for k in keys}
                status, error_text = "failed", "scripted failure"
            else:
                scores = {k: SCORE_MIN + (SCORE_MAX - SCORE_MIN) * reward for k in keys}
                status, error_text = "ok", None
            results.append(
                {
                    "id": item.get("id"),
                    "reward": reward,
                    "scores": scores,
                    "parse_ok": status == "ok",
                    "parse_status": status,
                    "error": error_text,
                }
            )
        body = {
            "object": "reward.list",
            "model": model,
            "results": results,
            "n_failed": sum(r["reward"] is None for r in results),
        }
        return Reply.of_json(body, delay_s=delay_s)

    return build


class ScriptedRewardServer(ScriptedChatServer):
    """``POST /v1/reward`` scripted like the chat route of ``ScriptedChatServer`` (a context manager)."""

    def __init__(
        self,
        behaviours: Sequence[Behaviour] | Behaviour | None = None,
        *,
        default: Behaviour | None = None,
        port: int = 0,
    ):
        super().__init__(behaviours, default=default if default is not None else reward_answer(), port=port)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def reward_requests(self) -> list[RecordedRequest]:
        return self.chat_requests

    async def _serve(self, req: RecordedRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        if not (req.method == "POST" and req.path.endswith("/v1/reward")):
            return await super()._serve(req, reader, writer)
        req.port = self.port
        with self._lock:
            self.requests.append(req)
        behaviour = self._next_behaviour(req)
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            reply = behaviour(req) if callable(behaviour) else behaviour
            if inspect.isawaitable(reply):
                reply = await reply
            return await self._write(req, reply, reader, writer)
        finally:
            with self._lock:
                self.in_flight -= 1
