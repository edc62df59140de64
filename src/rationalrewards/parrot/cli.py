"""``rationalrewards parrot hindsight|filter|export|run`` and ``rationalrewards train``: thin calls of the stages."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional, TypeVar

import typer

from ..clikit import fail, one_line, print_lines

T = TypeVar("T")

app = typer.Typer(
    name="parrot",
    help="PARROT data stages: hindsight rationales, consistency filtering, SFT export (resumable).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

_DATA_HELP = "preference data: parquet, JSONL, JSON (HPDv3), a parquet folder or a datasets.save_to_disk folder"
_FORMAT_HELP = "data format: auto, editreward, hpdv3, imagerewarddb, pickapic, pairs"
_TEACHER_HELP = "teacher backend spec: openai:URL[,URL...], transformers:PATH, synthetic-teacher"


def _call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a stage; the errors a user can fix end the command with a one-line message."""
    try:
        return fn(*args, **kwargs)
    except (ValueError, ImportError, FileNotFoundError) as exc:
        fail(one_line(exc))


def _pairs(data: Path, fmt: str, split: Optional[str], limit: Optional[int], image_root: Optional[Path]) -> list:
    from .pipeline import load_pairs

    options: dict[str, Any] = {}
    if image_root is not None:
        options["image_root"] = image_root
    return _call(load_pairs, data, format=fmt, split=split, limit=limit, **options)  # DataError is a ValueError


def _config(path: Optional[Path]) -> dict[str, Any]:
    if path is None:
        return {}
    import yaml

    if not path.is_file():
        fail(f"config file not found: {path}")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        fail(f"{path}: expected a mapping at the top level")
    return data


def _build(cls: type, base: dict[str, Any], /, **flags: Any) -> Any:
    from .config import from_dict

    merged = {**base, **{k: v for k, v in flags.items() if v is not None}}
    try:
        return from_dict(cls, merged)
    except (TypeError, ValueError) as exc:
        fail(one_line(exc))


def _checks(value: Optional[str]) -> Optional[tuple[str, ...]]:
    if value is None:
        return None
    return tuple(c.strip() for c in value.split(",") if c.strip() and c.strip() != "none")


# shared options
_data_arg = typer.Argument(..., help=_DATA_HELP)
_format_opt = typer.Option("auto", "--format", "-f", help=_FORMAT_HELP)
_split_opt = typer.Option(None, "--split", help="split of a datasets folder with several")
_limit_opt = typer.Option(None, "--limit", min=1, help="use only the first N pairs")
_root_opt = typer.Option(None, "--image-root", help="folder that relative image paths start from (HPDv3)")
_config_opt = typer.Option(None, "--config", "-c", help="YAML file with the stage's config fields")
_progress_opt = typer.Option(True, "--progress/--no-progress", help="show progress bars")
_teacher_opt = typer.Option(None, "--teacher", "-t", help=_TEACHER_HELP)
_batch_opt = typer.Option(None, "--batch-size", min=1, help="pairs per teacher call")
_checks_opt = typer.Option(None, "--checks", help="comma list of leak, scores, teacher (or none)")


@app.command()
def hindsight(
    data: Path = _data_arg,
    out: Path = typer.Option(..., "--out", "-o", help="hindsight records (JSONL; resumable)"),
    teacher: Optional[str] = _teacher_opt,
    samples: Optional[int] = typer.Option(None, "--samples", "-k", min=1, help="rationales per pair"),
    temperature: Optional[float] = typer.Option(None, "--temperature", help="sampling temperature"),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", help="tokens per rationale"),
    seed: Optional[int] = typer.Option(None, "--seed", help="sampling seed"),
    mode: Optional[str] = typer.Option(None, "--mode", help="anchored (PARROT) or direct (no label: the baseline)"),
    batch_size: Optional[int] = _batch_opt,
    fmt: str = _format_opt,
    split: Optional[str] = _split_opt,
    limit: Optional[int] = _limit_opt,
    image_root: Optional[Path] = _root_opt,
    config: Optional[Path] = _config_opt,
    progress: bool = _progress_opt,
) -> None:
    """Phase 1: the teacher explains each pair's human label in k pairwise rationales."""
    from .config import HindsightConfig
    from .pipeline import run_hindsight

    cfg = _build(
        HindsightConfig,
        _config(config),
        teacher=teacher,
        samples=samples,
        temperature=temperature,
        max_tokens=max_tokens,
        seed=seed,
        mode=mode,
        batch_size=batch_size,
    )
    pairs = _pairs(data, fmt, split, limit, image_root)
    summary = _call(run_hindsight, pairs, out, cfg, progress=progress)
    print_lines(summary.lines() + [f"records: {out}"])


@app.command("filter")
def filter_(
    data: Path = _data_arg,
    hindsight_path: Path = typer.Option(..., "--hindsight", help="hindsight records from `parrot hindsight`"),
    out: Path = typer.Option(..., "--out", "-o", help="filter records (JSONL; resumable)"),
    teacher: Optional[str] = _teacher_opt,
    checks: Optional[str] = _checks_opt,
    tie_margin: Optional[float] = typer.Option(None, "--tie-margin", help="score points that count as a tie"),
    votes: Optional[int] = typer.Option(None, "--votes", min=1, help="consistency answers per rationale"),
    temperature: Optional[float] = typer.Option(None, "--temperature", help="temperature of the answers"),
    view: Optional[str] = typer.Option(None, "--view", help="justifications, text or full"),
    best_of_k: Optional[bool] = typer.Option(None, "--best-of-k/--all-kept", help="keep one rationale per pair"),
    batch_size: Optional[int] = _batch_opt,
    fmt: str = _format_opt,
    split: Optional[str] = _split_opt,
    limit: Optional[int] = _limit_opt,
    image_root: Optional[Path] = _root_opt,
    config: Optional[Path] = _config_opt,
    report: Optional[Path] = typer.Option(None, "--report", help="also write the retention report as JSON"),
    progress: bool = _progress_opt,
) -> None:
    """Phase 2: keep the rationales from which the label can be predicted; report retention."""
    from .config import ConsistencyConfig
    from .pipeline import run_filter

    cfg = _build(
        ConsistencyConfig,
        _config(config),
        teacher=teacher,
        checks=_checks(checks),
        tie_margin=tie_margin,
        votes=votes,
        temperature=temperature,
        view=view,
        best_of_k=best_of_k,
        batch_size=batch_size,
    )
    pairs = _pairs(data, fmt, split, limit, image_root)
    summary, rep = _call(run_filter, pairs, hindsight_path, out, cfg, progress=progress)
    print_lines(summary.lines() + rep.lines() + [f"records: {out}"])
    if report is not None:
        report.write_text(json.dumps(rep.to_dict(), indent=2), encoding="utf-8")


@app.command()
def export(
    data: Path = _data_arg,
    filtered: Path = typer.Option(..., "--filtered", help="filter records from `parrot filter`"),
    out: Path = typer.Option(..., "--out", "-o", help="output folder (hf/ and sharegpt/ inside)"),
    template: Optional[str] = typer.Option(None, "--template", help="the reward model's template (name or file)"),
    pointwise: Optional[bool] = typer.Option(None, "--pointwise/--no-pointwise", help="add projected pointwise"),
    pairwise_fraction: Optional[float] = typer.Option(None, "--pairwise-fraction", help="share of pairwise records"),
    eval_fraction: Optional[float] = typer.Option(None, "--eval-fraction", help="share of pairs held out (test)"),
    seed: Optional[int] = typer.Option(None, "--seed", help="seed of the mix and the split"),
    formats: Optional[str] = typer.Option(None, "--formats", help="comma list of hf, sharegpt"),
    fmt: str = _format_opt,
    split: Optional[str] = _split_opt,
    limit: Optional[int] = _limit_opt,
    image_root: Optional[Path] = _root_opt,
    config: Optional[Path] = _config_opt,
) -> None:
    """Phase 3 data: kept rationales (pairwise + projected pointwise) as SFT datasets."""
    from .config import ExportConfig
    from .pipeline import run_export

    cfg = _build(
        ExportConfig,
        _config(config),
        template=template,
        pointwise=pointwise,
        pairwise_fraction=pairwise_fraction,
        eval_fraction=eval_fraction,
        seed=seed,
        formats=tuple(f.strip() for f in formats.split(",")) if formats else None,
    )
    pairs = _pairs(data, fmt, split, limit, image_root)
    summary = _call(run_export, pairs, filtered, out, cfg)
    print_lines(summary.lines())


@app.command()
def run(
    data: Path = _data_arg,
    out: Path = typer.Option(..., "--out", "-o", help="work folder: hindsight.jsonl, filter.jsonl, sft/, summary.json"),
    teacher: Optional[str] = _teacher_opt,
    mode: str = typer.Option("anchored", "--mode", help="anchored (PARROT) or direct (baseline: no label, no filter)"),
    samples: Optional[int] = typer.Option(None, "--samples", "-k", min=1, help="rationales per pair"),
    checks: Optional[str] = _checks_opt,
    eval_fraction: Optional[float] = typer.Option(None, "--eval-fraction", help="share of pairs held out"),
    fmt: str = _format_opt,
    split: Optional[str] = _split_opt,
    limit: Optional[int] = _limit_opt,
    image_root: Optional[Path] = _root_opt,
    config: Optional[Path] = typer.Option(
        None, "--config", "-c", help="YAML with hindsight:, consistency:, export: sections"
    ),
    progress: bool = _progress_opt,
) -> None:
    """All three data stages (resumable): hindsight, filter, export."""
    from .config import ConsistencyConfig, ExportConfig, HindsightConfig, PipelineConfig
    from .pipeline import run_pipeline

    data_cfg = _config(config)
    unknown = sorted(set(data_cfg) - {"hindsight", "consistency", "export"})
    if unknown:
        fail(f"unknown config section(s) {unknown}; known: hindsight, consistency, export")
    cfg = PipelineConfig(
        hindsight=_build(HindsightConfig, data_cfg.get("hindsight") or {}, teacher=teacher, samples=samples),
        consistency=_build(ConsistencyConfig, data_cfg.get("consistency") or {}, checks=_checks(checks)),
        export=_build(ExportConfig, data_cfg.get("export") or {}, eval_fraction=eval_fraction),
    )
    pairs = _pairs(data, fmt, split, limit, image_root)
    result = _call(run_pipeline, pairs, out, cfg, mode=mode, progress=progress)
    objs = result["_objects"]
    print_lines(
        objs["hindsight"].lines()
        + objs["filter"].lines()
        + objs["report"].lines()
        + objs["export"].lines()
        + [f"summary: {out / 'summary.json'}"]
    )


def train_command(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML file with TrainConfig fields"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="base checkpoint folder"),
    data: Optional[str] = typer.Option(None, "--data", "-d", help="exported dataset folder (parrot export --out)"),
    output_dir: Optional[str] = typer.Option(None, "--output-dir", "-o", help="where the trained model goes"),
    lora: Optional[bool] = typer.Option(None, "--lora/--full", help="LoRA adapters or full fine-tuning"),
    merge_lora: Optional[bool] = typer.Option(None, "--merge-lora/--keep-adapters", help="merge LoRA on save"),
    freeze_vision: Optional[bool] = typer.Option(None, "--freeze-vision/--train-vision", help="freeze vision tower"),
    epochs: Optional[float] = typer.Option(None, "--epochs", help="training epochs"),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="stop after N steps"),
    learning_rate: Optional[float] = typer.Option(None, "--lr", help="learning rate"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="per-device batch size"),
    grad_accum: Optional[int] = typer.Option(None, "--grad-accum", help="gradient accumulation steps"),
    max_length: Optional[int] = typer.Option(None, "--max-length", help="truncate examples to N tokens"),
    seed: Optional[int] = typer.Option(None, "--seed", help="training seed"),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu or cuda"),
    report_to: Optional[str] = typer.Option(None, "--report-to", help="none, wandb, tensorboard"),
) -> None:
    """Fine-tune a VLM on PARROT data (TRL SFT; full or LoRA); the result loads as transformers:PATH."""
    from .config import TrainConfig
    from .train import train

    cfg = _build(
        TrainConfig,
        _config(config),
        model=model,
        data=data,
        output_dir=output_dir,
        lora=lora,
        merge_lora=merge_lora,
        freeze_vision=freeze_vision,
        epochs=epochs,
        max_steps=max_steps,
        learning_rate=learning_rate,
        batch_size=batch_size,
        grad_accum=grad_accum,
        max_length=max_length,
        seed=seed,
        device=device,
        report_to=report_to,
    )
    result = _call(train, cfg)
    lines = [f"trained: {result.path}", f"trainable parameters: {result.trainable_parameters}"]
    lines += [f"  {k}: {v}" for k, v in result.metrics.items()]
    print_lines(lines)
