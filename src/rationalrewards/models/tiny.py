"""A tiny, seeded Qwen3-VL checkpoint built offline in a fraction of a second.

The folder it writes is a standard Qwen3-VL checkpoint (``config.json``,
``model.safetensors``, tokenizer, image processor, chat template, generation
config) that ``AutoModelForImageTextToText`` and ``AutoProcessor`` load (the
latter through ``models.processor.load_processor`` when torchvision is absent).
Tests, benchmarks and the embedded model start from it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..rubric import DIMENSIONS, SCORE_MAX, SCORE_MIN

#: special tokens the Qwen-VL processors and chat templates look up by name
SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

# Qwen2's pre-tokenizer split: single digits, letters with one leading non-letter, punctuation runs, spaces.
_QWEN_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

#: Qwen3-VL style chat template; assistant turns sit in a generation block (for assistant-only loss)
CHAT_TEMPLATE = r"""{%- macro render_content(content) -%}
{%- if content is string -%}{{ content }}
{%- else -%}
{%- for part in content -%}
{%- if part['type'] is defined and part['type'] -%}{%- set kind = part['type'] -%}
{%- elif part['image'] is defined and part['image'] is not none -%}{%- set kind = 'image' -%}
{%- else -%}{%- set kind = 'text' -%}{%- endif -%}
{%- if kind == 'image' or kind == 'image_url' -%}{{ '<|vision_start|><|image_pad|><|vision_end|>' }}
{%- elif kind == 'video' -%}{{ '<|vision_start|><|video_pad|><|vision_end|>' }}
{%- elif part['text'] is defined and part['text'] is not none -%}{{ part['text'] }}
{%- endif -%}
{%- endfor -%}
{%- endif -%}
{%- endmacro -%}
{%- for message in messages -%}
{{ '<|im_start|>' + message['role'] + '\n' }}
{%- if message['role'] == 'assistant' -%}
{% generation %}{{ render_content(message['content']) }}{{ '<|im_end|>' }}{% endgeneration %}{{ '\n' }}
{%- else -%}
{{ render_content(message['content']) }}{{ '<|im_end|>' + '\n' }}
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\n' }}{%- endif -%}
"""

_WORD_TEXT = (
    "the a an of and or but not no with without in on under over above below left right near behind front "
    "next to between is are was were be has have this that it its there one two three four five six seven eight "
    "nine ten red green blue yellow orange purple pink black white gray brown circle square triangle star heart "
    "cat dog bird tree house car cup book sign word text letter image picture photo scene background foreground "
    "small large big tiny bright dark clean blurry sharp noisy missing extra wrong correct exactly mostly "
    "request output source edit keep change add remove replace make show draw render should must only also "
    "because while however overall quality detail object count colour color shape size position relation"
)
_WORDS = tuple(_WORD_TEXT.split())


def _protocol_lines() -> list[str]:
    """Section headers of the critique protocol, when ``rationalrewards.format`` is importable."""
    try:
        from .. import format as fmt
    except Exception:  # noqa: BLE001 - the corpus is only tokenizer training text
        return []
    return [v.line("") for v in vars(fmt).values() if isinstance(v, fmt.Header)]


def default_corpus(seed: int = 0, n_sentences: int = 400) -> Iterator[str]:
    """Tokenizer training text: the rubric, the protocol headers, generic English and numbers."""
    for i, d in enumerate(DIMENSIONS, 1):
        yield f"{i}. {d.title}:"
        yield d.measures
        for level, text in enumerate(d.levels, 1):
            yield f"## Justification: {text}.\n## Score: {float(level)}"
        if d.na_when:
            yield f"N/A when {d.na_when}."
    yield from _protocol_lines()
    yield "# Detailed Judgement\n## Justification:\n## Score:\n# Summary:\n# User Request Refinement:"
    yield "## Refinement Comments:\n## Refined Request:\nImage A\nImage B\nTie\nN/A"
    scores = [SCORE_MIN + 0.25 * k for k in range(int((SCORE_MAX - SCORE_MIN) / 0.25) + 1)]
    yield " ".join(f"{s:.2f} {s:.1f}" for s in scores)
    yield " ".join(str(k) for k in range(101))
    rng = random.Random(seed)
    for _ in range(n_sentences):
        words = rng.choices(_WORDS, k=rng.randint(4, 14))
        sentence = " ".join(words).capitalize()
        yield sentence + rng.choice([".", ".", ",", "?", "!", ":", ";"]) + rng.choice([" ", "\n", ""])


def train_tokenizer(
    corpus: Iterable[str], vocab_size: int = 1024, split: str = "words", max_token_chars: int | None = None
) -> Any:
    """A byte-level BPE trained on ``corpus``, wrapped for ``transformers``.

    ``split="words"``: Qwen2-style pre-tokenizer splits (merges stay inside words).
    ``split="lines"``: merges may cross spaces but not line breaks, so a narrow domain's stock phrases
    become single tokens while headers and the generation prompt (``<|im_start|>assistant\n``)
    tokenize the same alone as in front of an answer (used by the embedded model).
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < 256 + len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size must be at least {256 + len(SPECIAL_TOKENS)} (bytes + special tokens)")
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    if split == "words":
        splitter = pre_tokenizers.Split(Regex(_QWEN_SPLIT), behavior="isolated")
    elif split == "lines":
        splitter = pre_tokenizers.Split("\n", behavior="merged_with_previous")
    else:
        raise ValueError(f"split must be 'words' or 'lines', got {split!r}")
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [splitter, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]
    )
    tok.decoder = decoders.ByteLevel()
    limits = {} if max_token_chars is None else {"max_token_length": max_token_chars}
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
        **limits,
    )
    tok.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=list(SPECIAL_TOKENS[1:]),
        model_max_length=32768,
        clean_up_tokenization_spaces=False,
    )


def make_tiny_qwen3vl(
    seed: int = 0,
    corpus: Iterable[str] | None = None,
    vocab_size: int = 1024,
    text_hidden: int = 256,
    text_layers: int = 2,
    text_heads: int = 4,
    text_kv_heads: int = 2,
    text_intermediate: int | None = None,
    vision_hidden: int = 128,
    vision_layers: int = 2,
    vision_heads: int = 2,
    min_pixels: int = 32 * 32,
    max_pixels: int = 448 * 448,
    max_position_embeddings: int = 8192,
    initializer_range: float = 0.02,
    tokenizer: Any = None,
    patch_size: int = 16,
) -> tuple[Any, Any]:
    """An in-memory ``(model, processor)`` pair: seeded weights, eval mode; see ``build_tiny_qwen3vl``.

    ``tokenizer``: a ready ``PreTrainedTokenizerFast`` holding ``SPECIAL_TOKENS`` (then ``corpus`` and
    ``vocab_size`` are unused); default: one trained by ``train_tokenizer``. ``patch_size``: pixels per
    vision patch side (2x2 patches merge into one image token).
    """
    try:
        import torch
        from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
    except ImportError as exc:  # pragma: no cover - core deps
        raise ImportError("the tiny model needs torch and transformers: pip install 'rationalrewards'") from exc
    from .processor import image_only_processor_class

    if text_hidden % text_heads or text_heads % text_kv_heads:
        raise ValueError("text_hidden must divide by text_heads, and text_heads by text_kv_heads")
    head_dim = text_hidden // text_heads
    if head_dim % 4:
        raise ValueError(f"head_dim = text_hidden / text_heads = {head_dim} must be a multiple of 4 (for mrope)")
    if vision_hidden % vision_heads:
        raise ValueError("vision_hidden must divide by vision_heads")

    if tokenizer is None:
        tokenizer = train_tokenizer(default_corpus(seed) if corpus is None else corpus, vocab_size)
    missing = [t for t in SPECIAL_TOKENS if t not in tokenizer.get_vocab()]
    if missing:
        raise ValueError(f"the tokenizer lacks the special tokens {missing}")
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    half = head_dim // 2  # mrope sections (temporal, height, width) must sum to head_dim / 2
    mrope = [half - 2 * (half * 5 // 16), half * 5 // 16, half * 5 // 16]
    patch, merge = patch_size, 2
    config = Qwen3VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": text_hidden,
            "intermediate_size": text_intermediate or 2 * text_hidden,
            "num_hidden_layers": text_layers,
            "num_attention_heads": text_heads,
            "num_key_value_heads": text_kv_heads,
            "head_dim": head_dim,
            "max_position_embeddings": max_position_embeddings,
            "initializer_range": initializer_range,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 5_000_000.0,
                "mrope_section": mrope,
                "mrope_interleaved": True,
            },
            "pad_token_id": ids["<|endoftext|>"],
            "bos_token_id": None,
            "eos_token_id": ids["<|im_end|>"],
        },
        vision_config={
            "depth": vision_layers,
            "hidden_size": vision_hidden,
            "intermediate_size": 2 * vision_hidden,
            "num_heads": vision_heads,
            "patch_size": patch,
            "spatial_merge_size": merge,
            "temporal_patch_size": 2,
            "out_hidden_size": text_hidden,
            "num_position_embeddings": 16 * 16,  # a perfect square (a 16x16 grid, interpolated)
            "deepstack_visual_indexes": list(range(min(vision_layers, text_layers, 3))),
            "initializer_range": initializer_range,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen3VLForConditionalGeneration(config)
    model.eval()
    gen = model.generation_config
    gen.eos_token_id = [ids["<|im_end|>"], ids["<|endoftext|>"]]
    gen.pad_token_id = ids["<|endoftext|>"]
    gen.bos_token_id = None
    gen.do_sample = False

    image_processor = Qwen2VLImageProcessorPil(
        patch_size=patch,
        merge_size=merge,
        temporal_patch_size=2,
        size={"shortest_edge": min_pixels, "longest_edge": max_pixels},
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )
    processor = image_only_processor_class("Qwen3VLProcessor")(
        image_processor=image_processor, tokenizer=tokenizer, chat_template=CHAT_TEMPLATE
    )
    return model, processor


def build_tiny_qwen3vl(
    out_dir: str | Path,
    seed: int = 0,
    corpus: Iterable[str] | None = None,
    overwrite: bool = False,
    **kwargs: Any,
) -> Path:
    """Write a tiny seeded Qwen3-VL checkpoint folder to ``out_dir`` and return its path.

    ``corpus`` is the tokenizer's training text (default: ``default_corpus``). Other keyword
    arguments size the model (see ``make_tiny_qwen3vl``): ``vocab_size``, ``text_hidden``,
    ``text_layers``, ``vision_hidden``, ``vision_layers``, ``min_pixels``, ``max_pixels`` ...
    The same arguments give identical weights, tokenizer and outputs.
    """
    out = Path(out_dir)
    if (out / "config.json").exists() and not overwrite:
        raise FileExistsError(f"{out} already holds a checkpoint; pass overwrite=True to replace it")
    model, processor = make_tiny_qwen3vl(seed=seed, corpus=corpus, **kwargs)
    save_tiny_qwen3vl(model, processor, out)
    return out


def save_tiny_qwen3vl(model: Any, processor: Any, out_dir: str | Path) -> Path:
    """Save a model and its processor as a standard Qwen3-VL folder (with a video processor config)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    ip = processor.image_processor
    # what a stock Qwen3VLProcessor reads where torchvision is installed (the video path is unused here)
    video = {
        "video_processor_type": "Qwen3VLVideoProcessor",
        "processor_class": "Qwen3VLProcessor",
        "patch_size": ip.patch_size,
        "temporal_patch_size": ip.temporal_patch_size,
        "merge_size": ip.merge_size,
        "size": dict(ip.size),
        "image_mean": list(ip.image_mean),
        "image_std": list(ip.image_std),
        "do_sample_frames": True,
        "fps": 2,
    }
    (out / "video_preprocessor_config.json").write_text(json.dumps(video, indent=2) + "\n", encoding="utf-8")
    return out
