"""The project's own HTTP server on loopback, for tests and benchmarks.

``start_server(spec)`` runs ``python -m rationalrewards.server`` in a real subprocess on a free
port and returns once ``/health`` answers; ``ThreadedServer(app)`` serves an in-process app (for
example one over a ``ScriptedBackend``) with uvicorn in a background thread.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

API_KEY_ENV = "RATIONALREWARDS_API_KEY"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (another process may still take it before you do)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for_health(base_url: str, timeout: float, alive: Any = None) -> None:
    """Poll ``base_url/health`` until it answers 200; ``alive()`` returning False stops early."""
    import httpx

    deadline = time.monotonic() + timeout
    last: str = "no answer yet"
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise RuntimeError(f"server at {base_url} exited before answering /health")
        try:
            r = httpx.get(f"{base_url}/health", timeout=2.0)
            if r.status_code == 200:
                return
            last = f"HTTP {r.status_code}"
        except httpx.HTTPError as exc:
            last = f"{type(exc).__name__}"
        time.sleep(0.1)
    raise TimeoutError(f"server at {base_url} did not answer /health within {timeout:.0f} s ({last})")


class _LoopbackURLs:
    """``base_url`` and the OpenAI-style ``api_base`` of a server at ``self.host:self.port``."""

    host: str
    port: int

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_base(self) -> str:
        """The OpenAI-style base URL (``.../v1``)."""
        return f"http://{self.host}:{self.port}/v1"


@dataclass
class ServerProcess(_LoopbackURLs):
    """A running ``rationalrewards.server`` subprocess; ``stop()`` (or leaving the ``with``) ends it."""

    proc: subprocess.Popen
    host: str
    port: int
    log_path: Path
    api_key: str | None = None
    _log_file: Any = field(default=None, repr=False)

    def logs(self) -> str:
        """What the server printed so far (the log file is removed by ``stop``)."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
            self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_server(
    model_spec: str,
    *,
    api_key: str | None = None,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    host: str = "127.0.0.1",
    startup_timeout: float = 180.0,
    log_level: str = "warning",
    attempts: int = 3,
) -> ServerProcess:
    """Start ``python -m rationalrewards.server --model SPEC`` on a free loopback port and wait for ``/health``.

    The API key goes through the environment (not the command line). The server's output goes to a
    temporary log file, shown in the error if it fails to start. A port taken in between is retried.
    """
    last_error: Exception | None = None
    for _ in range(attempts):
        port = free_port(host)
        cmd = [sys.executable, "-m", "rationalrewards.server", "--model", model_spec, "--host", host]
        cmd += ["--port", str(port), "--log-level", log_level, *extra_args]
        child_env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **(env or {})}
        child_env.pop(API_KEY_ENV, None)
        if api_key:
            child_env[API_KEY_ENV] = api_key
        # the log file lives as long as the server; ServerProcess.stop() closes it
        log_file = tempfile.NamedTemporaryFile("w+b", prefix="rr-server-", suffix=".log", delete=False)  # noqa: SIM115
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=child_env)
        server = ServerProcess(proc, host, port, Path(log_file.name), api_key, log_file)
        try:
            wait_for_health(server.base_url, startup_timeout, alive=server.alive)
            return server
        except (RuntimeError, TimeoutError) as exc:
            server.proc.kill()
            server.proc.wait(15)
            logs = server.logs()
            server.stop()
            last_error = RuntimeError(f"{exc}\n--- server log ({server.log_path}) ---\n{logs[-4000:]}")
            if "address already in use" not in logs.lower():
                break
    assert last_error is not None
    raise last_error


@contextlib.contextmanager
def running_server(model_spec: str, **kwargs: Any) -> Iterator[ServerProcess]:
    """``with running_server("transformers:PATH") as srv: ...`` (see ``start_server``)."""
    server = start_server(model_spec, **kwargs)
    try:
        yield server
    finally:
        server.stop()


class ThreadedServer(_LoopbackURLs):
    """Serve an ASGI app with uvicorn in a daemon thread on a free loopback port.

    ``with ThreadedServer(app) as srv: httpx.get(srv.base_url + "/health")``. The socket is bound here and
    handed to uvicorn, so no other process can take the port in between.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int | None = None, startup_timeout: float = 30.0):
        import uvicorn

        self.host = host
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind((host, port or 0))
        self.port = self._socket.getsockname()[1]
        config = uvicorn.Config(app, host=host, port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.startup_timeout = startup_timeout
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._socket]}, daemon=True, name=f"uvicorn:{self.port}"
        )

    def start(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError(f"uvicorn thread for {self.base_url} exited during start-up")
            if time.monotonic() > deadline:
                raise TimeoutError(f"uvicorn on {self.base_url} did not start within {self.startup_timeout} s")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout)
        self._socket.close()

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
