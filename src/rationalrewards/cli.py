"""The ``rationalrewards`` command line: thin calls of library functions, grouped by area."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from .clikit import console as _console
from .clikit import fail, one_line
from .server.cli import serve_command

if TYPE_CHECKING:
    from rich.console import Console

    from .model import RationalRewardModel
    from .schema import Critique, PairwiseCritique

app = typer.Typer(
    name="rationalrewards",
    help="Reasoning reward models for image generation: critique, compare, train, evaluate, refine.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

DEFAULT_MODEL = "embedded"
SERVE_EXTRA = "pip install 'rationalrewards[serve]'"

_MODEL_HELP = "backend spec: embedded, transformers:PATH, openai:URL[,URL], synthetic-teacher"
_SAMPLES_HELP = "self-consistency samples, drawn at temperature 0.7 and averaged"
_TEMPLATE_HELP = "prompt template name (request-first, prefix-shared) or template file path"


def _image(path: Path, what: str) -> bytes:
    from .images import ImageError, load_image

    if not path.is_file():
        fail(f"{what} not found: {path}")
    data = path.read_bytes()
    try:
        load_image(data)
    except ImageError as exc:
        fail(f"{what} {path} is not a readable image: {one_line(exc)}")
    return data


def _load_model(spec: str, template: str = "request-first", n_samples: int = 1) -> RationalRewardModel:
    from .backends import GenerationConfig
    from .model import RationalRewardModel
    from .templates import get_template

    try:
        prompt_template = get_template(template)
    except Exception as exc:
        fail(f"could not load template {template!r}: {one_line(exc)}")
    generation = GenerationConfig(temperature=0.7 if n_samples > 1 else 0.0)
    try:
        return RationalRewardModel(spec, template=prompt_template, generation=generation, n_samples=n_samples)
    except Exception as exc:  # unknown spec, missing checkpoint, missing extra, bad template...
        fail(f"could not load model {spec!r}: {one_line(exc)}")


def _dims(task: Any) -> list[Any]:
    from .rubric import dimensions_for

    return list(dimensions_for(task))


def _fmt(score: float | None) -> str:
    return "N/A" if score is None else f"{score:.2f}"


def _labelled(console: Console, label: str, text: str) -> None:
    from rich.text import Text

    console.print(Text.assemble((label, "bold"), " ", text), highlight=False)


def _texts(console: Console, c: Critique | PairwiseCritique) -> None:
    if c.summary:
        _labelled(console, "Summary:", c.summary)
    if c.refined_request:
        _labelled(console, "Refined request:", c.refined_request)


def _print_status(console: Console, c: Critique | PairwiseCritique) -> None:
    from rich.text import Text

    if c.parse_status != "ok":
        style = "red" if c.parse_status == "failed" else "yellow"
        console.print(Text(f"parse status: {c.parse_status}", style=style))
        for err in c.parse_errors:
            console.print(Text(f"  - {err}", style=style), highlight=False)


def _print_critique(c: Critique, reward: float | None) -> None:
    from rich.table import Table
    from rich.text import Text

    console = _console()
    table = Table(title="Critique", show_lines=True, expand=False)
    table.add_column("Dimension", style="bold")
    table.add_column("Score", justify="right")
    if c.spread:
        table.add_column("± std", justify="right")
    table.add_column("Justification", overflow="fold")
    for d in _dims(c.task):
        row = [d.title, _fmt(c.scores.get(d.key))]
        if c.spread:
            sd = c.spread.get(d.key)
            row.append("" if sd is None else f"{sd:.2f}")
        row.append(Text(c.justifications.get(d.key, "")))
        table.add_row(*row)
    console.print(table)
    _labelled(console, "Reward:", "none (unparsed)" if reward is None else f"{reward:.3f}")
    _texts(console, c)
    _print_status(console, c)


def _print_pairwise(c: PairwiseCritique) -> None:
    from rich.table import Table
    from rich.text import Text

    console = _console()
    table = Table(title="Pairwise critique", show_lines=True, expand=False)
    table.add_column("Dimension", style="bold")
    table.add_column("A", justify="right")
    table.add_column("B", justify="right")
    table.add_column("Winner", justify="center")
    table.add_column("Justification", overflow="fold")
    for d in _dims(c.task):
        winner = c.winners.get(d.key)
        table.add_row(
            d.title,
            _fmt(c.scores_a.get(d.key)),
            _fmt(c.scores_b.get(d.key)),
            winner or "-",
            Text(c.justifications.get(d.key, "")),
        )
    ra, rb = c.reward_a, c.reward_b
    table.add_row("Reward", "-" if ra is None else f"{ra:.3f}", "-" if rb is None else f"{rb:.3f}", "", "")
    console.print(table)
    verdict = {"A": "A is better", "B": "B is better", "tie": "tie"}.get(c.preference or "", "no preference parsed")
    _labelled(console, "Preference:", verdict)
    if c.position_consistent is not None:
        note = "both orders agree" if c.position_consistent else "the two orders disagree"
        _labelled(console, "Position check:", note)
    _texts(console, c)
    _print_status(console, c)


@app.command()
def critique(
    image: Path = typer.Option(..., "--image", "-i", help="the generated (or edited) image"),
    prompt: str = typer.Option(..., "--prompt", "-p", help="the request or edit instruction"),
    source: Optional[Path] = typer.Option(None, "--source", "-s", help="the source image, for an edit"),
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help=_MODEL_HELP),
    template: str = typer.Option("request-first", "--template", "-t", help=_TEMPLATE_HELP),
    samples: int = typer.Option(1, "--samples", "-n", min=1, help=_SAMPLES_HELP),
    as_json: bool = typer.Option(False, "--json", help="print the critique as JSON"),
) -> None:
    """Critique one image against a request: per-dimension scores, justifications, a refined request."""
    from .schema import Sample

    sample = Sample(
        request=prompt,
        image=_image(image, "image"),
        source=_image(source, "source image") if source is not None else None,
    )
    rm = _load_model(model, template, samples)
    c = rm.critique([sample])[0]
    if as_json:
        typer.echo(c.model_dump_json(indent=2))
    else:
        _print_critique(c, rm.reward_of(c))


@app.command()
def compare(
    image_a: Path = typer.Option(..., "--image-a", "-a", help="output A"),
    image_b: Path = typer.Option(..., "--image-b", "-b", help="output B"),
    prompt: str = typer.Option(..., "--prompt", "-p", help="the request or edit instruction"),
    source: Optional[Path] = typer.Option(None, "--source", "-s", help="the source image, for an edit"),
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help=_MODEL_HELP),
    template: str = typer.Option("request-first", "--template", "-t", help=_TEMPLATE_HELP),
    both_orders: bool = typer.Option(False, "--both-orders", help="also judge with A and B exchanged, reconcile"),
    as_json: bool = typer.Option(False, "--json", help="print the pairwise critique as JSON"),
) -> None:
    """Compare two outputs for one request: scores for both, per-dimension winners, a preference."""
    from .schema import PreferencePair

    pair = PreferencePair(
        request=prompt,
        image_a=_image(image_a, "image A"),
        image_b=_image(image_b, "image B"),
        source=_image(source, "source image") if source is not None else None,
    )
    rm = _load_model(model, template)
    c = rm.compare([pair], both_orders=both_orders)[0]
    if as_json:
        typer.echo(c.model_dump_json(indent=2))
    else:
        _print_pairwise(c)


@app.command("critique-batch")
def critique_batch(
    data: Path = typer.Argument(..., help="a JSONL or parquet file of samples (request/prompt, image, source, id)"),
    out: Path = typer.Option(..., "--out", "-o", help="output JSONL (resumable: done ids are skipped)"),
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help=_MODEL_HELP),
    template: str = typer.Option("request-first", "--template", "-t", help=_TEMPLATE_HELP),
    samples: int = typer.Option(1, "--samples", "-n", min=1, help=_SAMPLES_HELP),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="samples per backend call"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="show a progress bar"),
) -> None:
    """Critique every sample of a data file into a resumable JSONL of records."""
    from .batch import critique_file
    from .data import DataError, load_samples

    try:
        items = load_samples(data)
    except DataError as exc:
        fail(one_line(exc))
    rm = _load_model(model, template, samples)
    try:
        summary = critique_file(items, out, rm, batch_size=batch_size, progress=progress)
    except ValueError as exc:  # e.g. an output file written by another model
        fail(one_line(exc))
    console = _console()
    for line in summary.lines():
        console.print(line, highlight=False, markup=False)
    console.print(f"records: {out}", highlight=False, markup=False)


def _serve_missing_extra() -> list[str]:
    import importlib.util

    return [m for m in ("fastapi", "uvicorn") if importlib.util.find_spec(m) is None]


@functools.wraps(serve_command)
def serve(**kwargs: Any) -> None:
    if missing := _serve_missing_extra():
        fail(f"serving needs {' and '.join(missing)}: {SERVE_EXTRA}")
    try:
        serve_command(**kwargs)
    except (typer.Exit, KeyboardInterrupt):
        raise
    except Exception as exc:  # unknown spec, missing checkpoint, port in use...
        fail(f"could not serve model {kwargs.get('model')!r}: {one_line(exc)}")


# the server area owns the options (limits, remote images...); this wrapper only turns a
# missing extra or a load error into a one-line message
app.command("serve")(serve)


# Area command groups are attached in _attach(); each lives beside its library code
# and imports heavy dependencies only inside its commands.


def _attach() -> None:
    from .demo import demo_command
    from .evaluate.cli import app as eval_app
    from .parrot.cli import app as parrot_app
    from .parrot.cli import train_command
    from .refine.cli import register as register_refine
    from .synthetic.cli import app as world_app

    app.add_typer(world_app, name="world", help="The synthetic world: scenes, generations, preference pairs.")
    app.add_typer(eval_app, name="eval")
    app.add_typer(parrot_app, name="parrot", help="PARROT: hindsight rationales, consistency filtering, export.")
    app.command("train")(train_command)
    register_refine(app)
    app.command("demo")(demo_command)


_attach()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
