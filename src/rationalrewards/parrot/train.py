"""PARROT phase 3 training: supervised fine-tuning of a VLM on exported rationales with TRL's ``SFTTrainer``.

``train(TrainConfig(...))`` loads the base checkpoint (``AutoModelForImageTextToText`` + its
processor), the exported ``datasets`` folder (``messages`` + ``images``; the ``images`` column
switches on TRL's vision collator), freezes the vision tower (default), optionally wraps the
language model's projections in LoRA (PEFT), trains with assistant-only loss, and writes a
standard checkpoint folder (model, processor, chat template) that ``transformers:PATH`` loads
unchanged. LoRA is merged into the weights on save unless ``merge_lora=False`` (then the folder
holds the adapter and the processor: load it with PEFT on top of the base model).

Without a GPU the documented CPU settings apply: ``use_cpu=True``, ``bf16=False``,
``gradient_checkpointing=False``, ``report_to="none"``.

Several GPUs: ``accelerate launch -m rationalrewards.parrot.train --config run.yaml`` (the YAML holds
``TrainConfig`` fields; add DeepSpeed or FSDP through ``accelerate config`` as usual). One GPU or the
CPU: ``rationalrewards train --config run.yaml`` or flags.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import TrainConfig

TRAIN_EXTRA = "pip install 'rationalrewards[train]'"
VISION_MARKERS = ("visual", "vision_tower", "vision_model", "image_encoder")


@dataclass
class TrainResult:
    path: Path
    metrics: dict[str, Any]
    log_history: list[dict[str, Any]]
    trainable_parameters: int
    frozen_parameters: int


def _imports() -> tuple[Any, Any, Any, Any]:
    try:
        import datasets
        import torch
        import transformers
        import trl
    except ImportError as exc:
        raise ImportError(f"training needs torch, transformers, trl and datasets: {TRAIN_EXTRA}") from exc
    return torch, transformers, trl, datasets


def _dataset(path: str, datasets: Any) -> tuple[Any, Any]:
    p = Path(path).expanduser()
    if (p / "hf").is_dir() and not (p / "dataset_dict.json").exists() and not (p / "dataset_info.json").exists():
        p = p / "hf"  # the export folder itself
    if not p.exists():
        raise FileNotFoundError(
            f"training data not found: {p} (an exported folder from `rationalrewards parrot export`)"
        )
    ds = datasets.load_from_disk(str(p))
    if hasattr(ds, "keys"):
        train = ds["train"] if "train" in ds else ds[next(iter(ds.keys()))]
        test = ds.get("test")
    else:
        train, test = ds, None
    for name in ("messages", "images"):
        if name not in train.column_names:
            raise ValueError(f"{p}: the training data needs a {name!r} column (have {train.column_names})")
    keep = ["messages", "images"]
    train = train.select_columns(keep)
    test = test.select_columns(keep) if test is not None else None
    return train, test


def is_vision_parameter(name: str) -> bool:
    return any(f".{m}." in f".{name}." or name.startswith(f"{m}.") for m in VISION_MARKERS)


def _counts(model: Any) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    return trainable, frozen


def sft_arguments(config: TrainConfig, use_gpu: bool, has_eval: bool, trl: Any, out: Path) -> Any:
    bf16 = config.bf16 if config.bf16 is not None else use_gpu
    checkpointing = config.gradient_checkpointing if config.gradient_checkpointing is not None else use_gpu
    kwargs: dict[str, Any] = {
        "output_dir": str(out),
        "num_train_epochs": config.epochs,
        "max_steps": config.max_steps,
        "learning_rate": config.learning_rate,
        "per_device_train_batch_size": config.batch_size,
        "per_device_eval_batch_size": config.batch_size,
        "gradient_accumulation_steps": config.grad_accum,
        "max_length": config.max_length,
        "warmup_steps": config.warmup_steps,
        "weight_decay": config.weight_decay,
        "assistant_only_loss": config.assistant_only_loss,
        "seed": config.seed,
        "logging_steps": config.logging_steps,
        "save_strategy": "steps" if config.save_steps else "no",
        "eval_strategy": "no",
        "report_to": config.report_to,
        "bf16": bf16,
        "gradient_checkpointing": checkpointing,
        "use_cpu": not use_gpu,
        "remove_unused_columns": False,
    }
    if config.save_steps:
        kwargs["save_steps"] = config.save_steps
    kwargs.update(config.extra)
    return trl.SFTConfig(**kwargs)


def train(config: TrainConfig) -> TrainResult:
    """Fine-tune ``config.model`` on ``config.data``; write the result to ``config.output_dir``."""
    torch, transformers, trl, datasets = _imports()
    from ..models.processor import load_processor

    if not config.model or not config.data:
        raise ValueError("train needs a base model folder (model) and an exported dataset folder (data)")
    base = Path(config.model).expanduser()
    if not (base / "config.json").is_file():
        raise FileNotFoundError(f"no checkpoint at {base} (expected a folder with config.json)")
    if config.device == "auto":
        use_gpu = torch.cuda.is_available()
    else:
        use_gpu = config.device.startswith("cuda")
        if use_gpu and not torch.cuda.is_available():
            raise ValueError(f"device {config.device!r} asked for, but CUDA is not available")
    train_ds, test_ds = _dataset(config.data, datasets)
    out = Path(config.output_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)

    dtype = torch.bfloat16 if (config.bf16 if config.bf16 is not None else use_gpu) else torch.float32
    model = transformers.AutoModelForImageTextToText.from_pretrained(str(base), dtype=dtype)
    processor = load_processor(base)
    if config.freeze_vision:
        for name, param in model.named_parameters():
            if is_vision_parameter(name):
                param.requires_grad_(False)

    peft_config = None
    if config.lora:
        try:
            import peft
        except ImportError as exc:
            raise ImportError(f"LoRA training needs peft: {TRAIN_EXTRA}") from exc
        targets = [n for n, m in model.named_modules() if re.fullmatch(config.lora_targets, n) and hasattr(m, "weight")]
        if not targets:
            raise ValueError(f"lora_targets {config.lora_targets!r} matches no module of {base}")
        peft_config = peft.LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=config.lora_targets,
            task_type="CAUSAL_LM",
        )

    args = sft_arguments(config, use_gpu, test_ds is not None, trl, out / "trainer")
    trainer = trl.SFTTrainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=test_ds if config.eval else None,
        processing_class=processor,
        peft_config=peft_config,
    )
    trainable, frozen = _counts(trainer.model)
    output = trainer.train()
    metrics = dict(output.metrics)
    if config.eval and test_ds is not None:
        metrics.update(trainer.evaluate())

    if config.lora and config.merge_lora:
        # merging needs whole weights: with DeepSpeed ZeRO-3 keep the adapters (merge_lora=False) and merge offline
        merged = trainer.model.merge_and_unload()
        merged.eval()
        if trainer.accelerator.is_main_process:
            merged.save_pretrained(str(out))
    else:
        trainer.save_model(str(out))  # gathers sharded weights (FSDP / DeepSpeed); LoRA: the adapter only
    if trainer.accelerator.is_main_process:
        processor.save_pretrained(str(out))
        _copy_extra_files(base, out)
        record = {
            "config": dataclasses.asdict(config),
            "metrics": metrics,
            "log_history": trainer.state.log_history,
            "trainable_parameters": trainable,
            "frozen_parameters": frozen,
        }
        (out / "parrot_train.json").write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")
    return TrainResult(out, metrics, list(trainer.state.log_history), trainable, frozen)


def _copy_extra_files(base: Path, out: Path) -> None:
    """Files a base checkpoint carries that ``save_pretrained`` does not rewrite (e.g. the video processor config)."""
    import shutil

    for name in ("video_preprocessor_config.json", "generation_config.json", "chat_template.jinja"):
        src, dst = base / name, out / name
        if src.is_file() and not dst.exists():
            shutil.copy2(src, dst)


def main() -> None:
    """Entry point of ``python -m rationalrewards.parrot.train`` (and ``accelerate launch -m ...``)."""
    import typer

    from .cli import train_command

    typer.run(train_command)


if __name__ == "__main__":
    main()
