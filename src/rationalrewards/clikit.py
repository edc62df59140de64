"""Small helpers every command-line module shares: consoles, one-line errors, ``KEY=VALUE`` options."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, NoReturn

import typer

if TYPE_CHECKING:
    from rich.console import Console


def console(stderr: bool = False) -> Console:
    """A rich console; the stderr one never wraps, so an error message stays one line."""
    from rich.console import Console

    return Console(stderr=stderr, soft_wrap=stderr)


def fail(message: str) -> NoReturn:
    """Print ``error: MESSAGE`` to stderr (the message is never read as markup) and exit with status 1."""
    from rich.text import Text

    console(stderr=True).print(Text.assemble(("error:", "bold red"), " ", message), highlight=False)
    raise typer.Exit(1)


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when the message is empty)."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def print_lines(lines: Iterable[str]) -> None:
    """Print plain lines to stdout (no markup, no highlighting)."""
    out = console()
    for line in lines:
        out.print(line, highlight=False, markup=False)


def key_values(items: Iterable[str], option: str, expected: str = "KEY=VALUE") -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}`` (keys and values stripped); ``fail`` on an item without ``=``."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            fail(f"{option} takes {expected}, got {item!r}")
        out[key.strip()] = value.strip()
    return out
