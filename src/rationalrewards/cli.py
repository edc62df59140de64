"""The ``rationalrewards`` command line: thin calls of library functions, grouped by area."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="rationalrewards",
    help="Reasoning reward models for image generation: critique, compare, train, evaluate, refine.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

# Area command groups are attached in _attach(); each lives beside its library code
# and imports heavy dependencies only inside its commands.


def _attach() -> None:
    pass


_attach()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
