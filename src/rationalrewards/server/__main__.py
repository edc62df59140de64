"""``python -m rationalrewards.server --model SPEC [--host H] [--port P] [--api-key K]``."""

import typer

from .cli import serve_command

if __name__ == "__main__":
    typer.run(serve_command)
