"""Prompt templates: Jinja2 files rendered from the rubric and the output-format skeleton into a Conversation.

Built-in layouts (files in this package):

- ``request-first``: request and images, then task, rubric and output format (as the
  public RationalRewards checkpoints were trained);
- ``prefix-shared``: task, rubric and output format in the system message, then the
  request and images last, so that a serving engine's prefix cache is shared.

Writing your own template file (``get_template("path/to/file.jinja")``):

- ``{{ role("system") }}``, ``{{ role("user") }}``, ``{{ role("assistant") }}`` start a
  message; text before the first ``role()`` goes to a user message.
- ``{{ image("output") }}`` places an image where it is called, splitting the message into
  text and image parts. Names: ``output`` (pointwise), ``a`` and ``b`` (pairwise),
  ``source`` (edits); ``render_conversation`` takes any names. Images belong in user messages.
- Variables: ``request``, ``task`` (``t2i``/``edit``), ``is_edit``, ``mode``
  (``pointwise``/``pairwise``), ``pairwise``, ``dimensions`` (each with ``number``, ``key``,
  ``title``, ``measures``, ``levels`` (descriptions of scores 1..4), ``allows_na``,
  ``na_when``), ``scale_min``, ``scale_max``, ``output_format`` (the protocol skeleton from
  ``format.skeleton``), ``image_names``, plus anything passed in ``context``.
- A first line ``{# version: X #}`` declares the template's version; ``PromptTemplate.version``
  is ``X+<hash>`` of the file, the rubric and the format, and every critique records it.
- Whitespace: blocks trim their newline (``trim_blocks``, ``lstrip_blocks``); each message
  is stripped at both ends.
- ``{% import "_common.jinja" as common with context %}`` reuses the built-in pieces.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from ..conversation import Conversation, ImagePart, Message, TextPart
from ..format import FORMAT_VERSION, skeleton
from ..rubric import DIMENSIONS, RUBRIC_VERSION, SCORE_MAX, SCORE_MIN, Task, dimensions_for
from ..schema import PreferencePair, Sample

TEMPLATE_DIR = Path(__file__).resolve().parent
LAYOUTS: dict[str, str] = {"request-first": "request-first.jinja", "prefix-shared": "prefix-shared.jinja"}
ROLES = ("system", "user", "assistant")
_VERSION_RE = re.compile(r"\A\s*\{#-?\s*version:\s*([^\s#]+)\s*-?#\}")


class TemplateError(ValueError):
    """A template could not be found or rendered, or it misplaces roles or images."""


def _jinja():
    try:
        import jinja2
    except ImportError as exc:  # pragma: no cover - jinja2 is a core dependency
        raise ImportError("rationalrewards templates need jinja2: pip install 'jinja2>=3.1'") from exc
    return jinja2


@lru_cache(maxsize=32)
def _environment(search_dir: str):
    jinja2 = _jinja()
    loader = jinja2.FileSystemLoader([search_dir, str(TEMPLATE_DIR)])
    return jinja2.Environment(
        loader=loader,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        auto_reload=False,
    )


def rubric_context(task: Task | str, pairwise: bool = False) -> dict[str, Any]:
    """The variables every template gets for ``task`` and mode: dimensions, scale, output format."""
    t = Task(task)
    dims = [
        {
            "number": i,
            "key": d.key,
            "title": d.title,
            "measures": d.measures,
            "levels": list(d.levels),
            "allows_na": d.allows_na,
            "na_when": d.na_when,
        }
        for i, d in enumerate(dimensions_for(t), start=1)
    ]
    return {
        "task": t.value,
        "is_edit": t is Task.EDIT,
        "mode": "pairwise" if pairwise else "pointwise",
        "pairwise": pairwise,
        "dimensions": dims,
        "scale_min": SCORE_MIN,
        "scale_max": SCORE_MAX,
        "output_format": skeleton(t, pairwise=pairwise),
    }


_MARKER = re.compile("\ue000([^:\ue000]*):(role|image):([^\ue000]*)\ue000")


def _split(rendered: str, nonce: str, images: dict[str, Any]) -> Conversation:
    messages: list[Message] = []
    current: Message | None = None
    pos = 0

    def text(chunk: str) -> None:
        nonlocal current
        if not chunk:
            return
        if current is None:
            if not chunk.strip():
                return
            current = Message("user")
            messages.append(current)
        current.parts.append(TextPart(chunk))

    for m in _MARKER.finditer(rendered):
        if m.group(1) != nonce:  # forged by text inside the context: stays text
            continue
        text(rendered[pos : m.start()])
        pos = m.end()
        kind, name = m.group(2), m.group(3)
        if kind == "role":
            current = Message(name)  # type: ignore[arg-type]
            messages.append(current)
        else:
            if current is None:
                current = Message("user")
                messages.append(current)
            if current.role != "user":
                raise TemplateError(f"image {name!r} placed in a {current.role} message; images go in user messages")
            current.parts.append(ImagePart(images[name]))
    text(rendered[pos:])

    conv = Conversation()
    for msg in messages:
        parts = list(msg.parts)
        if parts and isinstance(parts[0], TextPart):
            parts[0] = TextPart(parts[0].text.lstrip())
        if parts and isinstance(parts[-1], TextPart):
            parts[-1] = TextPart(parts[-1].text.rstrip())
        parts = [p for p in parts if not (isinstance(p, TextPart) and not p.text)]
        if parts:
            conv.messages.append(Message(msg.role, parts))
    if not conv.messages:
        raise TemplateError("the template rendered no message")
    return conv


def _merge_system(conv: Conversation) -> Conversation:
    """Fold system messages into the first user message (for models without a system role)."""
    system = "\n\n".join(m.text for m in conv.messages if m.role == "system")
    rest = [m for m in conv.messages if m.role != "system"]
    if not system:
        return conv
    for m in rest:
        if m.role == "user":
            m.parts.insert(0, TextPart(system + "\n\n"))
            break
    else:
        rest.insert(0, Message("user", [TextPart(system)]))
    return Conversation(rest)


@dataclass
class PromptTemplate:
    """A loaded template: ``pointwise(sample)`` and ``pairwise(pair)`` render Conversations.

    ``system=False`` folds the system message into the first user message.
    """

    name: str
    path: Path
    source: str
    declared_version: str
    system: bool = True
    _compiled: Any = field(default=None, repr=False)

    @cached_property
    def version(self) -> str:
        """``<declared>+<hash>`` of this file, the shared pieces, the rubric and the output format."""
        h = hashlib.sha256()
        for part in (self.source, _shared_source(), FORMAT_VERSION, RUBRIC_VERSION, repr(DIMENSIONS)):
            h.update(part.encode())
            h.update(b"\0")
        return f"{self.declared_version}+{h.hexdigest()[:8]}"

    def render(self, context: dict[str, Any], images: dict[str, Any]) -> Conversation:
        """Render with ``context`` variables and named ``images`` (see the module docs)."""
        nonce = secrets.token_hex(6)
        missing_ok = dict(images)

        def image(name: str) -> str:
            if name not in missing_ok or missing_ok[name] is None:
                have = ", ".join(k for k, v in missing_ok.items() if v is not None) or "none"
                raise TemplateError(f"template {self.name!r} asks for image {name!r}; available: {have}")
            return f"\ue000{nonce}:image:{name}\ue000"

        def role(name: str) -> str:
            if name not in ROLES:
                raise TemplateError(f"unknown role {name!r}; use one of {', '.join(ROLES)}")
            return f"\ue000{nonce}:role:{name}\ue000"

        variables = {**context, "image": image, "role": role}
        variables.setdefault("image_names", [k for k, v in images.items() if v is not None])
        jinja2 = _jinja()
        try:
            rendered = self._template().render(**variables)
        except jinja2.UndefinedError as exc:
            raise TemplateError(f"template {self.name!r}: {exc}") from None
        conv = _split(rendered, nonce, images)
        return conv if self.system else _merge_system(conv)

    def pointwise(self, sample: Sample) -> Conversation:
        context = {**rubric_context(sample.task, pairwise=False), "request": sample.request}
        images = {"output": sample.image}
        if sample.source is not None:
            images["source"] = sample.source
        return self.render(context, images)

    def pairwise(self, pair: PreferencePair) -> Conversation:
        # The label is never passed: a judging prompt must not see the answer.
        context = {**rubric_context(pair.task, pairwise=True), "request": pair.request}
        images = {"a": pair.image_a, "b": pair.image_b}
        if pair.source is not None:
            images["source"] = pair.source
        return self.render(context, images)

    def _template(self):
        if self._compiled is None:
            env = _environment(str(self.path.parent))
            try:
                self._compiled = env.from_string(self.source)
            except _jinja().TemplateSyntaxError as exc:
                raise TemplateError(f"template {self.path}: line {exc.lineno}: {exc.message}") from None
        return self._compiled


@lru_cache(maxsize=1)
def _shared_source() -> str:
    return (TEMPLATE_DIR / "_common.jinja").read_text(encoding="utf-8")


@lru_cache(maxsize=64)
def _load(path: str, source: str, system: bool) -> PromptTemplate:
    p = Path(path)
    m = _VERSION_RE.match(source)
    name = p.stem if p.parent == TEMPLATE_DIR else str(p)
    return PromptTemplate(name=name, path=p, source=source, declared_version=m.group(1) if m else "0", system=system)


def available() -> list[str]:
    """Names of the template files shipped in this package (``_``-prefixed files are pieces, not templates)."""
    return sorted(p.stem for p in TEMPLATE_DIR.glob("*.jinja") if not p.name.startswith("_"))


def get_template(name_or_path: str | Path | PromptTemplate = "request-first", system: bool = True) -> PromptTemplate:
    """A built-in template by name (layouts ``request-first``, ``prefix-shared``; see ``available()``) or a file path.

    A file is read on every call (an edited file gives a new template and a new version).
    """
    if isinstance(name_or_path, PromptTemplate):
        return name_or_path
    key = str(name_or_path)
    if key in LAYOUTS:
        p = TEMPLATE_DIR / LAYOUTS[key]
    elif key in available():
        p = TEMPLATE_DIR / f"{key}.jinja"
    else:
        p = Path(key).expanduser()
    if not p.is_file():
        raise TemplateError(f"no template {key!r}: not a built-in template ({', '.join(available())}) nor a file")
    try:
        source = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"cannot read template {p}: {exc}") from None
    return _load(str(p.resolve()), source, system)


def render_conversation(
    template: str | Path | PromptTemplate, context: dict[str, Any], images: dict[str, Any] | None = None
) -> Conversation:
    """Render any template (name, path or PromptTemplate) with ``context`` and named ``images``.

    The general primitive behind ``pointwise``/``pairwise``; start ``context`` from
    ``rubric_context(task, pairwise)`` to get the rubric variables.
    """
    return get_template(template).render(context, images or {})


__all__ = [
    "LAYOUTS",
    "TEMPLATE_DIR",
    "available",
    "PromptTemplate",
    "TemplateError",
    "get_template",
    "render_conversation",
    "rubric_context",
]
