"""The ``refine`` and ``refine-report`` commands (wired into the main CLI by ``register``).

``rationalrewards refine --bench FILE --generator SPEC --model SPEC -o runs/NAME [--method gcr|single|best-of-n]``
``rationalrewards refine-report runs/NAME [--compare runs/OTHER] [--embed]``
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..clikit import fail, key_values, one_line, print_lines

_GEN_HELP = "generator spec: diffusers:PATH_OR_ID[?edit&key=value...], openai-images:URL[?model=...], world"
_MODEL_HELP = "reward model backend spec: embedded, transformers:PATH, openai:URL[,URL], synthetic-teacher"


def _gen_kwargs(pairs: list[str]) -> dict:
    from .generators.base import coerce

    return {k: coerce(v) for k, v in key_values(pairs, "--gen-arg").items()}


def refine_command(
    bench: Path = typer.Option(
        ..., "--bench", "-b", help="benchmark prompt file (ImgEdit json, GEdit parquet/jsonl, UniGenBench csv, jsonl)"
    ),
    generator: str = typer.Option(..., "--generator", "-g", help=_GEN_HELP),
    model: str = typer.Option("embedded", "--model", "-m", help=_MODEL_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="run folder (resumable; refused if made with other settings)"),
    method: str = typer.Option("gcr", "--method", help="gcr, single or best-of-n"),
    rounds: int = typer.Option(3, "--rounds", min=1, help="GCR rounds (round 0 included)"),
    candidates: int = typer.Option(1, "--candidates", "-k", min=1, help="images per GCR round (GCR x best-of-K)"),
    budget: Optional[int] = typer.Option(
        None, "--budget", min=1, help="generator calls per item (best-of-n: N; default rounds x candidates)"
    ),
    threshold: Optional[float] = typer.Option(0.9, "--threshold", help="stop when the reward (0-1) reaches this"),
    floor: Optional[float] = typer.Option(
        None, "--floor", help="stop when every applicable dimension scores >= this (1-4)"
    ),
    patience: int = typer.Option(
        1, "--patience", min=0, help="stop after this many rounds without improvement (0: never)"
    ),
    seed: int = typer.Option(0, "--seed", help="base seed"),
    same_seed: bool = typer.Option(
        False, "--same-seed", help="reuse the same seeds every round (only the request changes)"
    ),
    append_comments: bool = typer.Option(
        False, "--append-comments", help="append the refinement comments to the refined request"
    ),
    keep_constraints: bool = typer.Option(
        True,
        "--keep-constraints/--no-keep-constraints",
        help="reject refined requests that drop a constraint of the original",
    ),
    template: str = typer.Option("request-first", "--template", "-t", help="prompt template name or file"),
    fmt: Optional[str] = typer.Option(
        None, "--format", help="imgedit, gedit, unigenbench or jsonl (default: detected)"
    ),
    images: Optional[Path] = typer.Option(None, "--images", help="folder of source images (ImgEdit; relative paths)"),
    language: Optional[str] = typer.Option(
        None, "--language", help="GEdit: keep rows of this instruction_language (en, cn)"
    ),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="only the first N items"),
    repeats: int = typer.Option(1, "--repeats", min=1, help="samples per prompt (UniGenBench expects 4)"),
    batch_size: int = typer.Option(
        8, "--batch-size", min=1, help="items run in lockstep (one generator and one critic call per round)"
    ),
    gen_arg: list[str] = typer.Option(
        [], "--gen-arg", help="extra generator option KEY=VALUE (repeatable), e.g. device=cuda"
    ),
    report: bool = typer.Option(True, "--report/--no-report", help="write report.html at the end"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="show a progress bar"),
) -> None:
    """Generate-Critique-Refine over a benchmark prompt file (or a single-shot / best-of-N baseline)."""
    from ..model import RationalRewardModel
    from .benchfiles import BenchFileError
    from .generators.base import load_generator
    from .runner import METHODS, run_refine

    if method not in METHODS:
        fail(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    try:
        gen = load_generator(generator, **_gen_kwargs(gen_arg))
    except (ImportError, ValueError, OSError, TypeError) as exc:
        fail(f"could not load generator {generator!r}: {one_line(exc)}")
    try:
        rm = RationalRewardModel(model, template=template)
    except Exception as exc:  # unknown spec, missing checkpoint, missing extra, bad template
        fail(f"could not load model {model!r}: {one_line(exc)}")
    try:
        result = run_refine(
            bench,
            gen,
            rm,
            out,
            method=method,
            budget=budget,
            format=fmt,
            images_dir=images,
            language=language,
            limit=limit,
            repeats=repeats,
            batch_size=batch_size,
            report=report,
            progress=progress,
            rounds=rounds,
            candidates=candidates,
            threshold=threshold,
            dimension_floor=floor,
            patience=patience or None,
            seed=seed,
            seed_mode="same" if same_seed else "new",
            append_comments=append_comments,
            keep_constraints=keep_constraints,
        )
    except (BenchFileError, ValueError, FileNotFoundError) as exc:
        fail(one_line(exc))
    s = result.summary

    def f(x: float | None) -> str:
        return "-" if x is None else f"{x:.3f}"

    lines = result.stage.lines()
    lines.append(
        f"mean reward: first {f(s['mean_first_reward'])} -> best {f(s['mean_best_reward'])} "
        f"(gain {f(s['mean_gain'])}); generator calls this run: {result.generator_calls}"
    )
    lines.append(f"final images: {out / 'final'}")
    if result.report is not None:
        lines.append(f"report: {result.report}")
    print_lines(lines)


def refine_report_command(
    run: Path = typer.Argument(..., help="a refine run folder"),
    compare: list[Path] = typer.Option(
        [], "--compare", "-c", help="other run folders to compare (default: sibling runs)"
    ),
    embed: bool = typer.Option(False, "--embed", help="embed images as data URLs (a self-contained page)"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="where to write the page (default RUN/report.html)"),
) -> None:
    """Write the HTML report of a refine run: image sequences, critiques, request diffs, scaling plot."""
    from .report import write_report

    try:
        page = write_report(run, out=out, compare=list(compare) or None, embed=embed)
    except (FileNotFoundError, ValueError) as exc:
        fail(one_line(exc))
    typer.echo(str(page))


def register(app: typer.Typer) -> None:
    """Add ``refine`` and ``refine-report`` to a Typer app."""
    app.command("refine")(refine_command)
    app.command("refine-report")(refine_report_command)
