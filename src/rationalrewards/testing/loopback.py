"""Real HTTP servers on 127.0.0.1 that fake a remote chat-completions server and its failure modes.

``ScriptedChatServer`` runs an OpenAI-compatible ``/v1/chat/completions`` + ``/v1/models`` endpoint in a
background thread (plain asyncio streams, HTTP/1.1 with keep-alive). Its replies follow a script (one
behaviour per chat request, in order, then ``default``) or one function of the request. Behaviours:

    answer(...)        a chat completion (honours the request's ``n`` unless told otherwise; optional latency)
    error(status, ...) an HTTP error, optionally with ``Retry-After``
    hang()             never answer; the handler ends when the client hangs up
    garbage()          a 200 whose body is not JSON
    no_choices()       JSON without choices; ``no_content()``: choices without message content
    drop()             close the connection without answering

Every request is recorded (headers, JSON body, monotonic timestamps) and the server keeps the peak number
of chat requests in flight. ``LoopbackProcess`` runs a fixed-latency server in a child process, for
benchmarks that must not share the client's event loop: ``python -m rationalrewards.testing.loopback``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Union

__all__ = [
    "Behaviour",
    "LoopbackProcess",
    "RecordedRequest",
    "Reply",
    "ScriptedChatServer",
    "answer",
    "drop",
    "echo_text",
    "error",
    "garbage",
    "hang",
    "no_choices",
    "no_content",
]


@dataclass
class RecordedRequest:
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    t_received: float  # time.monotonic() when the whole request had been read
    index: int = -1  # position among chat requests (-1 for other paths)
    t_done: float | None = None  # when the reply was written (None: never answered)
    port: int = 0  # the server's port
    peer_port: int = 0  # the client's port: equal across requests means one kept-alive connection

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


@dataclass
class Reply:
    """A raw HTTP reply. ``hang`` waits until the client hangs up; ``drop`` closes the socket unanswered."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    hang: bool = False
    drop: bool = False

    @classmethod
    def of_json(cls, obj: Any, status: int = 200, **kwargs: Any) -> Reply:
        headers = {"content-type": "application/json", **kwargs.pop("headers", {})}
        return cls(status=status, body=json.dumps(obj).encode(), headers=headers, **kwargs)


BehaviourFn = Callable[[RecordedRequest], Union[Reply, Awaitable[Reply]]]
Behaviour = Union[Reply, BehaviourFn]
TextFn = Callable[[dict, int], str]


def echo_text(payload: dict, i: int) -> str:
    """Default answer text: the last user message's text, tagged with the sample index."""
    text = ""
    for m in payload.get("messages") or []:
        if m.get("role") != "user":
            continue
        content = m.get("content")
        if isinstance(content, str):
            text = content
        elif isinstance(content, list):
            text = "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return f"echo[{i}]: {text}"


def answer(
    text: str | TextFn | None = None,
    *,
    n: int | None = None,
    delay_s: float = 0.0,
    finish_reason: str = "stop",
) -> BehaviourFn:
    """A chat completion. ``text``: fixed, ``f(payload, sample_index)``, or the echo default; ``n``: how many
    choices to return whatever the request asked (``n=1`` fakes a server that ignores ``n``)."""

    def build(req: RecordedRequest) -> Reply:
        payload = req.json if isinstance(req.json, dict) else {}
        count = n if n is not None else int(payload.get("n") or 1)
        choices = []
        for i in range(count):
            t = text(payload, i) if callable(text) else (text if text is not None else echo_text(payload, i))
            choices.append({"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": finish_reason})
        body = {
            "id": f"chatcmpl-loopback-{req.index}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": payload.get("model", "loopback-model"),
            "choices": choices,
            "usage": {"prompt_tokens": 1, "completion_tokens": count, "total_tokens": 1 + count},
        }
        return Reply.of_json(body, delay_s=delay_s)

    return build


def error(status: int, message: str | None = None, *, retry_after: float | str | None = None, delay_s: float = 0.0):
    """An HTTP error with an OpenAI-style error body; ``retry_after`` sets the ``Retry-After`` header."""
    headers = {} if retry_after is None else {"retry-after": str(retry_after)}
    msg = message or HTTPStatus(status).phrase
    return Reply.of_json({"error": {"message": msg, "code": status}}, status=status, headers=headers, delay_s=delay_s)


def hang() -> Reply:
    """Read the request and never answer (the handler ends when the client closes the connection)."""
    return Reply(hang=True)


def garbage(body: bytes = b"<html>upstream exploded</html>", status: int = 200) -> Reply:
    """A reply whose body is not JSON."""
    return Reply(status=status, body=body, headers={"content-type": "text/html"})


def no_choices() -> Reply:
    """Valid JSON, but no choices."""
    return Reply.of_json({"id": "chatcmpl-empty", "object": "chat.completion", "choices": []})


def no_content() -> Reply:
    """Choices whose message has no content."""
    return Reply.of_json({"id": "chatcmpl-null", "choices": [{"index": 0, "message": {"role": "assistant"}}]})


def drop() -> Reply:
    """Close the connection without answering."""
    return Reply(drop=True)


class _StreamServer:
    """A tiny HTTP/1.1 server on asyncio streams, owned by one event loop."""

    def __init__(self, owner: ScriptedChatServer):
        self.owner = owner
        self.tasks: set[asyncio.Task] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.tasks.add(task)
        try:
            while True:
                line = await reader.readline()
                if not line.strip():
                    return
                method, target, *_ = line.decode("latin-1").split()
                headers: dict[str, str] = {}
                while True:
                    h = await reader.readline()
                    if h in (b"\r\n", b"\n", b""):
                        break
                    k, _, v = h.decode("latin-1").partition(":")
                    headers[k.strip().lower()] = v.strip()
                length = int(headers.get("content-length") or 0)
                body = await reader.readexactly(length) if length else b""
                req = RecordedRequest(method, target.split("?")[0], headers, body, time.monotonic())
                req.peer_port = (writer.get_extra_info("peername") or ("", 0))[1]
                keep = await self.owner._serve(req, reader, writer)
                if not keep or headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        except asyncio.CancelledError:  # server shutdown; ending normally keeps asyncio's stream callback quiet
            return
        finally:
            if task is not None:
                self.tasks.discard(task)
            writer.close()


class ScriptedChatServer:
    """An OpenAI-compatible chat server on 127.0.0.1 in a background thread; a context manager.

    ``behaviours``: a list (one per chat request, in order; then ``default``) or a single behaviour/function
    used for every chat request. ``models``: ids listed by ``GET /v1/models``, or a ``Reply`` to fail it.
    """

    def __init__(
        self,
        behaviours: Sequence[Behaviour] | Behaviour | None = None,
        *,
        default: Behaviour | None = None,
        models: Sequence[str] | Reply = ("loopback-model",),
        port: int = 0,
    ):
        if behaviours is None:
            self.script: list[Behaviour] = []
        elif isinstance(behaviours, Reply) or callable(behaviours):
            self.script, default = [], behaviours
        else:
            self.script = list(behaviours)
        self.default: Behaviour = default if default is not None else answer()
        self.models = models
        self.requested_port = port
        self.port = 0
        self.requests: list[RecordedRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._chat_count = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None

    # -- public surface -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """Base URL including ``/v1``, as a client takes it."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.index >= 0]

    def reset(self) -> None:
        """Forget recorded requests and the in-flight peak (the script position is kept)."""
        with self._lock:
            self.requests.clear()
            self.max_in_flight = self.in_flight

    def start(self) -> ScriptedChatServer:
        if self._thread is not None:
            raise RuntimeError("server already started")
        self._thread = threading.Thread(target=self._run, name=f"loopback-{id(self):x}", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("loopback server did not start within 10 s")
        if self._startup_error is not None:
            raise RuntimeError(f"loopback server failed to start: {self._startup_error}")
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self._thread = None

    def __enter__(self) -> ScriptedChatServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (the child-process entry point)."""
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(self._main(announce=True))

    # -- internals ------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surfaced by start()
            self._startup_error = exc
            self._ready.set()

    async def _main(self, announce: bool = False) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        streams = _StreamServer(self)
        server = await asyncio.start_server(streams.handle, "127.0.0.1", self.requested_port, backlog=1024)
        self.port = server.sockets[0].getsockname()[1]
        if announce:
            print(f"LISTENING {self.url}", flush=True)
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            server.close()
            for task in list(streams.tasks):
                task.cancel()
            await asyncio.gather(*streams.tasks, return_exceptions=True)
            await server.wait_closed()

    def _next_behaviour(self, req: RecordedRequest) -> Behaviour:
        with self._lock:
            req.index = self._chat_count
            self._chat_count += 1
            return self.script[req.index] if req.index < len(self.script) else self.default

    async def _serve(self, req: RecordedRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        req.port = self.port
        is_chat = req.path.endswith("/chat/completions")
        with self._lock:
            self.requests.append(req)
        if is_chat and req.method == "POST":
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
        if req.path.endswith("/models") and req.method == "GET":
            if isinstance(self.models, Reply):
                return await self._write(req, self.models, reader, writer)
            data = [{"id": m, "object": "model", "owned_by": "loopback"} for m in self.models]
            return await self._write(req, Reply.of_json({"object": "list", "data": data}), reader, writer)
        if req.path.endswith("/_loopback/stats"):
            with self._lock:
                stats = {"chat_requests": self._chat_count, "max_in_flight": self.max_in_flight}
                if req.method == "POST":  # read and reset the in-flight peak
                    self.max_in_flight = self.in_flight
            return await self._write(req, Reply.of_json(stats), reader, writer)
        return await self._write(req, error(404, f"no route for {req.method} {req.path}"), reader, writer)

    async def _write(
        self, req: RecordedRequest, reply: Reply, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if reply.drop:
            return False
        if reply.hang:
            while await reader.read(65536):  # until the client hangs up
                pass
            return False
        phrase = HTTPStatus(reply.status).phrase if reply.status in HTTPStatus._value2member_map_ else "Status"
        head = [f"HTTP/1.1 {reply.status} {phrase}", f"content-length: {len(reply.body)}"]
        head += [f"{k}: {v}" for k, v in reply.headers.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + reply.body)
        await writer.drain()
        req.t_done = time.monotonic()
        return True


class LoopbackProcess:
    """A fixed-latency chat server in a child process (its own interpreter and event loop); a context manager."""

    def __init__(self, latency_s: float = 0.1, port: int = 0):
        self.latency_s = latency_s
        self.port = port
        self.url = ""
        self._proc: subprocess.Popen | None = None

    def __enter__(self) -> LoopbackProcess:
        cmd = [sys.executable, "-m", "rationalrewards.testing.loopback", "--latency-s", str(self.latency_s)]
        cmd += ["--port", str(self.port)]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line.startswith("LISTENING "):
            self.__exit__()
            raise RuntimeError(f"loopback server process did not start (said {line!r})")
        self.url = line.split()[1]
        return self

    def stats(self, reset: bool = False) -> dict:
        """The child's counters: chat requests served and the peak number in flight (``reset``: restart the peak)."""
        import httpx

        url = self.url.removesuffix("/v1") + "/_loopback/stats"
        return (httpx.post(url, timeout=10) if reset else httpx.get(url, timeout=10)).json()

    def __exit__(self, *exc: Any) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            if self._proc.stdout is not None:
                self._proc.stdout.close()
            self._proc = None


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Serve a fake OpenAI-compatible chat endpoint on 127.0.0.1.")
    p.add_argument("--latency-s", type=float, default=0.1, help="seconds before each chat answer")
    p.add_argument("--port", type=int, default=0, help="port (0: a free one, printed on start)")
    args = p.parse_args(argv)
    ScriptedChatServer(answer(delay_s=args.latency_s), port=args.port).serve_forever()


if __name__ == "__main__":
    main()
