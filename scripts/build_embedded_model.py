"""Build the embedded default model end to end from a seed: world pairs -> PARROT -> tokenizer + tiny Qwen3-VL -> SFT.

Stages (each writes under ``--work`` and is reused by a rerun with the same settings):

1. ``data``: labelled world pairs (text-to-image and edits alternating) for training and a disjoint held-out
   set (another world seed), saved as parquet with their world registries;
2. ``pipeline``: the PARROT data stages of ``rationalrewards.parrot.pipeline`` with the privileged teacher
   (``synthetic-teacher``): hindsight (label-anchored rationales), predictive-consistency filter, export of
   pairwise + projected pointwise SFT records. ``--mode direct`` runs the direct-distillation twin instead
   (the same prompt without the label, no filter: ``pipeline.direct_config``);
3. ``base``: a byte-level BPE trained on the world's text (rendered prompts, the teacher's unanchored
   critiques of the training pairs, requests) and a seeded tiny Qwen3-VL (``models.tiny.make_tiny_qwen3vl``)
   around it. The base depends on the seed and the training pairs only, so both modes share it;
4. ``perceive`` (``--perceive-steps N``; off by default, the shipped model has none): perception
   pre-training of the base's vision tower on world images (``rationalrewards.models.vision_pretrain``:
   pooled and per-image-token targets of what is visible), shared by both modes like the base;
5. ``train``: ``rationalrewards.parrot.train.train`` (TRL SFTTrainer, full fine-tuning; ``--freeze-vision``
   leaves the vision tower as the earlier stages made it);
6. ``eval``: greedy critiques of the held-out pairs (pairwise mode, and pointwise for both images);
7. ``install`` (``--install``): copy the checkpoint into ``src/rationalrewards/models/embedded/`` with a
   model card, and write ``benchmarks/results/embedded_model.json``.

Usage::

    python scripts/build_embedded_model.py --work build/embedded --install          # the shipped model
    python scripts/build_embedded_model.py --work build/embedded --mode direct      # the ablation twin

On two cores, build the shared stages first, then both students side by side (one thread each)::

    python scripts/build_embedded_model.py --work build/embedded --threads 2 --shared-only
    python scripts/build_embedded_model.py --work build/embedded --threads 1 --install &
    python scripts/build_embedded_model.py --work build/embedded --threads 1 --mode direct

A rebuild on another CPU follows the same curve, but float rounding differs between machines, so the
weights are close, not bit-identical. Measured: the default build on a later machine matched the
shipped model's 60 logged losses to 4 decimals early on and within 0.0045 throughout, and its weights
differed from the shipped model's by at most 0.03.

Set ``OMP_NUM_THREADS`` / ``--threads`` to the cores you can use. Every number the build produces (data
counts, retention, steps, losses, wall times) goes to ``<work>/<mode>/build.json``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

ROOT = Path(__file__).resolve().parents[1]
SHIP_DIR = ROOT / "src" / "rationalrewards" / "models" / "embedded"
RESULTS = ROOT / "benchmarks" / "results" / "embedded_model.json"
TEMPLATE = "request-first"
TOKENIZER_VERSION = "bpe-lines-2"  # pieces end at line breaks
SHIPPED_FILES = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "processor_config.json",
    "preprocessor_config.json",
    "video_preprocessor_config.json",
    "chat_template.jinja",
    "chat_template.json",
    "special_tokens_map.json",
)


@dataclass
class BuildConfig:
    """Everything that determines the shipped weights (recorded in the model card)."""

    seed: int = 0
    n_train: int = 600  # training pairs (t2i and edit alternating)
    n_eval: int = 200  # held-out pairs (another world seed)
    samples: int = 1  # hindsight rationales per pair
    temperature: float = 0.7  # hindsight sampling temperature
    # tokenizer and model sizes
    vocab_size: int = 4096
    max_token_chars: int = 48
    text_hidden: int = 256
    text_layers: int = 4
    text_heads: int = 4
    text_kv_heads: int = 2
    text_intermediate: int = 768
    vision_hidden: int = 128
    vision_layers: int = 2
    vision_heads: int = 2
    image_side: int = 128  # world images are 128x128
    patch_size: int = 16  # 2x2 merge: 16 image tokens per world image (patch 8: 64 tokens, an 8x8 grid)
    # perception pre-training of the vision tower (models.vision_pretrain); 0 steps: no such stage
    perceive_images: int = 6000
    perceive_steps: int = 0
    perceive_batch: int = 32
    perceive_lr: float = 2e-3
    freeze_vision: bool = False  # True: the SFT leaves the (pre-trained) vision tower as it is
    # training
    steps: int = 600
    batch_size: int = 8
    learning_rate: float = 1e-3
    warmup: float = 0.05
    weight_decay: float = 0.01
    max_length: int = 768  # the longest example: ~250 tokens at patch 16, ~410 at patch 8 (3 x 64 image tokens)
    storage: str = "float16"  # dtype of the shipped safetensors (float32 weights > 25 MB); loaded back as float32
    # evaluation
    eval_max_tokens: int = 384
    eval_batch_size: int = 16
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------- helpers


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)


def _stamp(cfg: BuildConfig, *fields: str) -> dict[str, Any]:
    return {k: getattr(cfg, k) for k in fields}


def _fresh(folder: Path, stamp: dict[str, Any]) -> bool:
    """Whether ``folder`` holds a finished stage made with exactly ``stamp``."""
    f = folder / "stage.json"
    return f.is_file() and json.loads(f.read_text(encoding="utf-8")) == json.loads(json.dumps(stamp, default=str))


def _done(folder: Path, stamp: dict[str, Any]) -> None:
    _write_json(folder / "stage.json", stamp)


# ---------------------------------------------------------------------------- 1. data


def make_data(cfg: BuildConfig, work: Path) -> dict[str, Any]:
    """Training and held-out world pairs as parquet (with registries); returns paths and counts."""
    from rationalrewards.synthetic import World, make_pairs, save_pairs

    folder = work / "data"
    stamp = _stamp(cfg, "seed", "n_train", "n_eval")
    train, held = folder / "train.parquet", folder / "eval.parquet"
    if not _fresh(folder, stamp):
        t0 = time.perf_counter()
        world = World()
        pairs = make_pairs(cfg.n_train, seed=cfg.seed, task="both", world=world)
        save_pairs(pairs, train, registry=world.registry)
        world = World()
        pairs = make_pairs(cfg.n_eval, seed=cfg.seed + 1_000_003, task="both", world=world)
        save_pairs(pairs, held, registry=world.registry)
        _done(folder, stamp)
        _log(f"data: {cfg.n_train} training + {cfg.n_eval} held-out pairs in {time.perf_counter() - t0:.1f} s")
    return {"train": train, "eval": held}


def load_data(path: Path, strip: bool = True) -> list[Any]:
    from rationalrewards.synthetic import load_pairs, strip_eval

    pairs = load_pairs(path)
    return [strip_eval(p) for p in pairs] if strip else pairs


def teacher(paths: list[Path], **options: Any) -> Any:
    """The privileged teacher, with the registries of the given pair files."""
    from rationalrewards.synthetic.teacher import from_spec

    return from_spec("", registry=[str(p) for p in paths], **options)


# ---------------------------------------------------------------------------- 2. PARROT data stages


def run_data_pipeline(cfg: BuildConfig, work: Path, data: dict[str, Path], mode: str) -> dict[str, Any]:
    """Hindsight -> filter -> export (PARROT), or the direct-distillation twin; returns the pipeline summary."""
    from rationalrewards.parrot.config import ConsistencyConfig, ExportConfig, HindsightConfig, PipelineConfig
    from rationalrewards.parrot.pipeline import run_pipeline

    folder = work / mode
    stamp = {**_stamp(cfg, "seed", "n_train", "samples", "temperature"), "mode": mode}
    summary_path = folder / "summary.json"
    if _fresh(folder, stamp) and summary_path.is_file():
        return json.loads(summary_path.read_text(encoding="utf-8"))
    t0 = time.perf_counter()
    pairs = load_data(data["train"])
    config = PipelineConfig(
        hindsight=HindsightConfig(
            teacher="synthetic-teacher", samples=cfg.samples, temperature=cfg.temperature, seed=cfg.seed
        ),
        consistency=ConsistencyConfig(),
        export=ExportConfig(template=TEMPLATE, pointwise=True, eval_fraction=0.0, seed=cfg.seed, formats=("hf",)),
    )
    result = run_pipeline(pairs, folder, config, mode=mode, backend=teacher([data["train"]]), progress=False)
    result.pop("_objects", None)
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    _write_json(summary_path, result)
    _done(folder, stamp)
    rep = result["filter"]["report"]["rationales"]
    _log(
        f"{mode} data: {rep['kept']}/{rep['n']} rationales kept; examples {result['export']['examples']} "
        f"({result['wall_s']} s)"
    )
    return result


# ---------------------------------------------------------------------------- 3. tokenizer + base model


def world_corpus(cfg: BuildConfig, data: dict[str, Path]) -> list[str]:
    """The tokenizer's training text: protocol and rubric words, rendered prompts, the teacher's critiques.

    Only the training pairs and the unanchored (label-free) teacher are used, so the base model is the same
    for PARROT and for direct distillation.
    """
    from rationalrewards.models.tiny import default_corpus
    from rationalrewards.templates import get_template

    tpl = get_template(TEMPLATE)
    pairs = load_data(data["train"])
    judge = teacher([data["train"]])
    texts: list[str] = list(default_corpus(cfg.seed)) + [f"{role}\n" for role in ("system", "user", "assistant")] * 50
    convs = []
    for p in pairs:
        convs += [tpl.pairwise(p), tpl.pointwise(p.sample_a()), tpl.pointwise(p.sample_b())]
    for i, conv in enumerate(convs):
        if i < 60:  # the fixed prompt text: a few renderings are plenty
            texts += [m.text for m in conv.messages]
        else:
            texts.append(conv.messages[-1].text.split("\n\n")[0])  # the request lines
    for comp in judge.generate(convs):
        texts += comp.texts
    return texts


def train_line_tokenizer(corpus: list[str], vocab_size: int, max_token_chars: int) -> Any:
    """``models.tiny.train_tokenizer`` with line splits: the world's stock phrases become single tokens."""
    from rationalrewards.models.tiny import train_tokenizer

    return train_tokenizer(corpus, vocab_size=vocab_size, split="lines", max_token_chars=max_token_chars)


def check_prompt_boundary(processor: Any, data: dict[str, Path]) -> None:
    """The generation prompt's tokens must be a prefix of a trained conversation's tokens (else greedy starts wrong)."""
    from rationalrewards.templates import get_template

    pair = load_data(data["train"])[0]
    conv = get_template(TEMPLATE).pointwise(pair.sample_a())
    prompt = processor.apply_chat_template(conv.to_hf(), add_generation_prompt=True, tokenize=False)
    answer = "# User Request Analysis\nThe request asks for a test.\n# Detailed Judgement"
    full = processor.apply_chat_template(conv.add("assistant", answer).to_hf(), tokenize=False)
    tok = processor.tokenizer
    p_ids, f_ids = tok(prompt)["input_ids"], tok(full)["input_ids"]
    if f_ids[: len(p_ids)] != p_ids:
        raise RuntimeError("the tokenizer splits the generation prompt differently alone and before an answer")


def build_base(cfg: BuildConfig, work: Path, data: dict[str, Path]) -> Path:
    """The seeded, untrained tiny Qwen3-VL with the world tokenizer (shared by both modes)."""
    from rationalrewards.models.tiny import make_tiny_qwen3vl, save_tiny_qwen3vl

    folder = work / "base"
    stamp = {"tokenizer": TOKENIZER_VERSION} | _stamp(
        cfg, "seed", "n_train", "vocab_size", "max_token_chars", "text_hidden", "text_layers", "text_heads",
        "text_kv_heads", "text_intermediate", "vision_hidden", "vision_layers", "vision_heads", "image_side",
        "patch_size",
    )  # fmt: skip
    if _fresh(folder, stamp):
        return folder
    t0 = time.perf_counter()
    tokenizer = train_line_tokenizer(world_corpus(cfg, data), cfg.vocab_size, cfg.max_token_chars)
    pixels = cfg.image_side * cfg.image_side
    model, processor = make_tiny_qwen3vl(
        seed=cfg.seed,
        tokenizer=tokenizer,
        text_hidden=cfg.text_hidden,
        text_layers=cfg.text_layers,
        text_heads=cfg.text_heads,
        text_kv_heads=cfg.text_kv_heads,
        text_intermediate=cfg.text_intermediate,
        vision_hidden=cfg.vision_hidden,
        vision_layers=cfg.vision_layers,
        vision_heads=cfg.vision_heads,
        min_pixels=pixels,
        max_pixels=pixels,
        patch_size=cfg.patch_size,
    )
    check_prompt_boundary(processor, data)
    if folder.exists():
        shutil.rmtree(folder)
    save_tiny_qwen3vl(model, processor, folder)
    n = sum(p.numel() for p in model.parameters())
    _done(folder, stamp)
    _log(f"base: {n / 1e6:.2f} M parameters, vocab {len(tokenizer)} ({time.perf_counter() - t0:.1f} s)")
    return folder


# ---------------------------------------------------------------------------- 4. perceive

PERCEIVE_FIELDS = ("perceive_images", "perceive_steps", "perceive_batch", "perceive_lr")


def perceive(cfg: BuildConfig, work: Path, base: Path) -> tuple[Path, dict[str, Any] | None]:
    """The base with its vision tower pre-trained on world perception targets; returns its folder and record.

    With ``perceive_steps`` 0 the base itself is returned, with no record.
    """
    if cfg.perceive_steps == 0:
        return base, None
    import torch
    from transformers import AutoModelForImageTextToText

    from rationalrewards.models.processor import load_processor
    from rationalrewards.models.tiny import save_tiny_qwen3vl
    from rationalrewards.models.vision_pretrain import VisionPretrainConfig, pretrain_vision

    folder = work / "base-perceive"
    stamp = {**json.loads((base / "stage.json").read_text(encoding="utf-8")), **_stamp(cfg, *PERCEIVE_FIELDS)}
    record_path = folder / "perceive.json"
    if _fresh(folder, stamp) and record_path.is_file():
        return folder, json.loads(record_path.read_text(encoding="utf-8"))
    model = AutoModelForImageTextToText.from_pretrained(str(base), dtype=torch.float32)
    processor = load_processor(base)
    vcfg = VisionPretrainConfig(
        images=cfg.perceive_images,
        steps=cfg.perceive_steps,
        batch_size=cfg.perceive_batch,
        learning_rate=cfg.perceive_lr,
        seed=cfg.seed,
    )
    t0 = time.perf_counter()

    def progress(step: int, loss: float) -> None:
        if step % 100 == 0 or step == cfg.perceive_steps:
            rate = step / (time.perf_counter() - t0)
            _log(f"perceive: step {step}/{cfg.perceive_steps}, loss {loss:.3f} ({rate:.2f} steps/s incl. data)")

    record = pretrain_vision(model, processor, vcfg, on_step=progress)
    if folder.exists():
        shutil.rmtree(folder)
    save_tiny_qwen3vl(model, processor, folder)
    _write_json(record_path, record)
    _done(folder, stamp)
    after = record["held_out_after"]
    _log(
        f"perceive: {cfg.perceive_steps} steps in {record['train_s']} s; held-out background "
        f"{after['background']:.2f}, colour-shapes F1 {after['colour_shapes']:.2f}, cell colours F1 "
        f"{after['cell_colour']:.2f}"
    )
    return folder, record


# ---------------------------------------------------------------------------- 5. train


def train_student(cfg: BuildConfig, work: Path, base: Path, mode: str) -> dict[str, Any]:
    """SFT of the base on the mode's exported data (``rationalrewards.parrot.train``); returns the train record."""
    from rationalrewards.parrot.config import TrainConfig
    from rationalrewards.parrot.train import train

    out = work / f"model-{mode}"
    stamp = {
        **_stamp(
            cfg, "seed", "n_train", "samples", "temperature", "vocab_size", "text_hidden", "text_layers",
            "vision_hidden", "vision_layers", "image_side", "patch_size", *PERCEIVE_FIELDS, "freeze_vision", "steps",
            "batch_size", "learning_rate", "warmup", "weight_decay", "max_length", "extra",
        ),
        "mode": mode,
        "tokenizer": TOKENIZER_VERSION,
    }  # fmt: skip
    record_path = out / "parrot_train.json"
    if _fresh(out, stamp) and record_path.is_file():
        return json.loads(record_path.read_text(encoding="utf-8"))
    t0 = time.perf_counter()
    tcfg = TrainConfig(
        model=str(base),
        data=str(work / mode / "sft"),
        output_dir=str(out),
        freeze_vision=cfg.freeze_vision,  # pre-trained by ``perceive``; critique SFT would wash out what it sees
        max_steps=cfg.steps,
        learning_rate=cfg.learning_rate,
        batch_size=cfg.batch_size,
        max_length=cfg.max_length,
        warmup_steps=cfg.warmup,
        weight_decay=cfg.weight_decay,
        seed=cfg.seed,
        logging_steps=10,
        eval=False,
        device="cpu",
        extra={"lr_scheduler_type": "cosine", "dataloader_num_workers": 0, **cfg.extra},
    )
    result = train(tcfg)
    shutil.rmtree(out / "trainer", ignore_errors=True)  # optimizer state etc.: not part of the model
    record = json.loads(record_path.read_text(encoding="utf-8"))
    record["wall_s"] = round(time.perf_counter() - t0, 1)
    record["trainable_parameters"] = result.trainable_parameters
    _write_json(record_path, record)
    _done(out, stamp)
    losses = [e["loss"] for e in record["log_history"] if "loss" in e]
    _log(f"train {mode}: {cfg.steps} steps, loss {losses[0]:.3f} -> {losses[-1]:.3f} ({record['wall_s']} s)")
    return record


# ---------------------------------------------------------------------------- 6. eval


def verdicts(rm: Any, pairs: list[Any], pointwise: bool = True) -> dict[str, Any]:
    """A reward model's pairwise (and pointwise) verdicts on labelled ``pairs``, with raw texts and wall times."""
    t0 = time.perf_counter()
    pw = rm.compare(pairs)
    out: dict[str, Any] = {
        "pairwise": [
            {"label": p.label, "pred": c.preference, "parse": c.parse_status, "text": c.raw_text}
            for p, c in zip(pairs, pw, strict=True)
        ],
        "pairwise_s": round(time.perf_counter() - t0, 1),
    }
    if pointwise:
        samples = [s for p in pairs for s in (p.sample_a(), p.sample_b())]
        t0 = time.perf_counter()
        cs = rm.critique(samples)
        out["pointwise_s"] = round(time.perf_counter() - t0, 1)
        out["pointwise"] = [
            {
                "label": p.label,
                "reward_a": a.reward,
                "reward_b": b.reward,
                "parse_a": a.parse_status,
                "parse_b": b.parse_status,
                "text_a": a.raw_text,
                "text_b": b.raw_text,
            }
            for p, a, b in zip(pairs, cs[0::2], cs[1::2], strict=True)
        ]
    return out


def evaluate_model(
    model_dir: Path, pairs: list[Any], max_tokens: int, batch_size: int = 16, pointwise: bool = True
) -> dict[str, Any]:
    """Greedy pairwise and pointwise critiques of labelled ``pairs``: parse rates, accuracies, raw verdicts."""
    from rationalrewards.backends import GenerationConfig
    from rationalrewards.backends.transformers_local import TransformersBackend
    from rationalrewards.model import RationalRewardModel

    backend = TransformersBackend(model_dir, device="cpu", batch_size=batch_size)
    rm = RationalRewardModel(backend, template=TEMPLATE, generation=GenerationConfig(max_tokens=max_tokens))
    out = verdicts(rm, pairs, pointwise)
    backend.close()
    out["summary"] = summarize(out)
    return out


def _acc(correct: list[bool]) -> dict[str, Any]:
    import numpy as np

    from rationalrewards.evaluate.metrics import accuracy

    if not correct:
        return {"value": None, "total": 0}
    return accuracy(np.asarray(correct, dtype=float)).to_dict()


def _texts(ev: dict[str, Any]) -> list[str | None]:
    return [r["text"] for r in ev["pairwise"]] + [r[k] for r in ev.get("pointwise", []) for k in ("text_a", "text_b")]


def _n_tokens(model_dir: Path, texts: list[str | None]) -> list[int]:
    from rationalrewards.models.processor import load_processor

    tok = load_processor(model_dir).tokenizer
    return [len(tok(t)["input_ids"]) for t in texts if t]


def summarize(ev: dict[str, Any]) -> dict[str, Any]:
    """Parse rates and no-tie preference accuracies (a predicted tie or an unparsed verdict counts as wrong)."""
    pw = ev["pairwise"]
    s: dict[str, Any] = {
        "pairs": len(pw),
        "pairwise_parse_ok": sum(r["parse"] == "ok" for r in pw) / max(1, len(pw)),
        "pairwise_accuracy": _acc([r["pred"] == r["label"] for r in pw if r["label"] in ("A", "B")]),
        "pairwise_ties": sum(r["pred"] == "tie" for r in pw) / max(1, len(pw)),
    }
    if "pointwise" in ev:
        pt = ev["pointwise"]
        oks = [r[k] == "ok" for r in pt for k in ("parse_a", "parse_b")]
        s["pointwise_parse_ok"] = sum(oks) / max(1, len(oks))

        def verdict(r: dict[str, Any]) -> str | None:
            a, b = r["reward_a"], r["reward_b"]
            if a is None or b is None:
                return None
            return "A" if a > b else "B" if b > a else "tie"

        s["pointwise_accuracy"] = _acc([verdict(r) == r["label"] for r in pt if r["label"] in ("A", "B")])
        s["pointwise_ties"] = sum(verdict(r) == "tie" for r in pt) / max(1, len(pt))
        n = len(oks) + len(pw)
        s["parse_ok"] = (sum(oks) + sum(r["parse"] == "ok" for r in pw)) / max(1, n)
    return s


# ---------------------------------------------------------------------------- 7. install


def storage_copy(model_dir: Path, out: Path, dtype: str) -> Path:
    """The checkpoint's files with the weights stored as ``dtype`` (the config keeps float32: loaders upcast)."""
    import torch
    from safetensors.torch import load_file, save_file

    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for name in SHIPPED_FILES:
        if (model_dir / name).is_file() and name != "model.safetensors":
            shutil.copy2(model_dir / name, tmp / name)
    state = load_file(str(model_dir / "model.safetensors"))
    target = getattr(torch, dtype)
    state = {k: v.to(target).contiguous() for k, v in state.items()}
    save_file(state, str(tmp / "model.safetensors"), {"format": "pt"})
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out


def install(model_dir: Path, card: str, ship_dir: Path = SHIP_DIR) -> dict[str, Any]:
    """Copy the checkpoint's files (and the model card) into the package folder, replacing what was there."""
    tmp = ship_dir.with_name(ship_dir.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for name in SHIPPED_FILES:
        if (model_dir / name).is_file():
            shutil.copy2(model_dir / name, tmp / name)
    (tmp / "MODEL_CARD.md").write_text(card, encoding="utf-8")
    if ship_dir.exists():
        shutil.rmtree(ship_dir)
    tmp.rename(ship_dir)
    files = {p.name: p.stat().st_size for p in sorted(ship_dir.iterdir())}
    return {"files": files, "bytes": sum(files.values())}


def _storage_note(record: dict[str, Any]) -> str:
    chk = record.get("storage_check")
    if not chk:
        return ""
    return f": {chk['identical']} of {chk['n']} held-out greedy critiques are identical to the float32 weights'"


def _tokens(cfg: dict[str, Any]) -> int:
    return (cfg["image_side"] // (2 * cfg["patch_size"])) ** 2


def _perceive_summary(record: dict[str, Any]) -> str:
    cfg, p = record["config"], record.get("perceive")
    if not p:
        return "none (the tower starts from random weights and learns only from the critiques)"
    a = p["held_out_after"]
    return (
        f"`rationalrewards.models.vision_pretrain`, {cfg['perceive_steps']} steps x {cfg['perceive_batch']} of "
        f"{cfg['perceive_images']} world images on what is truly visible (background, colour intensity, defects "
        "by kind, colours and colour-shapes present; per image token the colour and shape centred there, the "
        "colours covering it, the sign); held-out: "
        f"background {100 * a['background']:.0f}% right, colours present F1 {100 * a['colours']:.0f}, "
        f"any defect {100 * a['defect']:.0f}% right, per-token colour F1 {100 * a['cell_colour']:.0f} and shape F1 "
        f"{100 * a['cell_shape']:.0f}"
    )


def model_card(record: dict[str, Any]) -> str:
    cfg, d, t, ev = record["config"], record["data"], record["train"], record["eval"]
    ret = d["retention"]
    acc_pw, acc_pt = ev["pairwise_accuracy"], ev.get("pointwise_accuracy", {})

    def pct(a: dict[str, Any]) -> str:
        if not a or a.get("value") is None:
            return "-"
        return f"{100 * a['value']:.1f}% (95% CI {100 * a['ci_low']:.1f}-{100 * a['ci_high']:.1f}, n={a['total']})"

    lines = [
        "# rationalrewards embedded model",
        "",
        "A tiny Qwen3-VL (`Qwen3VLForConditionalGeneration`, loaded by `AutoModelForImageTextToText`) trained from",
        "scratch on the CPU by the project's own PARROT pipeline in the **synthetic world** "
        "(`rationalrewards.synthetic`).",
        'It is the default model of `rationalrewards critique`, `compare` and the demo (`load_backend("embedded")`),',
        "so that every part of the toolkit runs on a fresh machine with no download. It knows only the synthetic",
        "world (coloured shapes, counts, relations, rendered words, edits): **it is not a reward model for real",
        "images.** Use RationalRewards-8B (or another real checkpoint) through `transformers:PATH` or",
        "`openai:URL` for real work.",
        "",
        "## How it was made",
        "",
        f"Reproduce: `{record['command']}` (seed {cfg['seed']}; about {record['build_s'] / 60:.0f} min on "
        f"{record['machine']}, on a shared 2-core machine).",
        "",
        f"1. World pairs: {cfg['n_train']} labelled training pairs (text-to-image and edit alternating, world seed "
        f"{cfg['seed']}), {cfg['n_eval']} held-out pairs from another world seed.",
        f"2. PARROT with the privileged teacher `synthetic-teacher`: {cfg['samples']} hindsight rationale(s) per pair "
        f"(temperature {cfg['temperature']}), anchored to the simulated human label; predictive-consistency filter "
        f"(leak, scores and teacher checks) kept {ret['kept']} of {ret['n']} rationales "
        f"({100 * (ret['retention'] or 0):.1f}%).",
        f"3. Export with the `{TEMPLATE}` template: {d['examples']} (pairwise + projected pointwise).",
        f"4. Tokenizer: byte-level BPE, {cfg['vocab_size']} tokens, trained on the world's text (rendered prompts, "
        "the teacher's unanchored critiques of the training pairs, requests); merges may cross spaces (not line "
        "breaks), so the protocol's stock phrases are single tokens and a critique is ~60-150 tokens.",
        f"5. Model: text {cfg['text_hidden']} hidden x {cfg['text_layers']} layers, vision {cfg['vision_hidden']} x "
        f"{cfg['vision_layers']} layers, patch {cfg['patch_size']} with 2x2 merge, images at "
        f"{cfg['image_side']}x{cfg['image_side']} ({_tokens(cfg)} tokens per image); {t['parameters'] / 1e6:.2f} M "
        f"parameters. Trained in float32; the safetensors store {record.get('storage', 'float32')} (loaded back as "
        f"float32 on the CPU){_storage_note(record)}.",
        f"6. Perception pre-training of the vision tower: {_perceive_summary(record)}.",
        f"7. SFT (`rationalrewards.parrot.train`, TRL SFTTrainer, assistant-only loss, vision tower "
        f"{'frozen' if cfg['freeze_vision'] else 'trained'}): {cfg['steps']} steps x batch {cfg['batch_size']}, "
        f"lr {cfg['learning_rate']} cosine, loss {t['loss_first']:.3f} -> {t['loss_last']:.3f} in "
        f"{t['wall_s'] / 60:.1f} min.",
        "",
        "## Held-out quality (greedy decoding)",
        "",
        f"- parse success: {100 * ev.get('parse_ok', ev['pairwise_parse_ok']):.1f}% of critiques "
        f"(pairwise {100 * ev['pairwise_parse_ok']:.1f}%, pointwise "
        f"{100 * ev.get('pointwise_parse_ok', 0):.1f}%)",
        f"- preference accuracy, pairwise mode (tie labels left out; a predicted tie is wrong): {pct(acc_pw)}",
        f"- preference accuracy from two pointwise rewards: {pct(acc_pt)}",
        f"- verdicts that are ties: {100 * ev.get('pairwise_ties', 0):.1f}% in pairwise mode, "
        f"{100 * ev.get('pointwise_ties', 0):.1f}% of pointwise reward pairs are equal",
        "- random guessing: 50%. See `benchmarks/results/parrot_world.md` for the ablation (direct distillation,",
        "  Bradley-Terry, teachers, noise ceiling).",
        "",
        "All figures: `benchmarks/results/embedded_model.json`.",
        "",
        "## Limitations",
        "",
        "The student is tiny and sees each image as 16 tokens; trained from scratch for a few CPU minutes, it",
        "learns the protocol and the request analysis well but uses the images only weakly: most of its critiques",
        "report no defect, so its preferences are mostly ties (see the figures above). It exists so that",
        "the toolkit's code paths run for real offline; the privileged world teacher (`synthetic-teacher`) is",
        "the strong critic of the synthetic world.",
        "",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- the whole build


def shared_stages(cfg: BuildConfig, work: Path) -> tuple[dict[str, Path], Path, dict[str, Any]]:
    """The stages both modes share: data, base, perceive; returns the data paths, the base folder, its record."""
    work.mkdir(parents=True, exist_ok=True)
    data = make_data(cfg, work)
    base, seeing = perceive(cfg, work, build_base(cfg, work, data))
    return data, base, seeing


def build(
    cfg: BuildConfig, work: Path, mode: str = "anchored", do_install: bool = False, evaluate: bool = True
) -> dict[str, Any]:
    """Run every stage for ``mode`` (anchored = PARROT, direct = the twin); returns the build record."""
    import torch

    if mode not in ("anchored", "direct"):
        raise ValueError(f"mode must be anchored or direct, got {mode!r}")
    t0 = time.perf_counter()
    data, base, seeing = shared_stages(cfg, work)
    pipe = run_data_pipeline(cfg, work, data, mode)
    trained = train_student(cfg, work, base, mode)
    losses = [e["loss"] for e in trained["log_history"] if "loss" in e]
    model_dir = work / f"model-{mode}"
    from safetensors.torch import load_file

    n_params = sum(t.numel() for t in load_file(str(model_dir / "model.safetensors")).values())
    record: dict[str, Any] = {
        "mode": mode,
        "config": dataclasses.asdict(cfg),
        "command": reproduce_command(cfg, mode),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch thread(s), torch {torch.__version__}",
        "data": {
            "retention": pipe["filter"]["report"]["rationales"],
            "retention_pairs": pipe["filter"]["report"]["pairs"],
            "rejected": pipe["filter"]["report"]["rejected"],
            "examples": pipe["export"]["examples"],
            "pipeline_wall_s": pipe.get("wall_s"),
        },
        "train": {
            "parameters": n_params,
            "steps": trained["config"]["max_steps"],
            "loss_first": losses[0] if losses else None,
            "loss_last": losses[-1] if losses else None,
            "losses": losses,
            "wall_s": trained.get("wall_s"),
            "metrics": trained.get("metrics"),
        },
        "perceive": None
        if seeing is None
        else {k: seeing[k] for k in ("token_grid", "held_out_before", "held_out_after", "train_s", "data_s")}
        | {"loss_first": seeing["losses"][0], "loss_last": seeing["losses"][-1]},
    }
    ship = storage_copy(model_dir, work / f"model-{mode}-{cfg.storage}", cfg.storage)
    record["storage"] = cfg.storage
    if evaluate:
        held = load_data(data["eval"])
        ev = evaluate_model(ship, held, cfg.eval_max_tokens, cfg.eval_batch_size)
        _write_json(work / f"eval-{mode}.json", ev)
        record["eval"] = {**ev["summary"], "pairwise_s": ev["pairwise_s"], "pointwise_s": ev.get("pointwise_s")}
        record["eval"]["max_output_tokens"] = max(_n_tokens(ship, _texts(ev)), default=0)
        s = ev["summary"]
        _log(
            f"eval {mode}: parse {100 * s['parse_ok']:.1f}%, pairwise acc "
            f"{s['pairwise_accuracy']['value']}, pointwise acc {s['pointwise_accuracy']['value']}"
        )
        if do_install and cfg.storage != "float32":
            full = evaluate_model(model_dir, held, cfg.eval_max_tokens, cfg.eval_batch_size)
            same = [a == b for a, b in zip(_texts(ev), _texts(full), strict=True)]
            record["storage_check"] = {
                "compared": f"greedy texts of the {cfg.storage}-stored weights vs the float32 weights",
                "identical": sum(same),
                "n": len(same),
                "float32_summary": full["summary"],
            }
            _log(f"{cfg.storage} vs float32: {sum(same)}/{len(same)} identical critiques")
    record["wall_s"] = round(time.perf_counter() - t0, 1)
    ev_s = (record.get("eval") or {}).get("pairwise_s") or 0, (record.get("eval") or {}).get("pointwise_s") or 0
    seeing_s = (seeing["data_s"], seeing["train_s"]) if seeing else ()
    parts = (pipe.get("wall_s"), *seeing_s, trained.get("wall_s"), *ev_s)
    record["build_s"] = round(sum(x or 0 for x in parts), 1)
    _write_json(work / mode / "build.json", record)
    if do_install:
        if not evaluate:
            raise ValueError("--install needs the evaluation (its figures go into the model card)")
        record["shipped"] = install(ship, model_card(record))
        _write_json(RESULTS, record)
        _log(f"installed into {SHIP_DIR} ({record['shipped']['bytes'] / 1e6:.1f} MB); record: {RESULTS}")
    return record


_FLAGS = {
    "seed": "--seed",
    "n_train": "--n-train",
    "n_eval": "--n-eval",
    "steps": "--steps",
    "batch_size": "--batch-size",
    "learning_rate": "--lr",
    "text_layers": "--text-layers",
    "text_hidden": "--text-hidden",
    "vision_hidden": "--vision-hidden",
    "vision_layers": "--vision-layers",
    "patch_size": "--patch-size",
    "perceive_steps": "--perceive-steps",
    "freeze_vision": "--freeze-vision",
    "max_length": "--max-length",
}


def reproduce_command(cfg: BuildConfig, mode: str) -> str:
    """The command line that rebuilds ``cfg`` (only the settings that differ from the defaults)."""
    default = BuildConfig()
    parts = ["python scripts/build_embedded_model.py --work build/embedded", "--threads 1"]
    if mode != "anchored":
        parts.append(f"--mode {mode}")
    for k, flag in _FLAGS.items():
        value = getattr(cfg, k)
        if value != getattr(default, k):
            parts.append((flag if value else "--train-vision") if isinstance(value, bool) else f"{flag} {value}")
    unsettable = [
        f.name
        for f in dataclasses.fields(cfg)
        if f.name not in _FLAGS and getattr(cfg, f.name) != getattr(default, f.name)
    ]
    if unsettable:
        parts.append(f"(and BuildConfig {', '.join(unsettable)} as in the record)")
    if mode == "anchored":
        parts.append("--install")
    return " ".join(parts)


def main(
    work: Path = typer.Option(Path("build/embedded"), "--work", help="work folder (stages are reused on a rerun)"),
    mode: str = typer.Option("anchored", "--mode", help="anchored (PARROT: the shipped model) or direct (ablation)"),
    install_: bool = typer.Option(False, "--install", help="copy the result into the package and write the record"),
    seed: int = typer.Option(0, "--seed"),
    n_train: int = typer.Option(BuildConfig.n_train, "--n-train", help="training pairs"),
    n_eval: int = typer.Option(BuildConfig.n_eval, "--n-eval", help="held-out pairs"),
    steps: int = typer.Option(BuildConfig.steps, "--steps", help="optimizer steps"),
    batch_size: int = typer.Option(BuildConfig.batch_size, "--batch-size"),
    learning_rate: float = typer.Option(BuildConfig.learning_rate, "--lr"),
    text_layers: int = typer.Option(BuildConfig.text_layers, "--text-layers"),
    text_hidden: int = typer.Option(BuildConfig.text_hidden, "--text-hidden"),
    vision_hidden: int = typer.Option(BuildConfig.vision_hidden, "--vision-hidden"),
    vision_layers: int = typer.Option(BuildConfig.vision_layers, "--vision-layers"),
    patch_size: int = typer.Option(BuildConfig.patch_size, "--patch-size", help="vision patch side in pixels"),
    perceive_steps: int = typer.Option(
        BuildConfig.perceive_steps, "--perceive-steps", help="perception pre-training steps of the vision tower"
    ),
    freeze_vision: bool = typer.Option(
        BuildConfig.freeze_vision, "--freeze-vision/--train-vision", help="leave the vision tower as it is in the SFT"
    ),
    max_length: int = typer.Option(BuildConfig.max_length, "--max-length", help="SFT sequence length limit"),
    threads: int = typer.Option(0, "--threads", help="torch threads (0: leave as is)"),
    no_eval: bool = typer.Option(False, "--no-eval", help="skip the held-out evaluation"),
    shared_only: bool = typer.Option(
        False,
        "--shared-only",
        help="build only what both modes share (data, base, perceive), then stop",
    ),
) -> None:
    """Build the embedded model (or its direct-distillation twin) from a seed."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    if threads:
        torch.set_num_threads(threads)
    cfg = BuildConfig(
        seed=seed,
        n_train=n_train,
        n_eval=n_eval,
        steps=steps,
        batch_size=batch_size,
        learning_rate=learning_rate,
        text_layers=text_layers,
        text_hidden=text_hidden,
        vision_hidden=vision_hidden,
        vision_layers=vision_layers,
        patch_size=patch_size,
        perceive_steps=perceive_steps,
        freeze_vision=freeze_vision,
        max_length=max_length,
    )
    if shared_only:
        shared_stages(cfg, work)
        return
    rec = build(cfg, work, mode=mode, do_install=install_, evaluate=not no_eval)
    print(json.dumps({k: rec[k] for k in ("data", "eval") if k in rec}, indent=2, default=str))


if __name__ == "__main__":
    typer.run(main)
