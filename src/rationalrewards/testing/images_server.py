"""A real OpenAI-compatible images server on loopback, for tests of the images-endpoint generator.

``POST /v1/images/generations`` (JSON) and ``POST /v1/images/edits`` (multipart with ``image``)
answer with ``b64_json`` PNGs drawn by ``colour_world.paint``, a deterministic picture of the
request text (and seed, and source). Failures can be planted (the first ``fail_first`` requests
answer ``fail_status``) to test retries.
"""

import base64
import io
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .colour_world import paint
from .servers import ThreadedServer


@dataclass
class ImagesServerState:
    api_key: str | None = None
    fail_first: int = 0
    fail_status: int = 503
    retry_after: str | None = "0"
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def create_images_app(state: ImagesServerState):
    """The FastAPI app; every request is recorded in ``state.requests``.

    (This module has no ``from __future__ import annotations``: FastAPI must see ``Request`` as a class.)
    """
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    app = FastAPI()

    def _fail_or_auth(request: Request) -> JSONResponse | None:
        if state.api_key is not None and request.headers.get("authorization") != f"Bearer {state.api_key}":
            return JSONResponse({"error": {"message": "bad api key"}}, status_code=401)
        with state.lock:
            failing = state.fail_first > 0
            if failing:
                state.fail_first -= 1
        if failing:
            headers = {"Retry-After": state.retry_after} if state.retry_after is not None else {}
            return JSONResponse(
                {"error": {"message": "planted failure"}}, status_code=state.fail_status, headers=headers
            )
        return None

    def _answer(prompt: str, seed: int, source: Any | None) -> dict[str, Any]:
        buf = io.BytesIO()
        paint(prompt, seed, source).save(buf, format="PNG")
        return {"created": int(time.time()), "data": [{"b64_json": base64.b64encode(buf.getvalue()).decode()}]}

    @app.post("/v1/images/generations")
    async def generations(request: Request):
        body = await request.json()
        with state.lock:
            state.requests.append({"endpoint": "generations", **body})
        if (err := _fail_or_auth(request)) is not None:
            return err
        if not isinstance(body.get("prompt"), str):
            return JSONResponse({"error": {"message": "prompt is required"}}, status_code=400)
        return _answer(body["prompt"], int(body.get("seed", 0)), None)

    @app.post("/v1/images/edits")
    async def edits(request: Request):
        form = await request.form()
        upload = form.get("image")
        data = await upload.read() if upload is not None and hasattr(upload, "read") else None
        fields = {k: v for k, v in form.items() if k != "image"}
        with state.lock:
            state.requests.append({"endpoint": "edits", "image_bytes": len(data or b""), **fields})
        if (err := _fail_or_auth(request)) is not None:
            return err
        if data is None or not isinstance(fields.get("prompt"), str):
            return JSONResponse({"error": {"message": "image and prompt are required"}}, status_code=400)
        return _answer(fields["prompt"], int(fields.get("seed", 0)), data)

    return app


class ImagesServer(ThreadedServer):
    """Run the images app with uvicorn in a daemon thread: ``with ImagesServer() as srv: srv.base_url``."""

    def __init__(self, **state_kwargs: Any):
        self.state = ImagesServerState(**state_kwargs)
        super().__init__(create_images_app(self.state), startup_timeout=10.0)

    @property
    def base_url(self) -> str:
        """The images API's base URL (``.../v1``), as the images generator takes it."""
        return self.api_base
