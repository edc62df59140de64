"""``rationalrewards eval``: evaluate models on preference benchmarks, rescore runs, compare runs.

Examples::

    rationalrewards eval --bench genai-bench-t2i --data ./image_generation -m openai:http://h:8000/v1 -o runs/x
    rationalrewards eval report runs/x runs/y -o runs/compare
    rationalrewards eval rescore runs/x --reparse
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..clikit import fail, key_values, one_line

app = typer.Typer(
    help="Preference-prediction accuracy on public benchmarks (MMRB2, GenAI-Bench, EditReward-Bench, your pairs).",
    pretty_exceptions_show_locals=False,
)


def _mapping(text: Optional[str], what: str) -> Optional[dict[str, str]]:
    if not text:
        return None
    return key_values(text.split(","), f"--{what}", "key=value pairs separated by commas")


def _run(
    ctx: typer.Context,
    bench: Optional[list[str]] = typer.Option(
        None, "--bench", "-b", help="benchmark: mmrb2, genai-bench[-t2i|-edit], editreward-bench, synthetic, pairs"
    ),
    data: Optional[list[Path]] = typer.Option(
        None, "--data", "-d", help="parquet file/folder, JSONL, or save_to_disk folder (one per --bench)"
    ),
    model: Optional[list[str]] = typer.Option(
        None, "--model", "-m", help="backend spec (repeat to compare models): embedded, transformers:PATH, openai:URL"
    ),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="run folder (subfolders per benchmark and model)"),
    mode: str = typer.Option("pairwise", "--mode", help="pairwise (one compare call) or pointwise (two critiques)"),
    both_orders: Optional[bool] = typer.Option(
        None, "--both-orders/--one-order", help="judge each pair in both orders (default: the benchmark's protocol)"
    ),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="first N pairs only (whole groups)"),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="pairs per backend call"),
    template: str = typer.Option("request-first", "--template", "-t", help="prompt template name or file"),
    protocol: Optional[list[str]] = typer.Option(None, "--protocol", help="scoring protocol(s); default per benchmark"),
    columns: Optional[str] = typer.Option(
        None, "--columns", help="column mapping, e.g. request=prompt,image_a=left,image_b=right,label=winner"
    ),
    labels: Optional[str] = typer.Option(None, "--labels", help="extra label spellings, e.g. 0=A,1=B,2=tie"),
    split: Optional[str] = typer.Option(None, "--split", help="split of a save_to_disk DatasetDict"),
    subset: Optional[str] = typer.Option(None, "--subset", help="keep one subset, e.g. t2i or edit for MMRB2"),
    seed: int = typer.Option(0, "--seed", help="seed of the bootstrap and the held-out split"),
    reparse: bool = typer.Option(False, "--reparse", help="re-read stored raw texts with the current parser"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="show a progress bar"),
) -> None:
    """Evaluate model(s) on benchmark(s) into a resumable run folder; a rerun only rescores what is stored."""
    if ctx.invoked_subcommand is not None:
        return
    if not bench:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)
    if not data or len(data) != len(bench):
        fail(f"give one --data per --bench ({len(bench)} benchmarks, {len(data or [])} data paths)")
    if out is None:
        fail("--out/-o is required: the run folder")
    if mode not in ("pairwise", "pointwise"):
        fail(f"--mode must be pairwise or pointwise, got {mode!r}")
    from .runner import run_eval, slug

    models = model or ["embedded"]
    run_dirs: list[Path] = []
    for b, d in zip(bench, data, strict=True):
        for m in models:
            run_dir = out
            if len(bench) > 1:
                run_dir = run_dir / slug(b)
            if len(models) > 1:
                run_dir = run_dir / slug(m)
            try:
                result = run_eval(
                    b,
                    d,
                    m,
                    run_dir,
                    mode=mode,  # type: ignore[arg-type]
                    both_orders=both_orders,
                    limit=limit,
                    batch_size=batch_size,
                    template=template,
                    protocol_names=protocol,
                    columns=_mapping(columns, "columns"),
                    labels=_mapping(labels, "labels"),
                    split=split,
                    subset=subset,
                    seed=seed,
                    reparse=reparse,
                    progress=progress,
                )
            except (ValueError, FileNotFoundError, ImportError) as exc:
                fail(one_line(exc))
            _print_result(result)
            run_dirs.append(run_dir)
    if len(run_dirs) > 1:
        from .report import report

        md, _ = report(run_dirs, out=out)
        typer.echo(md)
        typer.echo(f"comparison: {out / 'report.html'}")


app.callback(invoke_without_command=True)(_run)
app.command("run")(_run)


def _print_result(result) -> None:  # noqa: ANN001 - EvalResult, imported lazily
    from rich.table import Table

    from ..clikit import console as make_console
    from .report import _fmt, headline

    console = make_console()
    if result.summary is not None:
        for line in result.summary.lines():
            console.print(line, highlight=False, markup=False)
    m = result.metrics
    table = Table(title=f"{m['bench']} · {m['model']} ({m['mode']}, {m['n_pairs']} pairs)")
    table.add_column("metric")
    table.add_column("accuracy % [95% CI]", justify="right")
    table.add_column("n", justify="right")
    for name, acc in headline(m):
        table.add_row(name, _fmt(acc), str(acc.get("total", 0)))
    console.print(table)
    for kind, path in result.reports.items():
        console.print(f"{kind}: {path}", highlight=False, markup=False)


@app.command("report")
def report_cmd(
    runs: list[Path] = typer.Argument(..., help="run folders (or folders holding run folders)"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="write report.md and report.html here"),
) -> None:
    """Compare finished runs in one table (benchmark metrics x models, with 95% CIs); nothing is recomputed."""
    from .report import report

    try:
        md, _ = report(runs, out=out)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        fail(one_line(exc))
    typer.echo(md)
    if out is not None:
        typer.echo(f"html: {out / 'report.html'}")


@app.command("rescore")
def rescore_cmd(
    run: Path = typer.Argument(..., help="a run folder"),
    reparse: bool = typer.Option(False, "--reparse", help="re-read stored raw texts with the current parser"),
    seed: int = typer.Option(0, "--seed", help="seed of the bootstrap and the held-out split"),
) -> None:
    """Recompute a run's metrics and reports from its stored outputs (no model calls, no data needed)."""
    from .runner import rescore

    try:
        result = rescore(run, seed=seed, reparse=reparse)
    except (FileNotFoundError, ValueError) as exc:
        fail(one_line(exc))
    _print_result(result)


@app.command("benchmarks")
def benchmarks_cmd() -> None:
    """List the benchmarks and protocols this harness knows."""
    from .benchmarks import BENCHMARKS
    from .protocols import PROTOCOLS

    for spec in BENCHMARKS.values():
        typer.echo(f"{spec.name:18} {spec.description} (protocols: {', '.join(spec.protocols)})")
    typer.echo("")
    for p in PROTOCOLS.values():
        typer.echo(f"{p.name:14} {p.title}: {p.description}")
