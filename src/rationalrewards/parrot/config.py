"""Dataclass configs of the PARROT stages; a YAML file or CLI flags fill them (``load_config``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

CHECKS = ("leak", "scores", "teacher")
VIEWS = ("justifications", "text", "full")
MODES = ("anchored", "direct")


@dataclass
class HindsightConfig:
    """Phase 1: the teacher writes k pairwise rationales per pair, anchored to the human label."""

    teacher: str = field(
        default="synthetic-teacher",
        metadata={"help": "teacher backend spec: openai:URL[,URL...], transformers:PATH, synthetic-teacher"},
    )
    samples: int = field(default=1, metadata={"help": "rationales per pair (k)"})
    temperature: float = field(default=0.7, metadata={"help": "sampling temperature (0 = greedy; k > 1 needs > 0)"})
    top_p: float = field(default=1.0, metadata={"help": "nucleus sampling mass"})
    max_tokens: int = field(default=2048, metadata={"help": "tokens per rationale"})
    seed: int | None = field(default=0, metadata={"help": "sampling seed passed to the backend (None = unseeded)"})
    mode: str = field(
        default="anchored",
        metadata={"help": "anchored: the prompt states the label (PARROT); direct: no label (the baseline)"},
    )
    template: str | None = field(
        default=None, metadata={"help": "hindsight template file (default: the built-in parrot-hindsight)"}
    )
    batch_size: int = field(default=16, metadata={"help": "pairs per backend call (and per checkpoint)"})

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise ValueError(f"samples must be at least 1, got {self.samples}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {self.max_tokens}")


@dataclass
class ConsistencyConfig:
    """Phase 2: keep a rationale only if it predicts the label (cheap checks, then the teacher without the label)."""

    teacher: str | None = field(
        default=None, metadata={"help": "backend spec for the consistency check (default: the hindsight teacher)"}
    )
    checks: tuple[str, ...] = field(
        default=CHECKS,
        metadata={
            "help": "checks to run, in order: leak (the text mentions raters or a given answer), scores (the "
            "rationale's own scores and stated preference imply the label), teacher (the teacher, shown the "
            "rationale but not the label, predicts the label)"
        },
    )
    tie_margin: float = field(
        default=0.1,
        metadata={"help": "score points (1-4 scale): mean scores closer than this imply a tie"},
    )
    votes: int = field(
        default=1, metadata={"help": "consistency answers per rationale; the majority is the prediction"}
    )
    temperature: float = field(default=0.0, metadata={"help": "sampling temperature of the consistency answers"})
    max_tokens: int = field(default=512, metadata={"help": "tokens per consistency answer"})
    seed: int | None = field(default=0, metadata={"help": "sampling seed passed to the backend"})
    view: str = field(
        default="justifications",
        metadata={
            "help": "what of the rationale the teacher sees: justifications (analysis and per-aspect "
            "justifications), text (also the summary), full (also scores and winners); never the stated preference"
        },
    )
    best_of_k: bool = field(
        default=False,
        metadata={"help": "keep only the kept rationale with the highest consistency confidence per pair"},
    )
    template: str | None = field(default=None, metadata={"help": "consistency template file (default: built-in)"})
    batch_size: int = field(default=16, metadata={"help": "pairs per backend call (and per checkpoint)"})

    def __post_init__(self) -> None:
        self.checks = tuple(self.checks)
        unknown = sorted(set(self.checks) - set(CHECKS))
        if unknown:
            raise ValueError(f"unknown checks {unknown}; known: {', '.join(CHECKS)}")
        if self.view not in VIEWS:
            raise ValueError(f"view must be one of {', '.join(VIEWS)}, got {self.view!r}")
        if self.votes < 1:
            raise ValueError(f"votes must be at least 1, got {self.votes}")
        if self.tie_margin < 0:
            raise ValueError("tie_margin must not be negative")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")


@dataclass
class ExportConfig:
    """Phase 3 data: kept rationales as chat SFT records, pairwise plus projected pointwise."""

    template: str = field(
        default="request-first",
        metadata={"help": "the reward model's inference template (name or file): prompts are rendered by it"},
    )
    pointwise: bool = field(default=True, metadata={"help": "add the two projected pointwise samples per rationale"})
    pairwise_fraction: float | None = field(
        default=None,
        metadata={
            "help": "target share of pairwise records in the output (0-1); the larger group is subsampled. "
            "None keeps everything (1 pairwise : 2 pointwise per rationale)"
        },
    )
    eval_fraction: float = field(
        default=0.0, metadata={"help": "share of pairs held out as the 'test' split (split by pair, not by record)"}
    )
    seed: int = field(default=0, metadata={"help": "seed of subsampling and the held-out split"})
    formats: tuple[str, ...] = field(
        default=("hf", "sharegpt"),
        metadata={"help": "hf: a datasets.save_to_disk folder; sharegpt: LLaMA-Factory JSON with image files"},
    )

    def __post_init__(self) -> None:
        self.formats = tuple(self.formats)
        unknown = sorted(set(self.formats) - {"hf", "sharegpt"})
        if unknown:
            raise ValueError(f"unknown export formats {unknown}; known: hf, sharegpt")
        if self.pairwise_fraction is not None and not 0 <= self.pairwise_fraction <= 1:
            raise ValueError("pairwise_fraction must be in [0, 1]")
        if not 0 <= self.eval_fraction < 1:
            raise ValueError("eval_fraction must be in [0, 1)")


@dataclass
class TrainConfig:
    """Phase 3 training: TRL SFT of a VLM on an exported dataset folder."""

    model: str = field(default="", metadata={"help": "base checkpoint folder (AutoModelForImageTextToText)"})
    data: str = field(default="", metadata={"help": "an exported datasets folder (parrot export --out X: X/hf)"})
    output_dir: str = field(default="parrot-model", metadata={"help": "where the trained checkpoint is written"})
    lora: bool = field(default=False, metadata={"help": "train LoRA adapters (PEFT) instead of all weights"})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank"})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha"})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout"})
    lora_targets: str = field(
        default=r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)",
        metadata={"help": "regex of the modules LoRA wraps (default: the language model's projections)"},
    )
    merge_lora: bool = field(
        default=True, metadata={"help": "merge LoRA into the weights on save (else keep adapters)"}
    )
    freeze_vision: bool = field(default=True, metadata={"help": "freeze the vision tower"})
    epochs: float = field(default=1.0, metadata={"help": "training epochs"})
    max_steps: int = field(default=-1, metadata={"help": "stop after this many steps (-1: run the epochs)"})
    learning_rate: float = field(default=1e-5, metadata={"help": "peak learning rate"})
    batch_size: int = field(default=1, metadata={"help": "per-device batch size"})
    grad_accum: int = field(default=1, metadata={"help": "gradient accumulation steps"})
    max_length: int | None = field(default=4096, metadata={"help": "truncate examples to this many tokens"})
    warmup_steps: float = field(
        default=0.03, metadata={"help": "warm-up steps (an integer), or a share of all steps when below 1"}
    )
    weight_decay: float = field(default=0.0, metadata={"help": "weight decay"})
    assistant_only_loss: bool = field(default=True, metadata={"help": "loss on assistant tokens only"})
    seed: int = field(default=0, metadata={"help": "training seed"})
    logging_steps: int = field(default=10, metadata={"help": "log every N steps"})
    save_steps: int | None = field(default=None, metadata={"help": "save checkpoints every N steps (None: at the end)"})
    eval: bool = field(default=True, metadata={"help": "evaluate on the 'test' split at the end when there is one"})
    device: str = field(default="auto", metadata={"help": "auto, cpu or cuda (auto: CUDA when available)"})
    bf16: bool | None = field(default=None, metadata={"help": "bfloat16 training (default: on a GPU only)"})
    gradient_checkpointing: bool | None = field(
        default=None, metadata={"help": "gradient checkpointing (default: on a GPU only)"}
    )
    report_to: str = field(default="none", metadata={"help": "none, wandb, tensorboard ..."})
    extra: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "more trl.SFTConfig arguments, passed as they are"}
    )

    def __post_init__(self) -> None:
        if self.lora_r < 1:
            raise ValueError("lora_r must be at least 1")
        if self.batch_size < 1 or self.grad_accum < 1:
            raise ValueError("batch_size and grad_accum must be at least 1")
        if self.device not in ("auto", "cpu") and not self.device.startswith("cuda"):
            raise ValueError(f"device must be auto, cpu or cuda[:N], got {self.device!r}")


@dataclass
class PipelineConfig:
    """All three data stages of ``parrot run`` (training is its own command)."""

    hindsight: HindsightConfig = field(default_factory=HindsightConfig)
    consistency: ConsistencyConfig = field(default_factory=ConsistencyConfig)
    export: ExportConfig = field(default_factory=ExportConfig)


def from_dict(cls: type[T], data: dict[str, Any] | None) -> T:
    """Build dataclass ``cls`` from a mapping, recursing into nested dataclass fields; unknown keys raise."""
    data = dict(data or {})
    names = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ValueError(f"unknown {cls.__name__} field(s) {unknown}; known: {', '.join(names)}")
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        default = names[key].default_factory if names[key].default_factory is not dataclasses.MISSING else None
        sub = type(default()) if default is not None else None
        if sub is not None and dataclasses.is_dataclass(sub) and isinstance(value, dict):
            kwargs[key] = from_dict(sub, value)
        else:
            kwargs[key] = value
    return cls(**kwargs)


def load_config(cls: type[T], path: str | Path | None = None, **overrides: Any) -> T:
    """``cls`` filled from a YAML file (optional), then from ``overrides`` whose value is not None."""
    data: dict[str, Any] = {}
    if path is not None:
        import yaml

        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"config file not found: {p}")
        loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
        if loaded is not None and not isinstance(loaded, dict):
            raise ValueError(f"{p}: expected a mapping of field: value at the top level")
        data.update(loaded or {})
    data.update({k: v for k, v in overrides.items() if v is not None})
    return from_dict(cls, data)
