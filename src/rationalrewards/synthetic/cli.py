"""``rationalrewards world ...``: sample images, make labelled pairs and benchmark sets, render the docs gallery."""

from __future__ import annotations

import json
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import typer

app = typer.Typer(
    name="world",
    help="The synthetic world: sample images with ground truth, make preference pairs and benchmark sets.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

TASK_HELP = "t2i, edit, or both (alternating)"


def _check(task: str, n: int) -> None:
    if task not in ("t2i", "edit", "both"):
        raise typer.BadParameter(f"task must be t2i, edit or both, not {task!r}")
    if n < 1:
        raise typer.BadParameter("n must be at least 1")


@contextmanager
def _progress(label: str, total: int, quiet: bool = False):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), disable=quiet or total < 50
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda k=1: bar.advance(task, k)


@app.command()
def sample(
    n: int = typer.Option(8, "-n", help="how many images"),
    out: Path = typer.Option(..., "-o", "--out", help="folder for the PNGs and index.json"),
    seed: int = typer.Option(0, "--seed", help="same seed, same images"),
    task: str = typer.Option("t2i", "--task", help=TASK_HELP),
    vividness: float = typer.Option(0.5, "--vividness", min=0.0, max=1.0, help="the generator's colour vividness"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
) -> None:
    """Write example images with their requests and true scores (index.json; the registry beside it)."""
    from ..images import to_png_bytes
    from .world import World, registry_path

    _check(task, n)
    out.mkdir(parents=True, exist_ok=True)
    world = World()
    entries = []
    with _progress("sampling", n, quiet) as tick:
        for i in range(n):
            t = ("t2i" if i % 2 == 0 else "edit") if task == "both" else task
            key = f"sample|{seed}|{i}"
            entry: dict = {"file": f"{i:05d}.png", "task": t}
            source = None
            if t == "edit":
                src = world.sample_source(key)
                (out / f"{i:05d}_source.png").write_bytes(to_png_bytes(src.image))
                entry["source_file"] = f"{i:05d}_source.png"
                source = src.record
                req, text = world.sample_request(key, "edit", source=src.record.scene)
            else:
                req, text = world.sample_request(key, "t2i")
            gen = world.generate(text, seed=seed * 100003 + i, vividness=vividness, source=source, task=t)
            (out / entry["file"]).write_bytes(to_png_bytes(gen.image))
            truth = world.truth(gen.record, req)
            entry.update(
                request=text,
                seed=gen.record.seed,
                vividness=vividness,
                scores=truth.scores,
                findings=[f.description for f in truth.findings],
                eval_only_utility=truth.utility,
            )
            entries.append(entry)
            tick()
    index = out / "index.json"
    index.write_text(json.dumps(entries, indent=2) + "\n")
    world.registry.save(registry_path(index))
    typer.echo(f"wrote {n} images and {index}")


@app.command("make-pairs")
def make_pairs_cmd(
    n: int = typer.Option(..., "-n", help="how many pairs"),
    out: Path = typer.Option(..., "-o", "--out", help="parquet file to write"),
    seed: int = typer.Option(0, "--seed", help="same seed, byte-identical file"),
    task: str = typer.Option("t2i", "--task", help=TASK_HELP),
    temperature: float = typer.Option(0.11, "--temperature", min=0.0, help="Bradley-Terry label noise"),
    tie_margin: float = typer.Option(0.02, "--tie-margin", min=0.0, help="utility gap below which labels are ties"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
) -> None:
    """Labelled preference pairs as parquet (PNG bytes embedded), with the world registry beside the file."""
    from .labeler import LabelerConfig, make_pairs, save_pairs
    from .world import World, registry_path

    _check(task, n)
    world = World()
    cfg = LabelerConfig(temperature=temperature, tie_margin=tie_margin)
    with _progress("pairs", n, quiet) as tick:
        pairs = make_pairs(n, seed=seed, task=task, world=world, config=cfg, progress=tick)
    save_pairs(pairs, out, registry=world.registry)
    labels = Counter(p.label for p in pairs)
    typer.echo(
        f"wrote {len(pairs)} pairs to {out} (A {labels['A']}, B {labels['B']}, tie {labels['tie']}); "
        f"registry {registry_path(out)}"
    )


@app.command("make-bench")
def make_bench_cmd(
    n: int = typer.Option(..., "-n", help="how many requests"),
    out: Path = typer.Option(..., "-o", "--out", help="JSONL file to write"),
    seed: int = typer.Option(0, "--seed", help="same seed, same file"),
    task: str = typer.Option("t2i", "--task", help=TASK_HELP),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
) -> None:
    """A pointwise benchmark set (requests, and source images for edits) for Generate-Critique-Refine and RL."""
    from .labeler import make_bench, save_bench
    from .world import World, registry_path

    _check(task, n)
    world = World()
    with _progress("requests", n, quiet) as tick:
        items = make_bench(n, seed=seed, task=task, world=world, progress=tick)
    save_bench(items, out, registry=world.registry)
    typer.echo(f"wrote {len(items)} requests to {out}; registry {registry_path(out)}")


@app.command()
def gallery(
    out: Path = typer.Option(Path("docs/images"), "-o", "--out", help="folder for the pictures"),
) -> None:
    """Render the pictures of docs/synthetic-world.md (and gallery.json with their requests and truth)."""
    from .gallery import write_gallery

    info = write_gallery(out)
    typer.echo(f"wrote {len(info['files'])} pictures to {out}")
