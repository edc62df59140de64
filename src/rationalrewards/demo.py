"""``rationalrewards demo``: Generate-Critique-Refine in the synthetic world, with the truth shown beside the model.

A handful of world requests (text-to-image and edits, drawn by ``seed``) go through GCR with the
world's generator and a critic: by default the world's privileged teacher (``synthetic-teacher``),
named in the table title and the report. The embedded model (``--model embedded``) runs through the
same path, but it does not yet tell good images from bad (see its model card), so it is not the
default until it does. Because the world knows what
it drew, the demo prints, for the first image and the image GCR keeps, the *true* hidden human
utility and true per-dimension quality beside the model's reward: a reader sees whether the loop
helps for real. The run folder (``-o``, default ``./rationalrewards-demo``) holds the images, the
trajectories and ``report.html`` (``refine.report`` with the true utility added); ``demo.json`` has
the numbers of the table.

The truth is evaluation only: it is computed from the world's records after the loop has run and
never reaches the critic.
"""

from __future__ import annotations

import json
import shutil
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from .rubric import dimensions_for

if TYPE_CHECKING:
    from rich.console import Console

    from .model import RationalRewardModel
    from .refine.generators.world import WorldGenerator

DEFAULT_OUT = "rationalrewards-demo"
DEFAULT_MODEL = "synthetic-teacher"
DEFAULT_ITEMS = 8
DEFAULT_SEED = 0
DEFAULT_ROUNDS = 4
# files and folders a demo run writes (cleared before a rerun into the same folder)
_DEMO_FILES = ("run.json", "trajectories.jsonl", "summary.json", "report.html", "scaling.png", "demo.json")
_DEMO_DIRS = ("images", "final")
_MARKER = "demo.json"


@dataclass
class DemoItem:
    """One demo request: what the critic said and what was true, for the first image and the kept one."""

    id: str
    task: str
    request: str
    final_request: str
    rounds: int
    generator_calls: int
    stop_reason: str | None
    utility_before: float
    utility_after: float
    reward_before: float | None
    reward_after: float | None
    true_before: dict[str, float | None]
    true_after: dict[str, float | None]
    findings_before: list[str] = field(default_factory=list)
    findings_after: list[str] = field(default_factory=list)
    changed: str = ""


@dataclass
class DemoResult:
    """What ``run_demo`` did: the critic it used, one ``DemoItem`` per request, the report and the time taken."""

    out_dir: Path
    report: Path
    critic: str
    critic_note: str | None
    items: list[DemoItem]
    seconds: float

    @property
    def mean_utility_before(self) -> float:
        return statistics.fmean(i.utility_before for i in self.items)

    @property
    def mean_utility_after(self) -> float:
        return statistics.fmean(i.utility_after for i in self.items)

    @property
    def improved(self) -> int:
        return sum(i.utility_after > i.utility_before + 1e-9 for i in self.items)

    @property
    def worsened(self) -> int:
        return sum(i.utility_after < i.utility_before - 1e-9 for i in self.items)

    def to_dict(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "report": str(self.report),
            "critic": self.critic,
            "critic_note": self.critic_note,
            "seconds": self.seconds,
            "mean_utility_before": self.mean_utility_before,
            "mean_utility_after": self.mean_utility_after,
            "improved": self.improved,
            "worsened": self.worsened,
            "items": [asdict(i) for i in self.items],
        }


# ---------------------------------------------------------------------- the critic


def resolve_critic(model: Any) -> tuple[RationalRewardModel, str | None]:
    """The reward model for ``model`` (spec, Backend or model); the second item is kept for callers (always None)."""
    from .backends import Backend, load_backend
    from .model import RationalRewardModel

    if isinstance(model, RationalRewardModel):
        return model, None
    if isinstance(model, Backend):
        return RationalRewardModel(model), None
    if not isinstance(model, str) or not model.strip():
        raise ValueError("model must be a backend spec string, a Backend or a RationalRewardModel")
    return RationalRewardModel(load_backend(model)), None


# ---------------------------------------------------------------------- the run


def _prepare_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not (out / _MARKER).is_file():
            raise ValueError(f"{out} is not empty and holds no earlier demo run ({_MARKER}); choose another -o")
        for name in _DEMO_FILES:
            (out / name).unlink(missing_ok=True)
        for name in _DEMO_DIRS:
            if (out / name).is_dir():
                shutil.rmtree(out / name)
    out.mkdir(parents=True, exist_ok=True)


def demo_items(n_items: int, seed: int, world: Any) -> list[Any]:
    """``n_items`` world requests alternating text-to-image and edit (sources registered in ``world``)."""
    from .refine.benchfiles import BenchItem
    from .synthetic import make_bench

    out = []
    for i, it in enumerate(make_bench(n_items, seed=seed, task="both", world=world)):
        # the world's structured request (kept under EVAL_KEY) stays out: only the text goes in
        out.append(BenchItem(id=f"{i:02d}-{it.task}", request=it.request, source=it.source,
                             output=f"{i:02d}-{it.task}.png", meta={"task": it.task}))  # fmt: skip
    return out


def request_change(old: str, new: str, task: str = "t2i") -> str:
    """What the kept image's request states more explicitly than the user's, as the world's parser reads both.

    "" when unchanged; "reworded" when the text changed but no constraint got more explicit.
    """
    from .synthetic import parse_request

    if old.strip() == new.strip():
        return ""
    before = parse_request(old, task).explicitness()
    after = parse_request(new, task).explicitness()
    raised = [k for k, lvl in after.items() if lvl > before.get(k, 0)]
    if not raised:
        return "reworded"
    return "more explicit: " + ", ".join(k.replace("* ", "").replace(":", " ").replace("|", " ") for k in raised)


def _truth(gen: WorldGenerator, image_hash: str, request: str) -> Any:
    return gen.truth_of(image_hash, request)


def run_demo(
    out_dir: str | Path = DEFAULT_OUT,
    model: Any = DEFAULT_MODEL,
    n_items: int = DEFAULT_ITEMS,
    seed: int = DEFAULT_SEED,
    rounds: int = DEFAULT_ROUNDS,
    console: Console | None = None,
    quiet: bool = False,
) -> DemoResult:
    """GCR on ``n_items`` synthetic-world requests into ``out_dir``; prints the before/after table unless ``quiet``.

    ``model``: ``synthetic-teacher`` (default), ``embedded``, another backend spec, a Backend or a
    RationalRewardModel.
    """
    from .refine import RefinePolicy
    from .refine.generators.world import WORLD_CONSTRAINT_CHECK, WorldGenerator
    from .refine.loop import Trajectory
    from .refine.report import write_report
    from .refine.runner import load_run, run_refine
    from .synthetic import default_world

    if n_items < 1:
        raise ValueError(f"n_items must be >= 1, got {n_items}")
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    if console is None and not quiet:
        from rich.console import Console

        console = Console()
    t0 = time.perf_counter()
    out = Path(out_dir)
    _prepare_dir(out)
    rm, note = resolve_critic(model)
    if note and console is not None and not quiet:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    world = default_world()  # the world the teacher looks images up in
    gen = WorldGenerator(world)
    items = demo_items(n_items, seed, world)
    # stop when the critic finds nothing wrong (every dimension 4) or after ``rounds`` images
    policy = RefinePolicy(
        rounds=rounds, candidates=1, threshold=None, dimension_floor=4.0, patience=None, seed=seed,
        constraint_check=WORLD_CONSTRAINT_CHECK,
    )  # fmt: skip
    run_refine(items, gen, rm, out, method="gcr", policy=policy, report=False, progress=False, batch_size=len(items))
    _, records = load_run(out)
    trajs = {r["item_id"]: Trajectory.model_validate(r["trajectory"]) for r in records}

    demo: list[DemoItem] = []
    extra: dict[str, dict[str, Any]] = {}
    for it in items:
        t = trajs[it.id]
        first = t.rounds[0].candidates[t.rounds[0].best_candidate or 0]
        best = t.best()
        tb, ta = _truth(gen, first.image_hash, it.request), _truth(gen, best.image_hash, it.request)
        for rnd in t.rounds:
            for c in rnd.candidates:
                extra[c.image_hash] = {"true utility": _truth(gen, c.image_hash, it.request).utility}
        extra[t.id] = {"true utility first": tb.utility, "true utility kept": ta.utility}
        demo.append(
            DemoItem(
                id=it.id,
                task=it.meta["task"],
                request=it.request,
                final_request=t.best_request or it.request,
                rounds=len(t.rounds),
                generator_calls=t.generator_calls,
                stop_reason=t.stop_reason,
                utility_before=tb.utility,
                utility_after=ta.utility,
                reward_before=first.reward,
                reward_after=t.best_reward,
                true_before=dict(tb.scores),
                true_after=dict(ta.scores),
                findings_before=[f.description for f in tb.findings],
                findings_after=[f.description for f in ta.findings],
                changed=request_change(it.request, t.best_request or it.request, it.meta["task"]),
            )
        )
    critic = rm.name
    result = DemoResult(out_dir=out, report=out / "report.html", critic=critic, critic_note=note, items=demo,
                        seconds=0.0)  # fmt: skip
    summary_line = (
        f"Critic: {critic}{' (fallback: ' + note + ')' if note else ''}. Mean true human utility "
        f"{result.mean_utility_before:.3f} (first image) -> {result.mean_utility_after:.3f} (kept image); "
        f"{result.improved} of {len(demo)} items improved, {result.worsened} worsened. "
        "True utility comes from the synthetic world's hidden ground truth (evaluation only; the critic never sees it)."
    )
    result.report = write_report(out, compare=[], extra_columns=extra, note=summary_line)
    result.seconds = time.perf_counter() - t0
    (out / _MARKER).write_text(json.dumps(result.to_dict(), indent=2), encoding="utf-8")
    if console is not None and not quiet:
        print_table(result, console)
    return result


# ---------------------------------------------------------------------- the terminal table


def _num(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _arrow(a: float | None, b: float | None, digits: int = 2) -> str:
    if a is None and b is None:
        return "—"
    style = "green" if (a is not None and b is not None and b > a + 1e-9) else (
        "red" if (a is not None and b is not None and b < a - 1e-9) else "")  # fmt: skip
    text = f"{_num(a, digits)}→{_num(b, digits)}"
    return f"[{style}]{text}[/]" if style else text


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _dims_cell(item: DemoItem) -> str:
    parts = []
    for d in dimensions_for(item.task):
        before, after = item.true_before.get(d.key), item.true_after.get(d.key)
        if before is None and after is None:
            continue
        short = "".join(w[0] for w in d.key.split("_")).upper()
        parts.append(f"{short} {_num(before, 1)}→{_num(after, 1)}")
    return "\n".join(parts)


def build_table(result: DemoResult) -> Any:
    """The before/after table (a rich Table): one row per item."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    title = f"GCR in the synthetic world: critic {result.critic}"
    table = Table(title=title, show_lines=True, expand=False, box=box.SIMPLE_HEAD)
    table.add_column("#", justify="right")
    table.add_column("request", overflow="fold", min_width=12, max_width=44)
    table.add_column("rnd", justify="right")
    table.add_column("true util.", justify="center", no_wrap=True)
    table.add_column("reward", justify="center", no_wrap=True)
    table.add_column("true quality", justify="left", min_width=10)
    table.add_column("request change", overflow="fold", min_width=12, max_width=40)
    for i, it in enumerate(result.items):
        table.add_row(
            f"{i}\n{it.task}",
            Text(_short(it.request, 70)),
            str(it.rounds),
            _arrow(it.utility_before, it.utility_after),
            _arrow(it.reward_before, it.reward_after),
            _dims_cell(it),
            Text(it.changed or "(original request)"),
        )
    table.caption = (
        f"mean true utility {result.mean_utility_before:.3f} → {result.mean_utility_after:.3f} · "
        f"{result.improved} improved, {result.worsened} worsened · "
        "rnd: generator rounds; util.: hidden human utility; quality (1-4): TF text faithfulness, "
        "IF image faithfulness, PQ physical quality, TR text rendering"
    )
    return table


def print_table(result: DemoResult, console: Console) -> None:
    console.print(build_table(result))
    console.print(f"report: {result.report}  ({result.seconds:.1f} s)", highlight=False)


# ---------------------------------------------------------------------- the command


def demo_command(
    out: Path = typer.Option(Path(DEFAULT_OUT), "--out", "-o", help="folder for the images, trajectories and report"),
    model: str = typer.Option(
        DEFAULT_MODEL, "--model", "-m", help="critic backend spec (embedded, synthetic-teacher, transformers:PATH...)"
    ),
    items: int = typer.Option(DEFAULT_ITEMS, "--items", "-n", min=1, help="how many requests (half edits)"),
    seed: int = typer.Option(DEFAULT_SEED, "--seed", help="which requests and generator seeds"),
    rounds: int = typer.Option(DEFAULT_ROUNDS, "--rounds", min=1, help="GCR rounds (generator calls) per request"),
) -> None:
    """Generate-Critique-Refine in the synthetic world: true human utility before/after, beside the model's reward."""
    from rich.console import Console

    console = Console()
    try:
        run_demo(out, model=model, n_items=items, seed=seed, rounds=rounds, console=console)
    except (ValueError, RuntimeError) as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
