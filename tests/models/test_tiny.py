"""The tiny Qwen3-VL builder: seeded, loadable as a standard checkpoint, with the right template and image tokens."""

from __future__ import annotations

import importlib.util
import json
import math
import shutil

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from PIL import Image  # noqa: E402

from rationalrewards.models.processor import image_only_processor_class, load_processor  # noqa: E402
from rationalrewards.models.tiny import SPECIAL_TOKENS, build_tiny_qwen3vl, make_tiny_qwen3vl  # noqa: E402

HAS_TORCHVISION = importlib.util.find_spec("torchvision") is not None


def _inputs(processor, image, text="Judge the red circle."):
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return processor(text=[prompt], images=[image], return_tensors="pt")


def _greedy(model, enc, n=12):
    with torch.inference_mode():
        out = model.generate(**enc, max_new_tokens=n, do_sample=False)
    return out[0, enc["input_ids"].shape[1] :].tolist()


@pytest.fixture(scope="module")
def image():
    img = Image.new("RGB", (128, 128), (30, 60, 200))
    img.paste((220, 30, 30), (32, 32, 96, 96))
    return img


def test_same_seed_same_weights_and_outputs_other_seed_differs(image):
    m1, p1 = make_tiny_qwen3vl(seed=3)
    m2, p2 = make_tiny_qwen3vl(seed=3)
    m3, _ = make_tiny_qwen3vl(seed=4)
    s1, s2, s3 = m1.state_dict(), m2.state_dict(), m3.state_dict()
    assert s1.keys() == s2.keys() == s3.keys()
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert any(not torch.equal(s1[k], s3[k]) for k in s1 if s1[k].dtype.is_floating_point)
    assert p1.tokenizer.get_vocab() == p2.tokenizer.get_vocab()
    enc = _inputs(p1, image)
    with torch.inference_mode():
        l1, l2, l3 = (m(**enc).logits for m in (m1, m2, m3))
    assert torch.equal(l1, l2)
    assert not torch.allclose(l1, l3)
    assert not m1.training  # built in eval mode: dropout off


def test_building_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    make_tiny_qwen3vl(seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_saved_folder_reloads_with_identical_outputs(tmp_path, image):
    model, processor = make_tiny_qwen3vl(seed=1)
    path = build_tiny_qwen3vl(tmp_path / "ckpt", seed=1)
    reloaded = transformers.AutoModelForImageTextToText.from_pretrained(path).eval()
    assert type(reloaded).__name__ == "Qwen3VLForConditionalGeneration"
    proc2 = load_processor(path)
    enc, enc2 = _inputs(processor, image), _inputs(proc2, image)
    assert torch.equal(enc["input_ids"], enc2["input_ids"])
    assert torch.equal(enc["pixel_values"], enc2["pixel_values"])
    assert "mm_token_type_ids" in enc2
    with torch.inference_mode():
        assert torch.equal(model(**enc).logits, reloaded(**enc2).logits)
    assert _greedy(model, enc) == _greedy(reloaded, enc2)


def test_folder_is_a_standard_checkpoint(tiny_vlm_path):
    files = {p.name for p in tiny_vlm_path.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja"} <= files
    assert "video_preprocessor_config.json" in files  # what the stock processor reads where torchvision exists
    for name in ("processor_config.json", "tokenizer_config.json"):
        assert json.loads((tiny_vlm_path / name).read_text())["processor_class"] == "Qwen3VLProcessor"
    config = json.loads((tiny_vlm_path / "config.json").read_text())
    assert config["model_type"] == "qwen3_vl"
    gen = json.loads((tiny_vlm_path / "generation_config.json").read_text())
    vocab = json.loads((tiny_vlm_path / "tokenizer.json").read_text())["added_tokens"]
    ids = {t["content"]: t["id"] for t in vocab}
    assert set(gen["eos_token_id"]) == {ids["<|im_end|>"], ids["<|endoftext|>"]}


@pytest.mark.skipif(HAS_TORCHVISION, reason="checks the path taken without torchvision")
def test_stock_auto_processor_needs_torchvision_and_load_processor_falls_back(tiny_vlm_path, caplog):
    with pytest.raises(ImportError, match="(?i)torchvision"):
        transformers.AutoProcessor.from_pretrained(tiny_vlm_path)
    with caplog.at_level("WARNING"):
        proc = load_processor(tiny_vlm_path)
    assert "without a video processor" in caplog.text
    assert isinstance(proc, transformers.Qwen3VLProcessor)
    assert proc.image_processor.patch_size == 16


def test_folder_saved_under_the_subclass_name_loads_through_auto_processor(tiny_vlm_path, tmp_path):
    folder = tmp_path / "renamed"
    shutil.copytree(tiny_vlm_path, folder)
    cls = image_only_processor_class("Qwen3VLProcessor")
    for name in ("processor_config.json", "tokenizer_config.json"):
        data = json.loads((folder / name).read_text())
        data["processor_class"] = cls.__name__
        (folder / name).write_text(json.dumps(data))
    proc = transformers.AutoProcessor.from_pretrained(folder)  # resolved through AutoProcessor.register
    assert type(proc) is cls
    # saving it again writes the stock name, so the folder stays a standard checkpoint
    proc.save_pretrained(tmp_path / "resaved")
    assert json.loads((tmp_path / "resaved" / "processor_config.json").read_text())["processor_class"] == (
        "Qwen3VLProcessor"
    )


@pytest.mark.parametrize(("size", "patch_merge"), [((64, 64), 32), ((128, 128), 32), ((224, 224), 32), ((128, 64), 32)])
def test_image_token_count(tiny_vlm_path, size, patch_merge):
    processor = load_processor(tiny_vlm_path)
    config = transformers.AutoConfig.from_pretrained(tiny_vlm_path)
    enc = _inputs(processor, Image.new("RGB", size, (10, 200, 10)))
    expected = (size[0] // patch_merge) * (size[1] // patch_merge)
    assert int((enc["input_ids"] == config.image_token_id).sum()) == expected
    assert int(enc["image_grid_thw"].prod()) == expected * 4  # patches before the 2x2 merge


def test_special_tokens_are_single_tokens_matching_the_config(tiny_vlm_path):
    processor = load_processor(tiny_vlm_path)
    tok = processor.tokenizer
    config = transformers.AutoConfig.from_pretrained(tiny_vlm_path)
    for t in SPECIAL_TOKENS:
        assert len(tok(t, add_special_tokens=False)["input_ids"]) == 1, t
    assert tok.convert_tokens_to_ids("<|image_pad|>") == config.image_token_id
    assert tok.convert_tokens_to_ids("<|video_pad|>") == config.video_token_id
    assert tok.convert_tokens_to_ids("<|vision_start|>") == config.vision_start_token_id
    assert tok.convert_tokens_to_ids("<|vision_end|>") == config.vision_end_token_id
    text = "## Score: 3.5 of 4, the red circle."
    assert tok.decode(tok(text)["input_ids"]) == text


def test_chat_template_generation_blocks_and_prompt(tiny_vlm_path, image):
    processor = load_processor(tiny_vlm_path)
    messages = [
        {"role": "system", "content": "Be strict."},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "First?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "# Summary: fine"}]},
        {"role": "user", "content": [{"type": "text", "text": "Second?"}]},
        {"role": "assistant", "content": "It is blue."},
    ]
    text = processor.apply_chat_template(messages, tokenize=False)
    assert text.startswith("<|im_start|>system\nBe strict.<|im_end|>\n<|im_start|>user\n<|vision_start|>")
    assert text.count("<|im_start|>") == 5 and text.count("<|im_end|>") == 5
    assert text.endswith("<|im_start|>assistant\nIt is blue.<|im_end|>\n")
    prompt = processor.apply_chat_template(messages[:2], add_generation_prompt=True, tokenize=False)
    assert prompt.endswith("First?<|im_end|>\n<|im_start|>assistant\n")
    assert not processor.apply_chat_template(messages[:2], tokenize=False).endswith("assistant\n")

    out = processor.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True, images=[image]
    )
    ids = out["input_ids"][0] if isinstance(out["input_ids"][0], list) else out["input_ids"]
    mask = out["assistant_masks"][0] if isinstance(out["assistant_masks"][0], list) else out["assistant_masks"]
    chosen = [i for i, m in zip(ids, mask, strict=True) if m]
    assert processor.tokenizer.decode(chosen) == "# Summary: fine<|im_end|>It is blue.<|im_end|>"


def test_chat_template_reads_dataset_style_parts(tiny_vlm_path):
    """Parts stored in a datasets column carry every key, the missing ones as None."""
    processor = load_processor(tiny_vlm_path)
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "image", "text": None, "image": None},
                {"type": "text", "text": "Hello", "image": None},
            ],
        }
    ]
    text = processor.apply_chat_template(messages, tokenize=False)
    assert text == "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Hello<|im_end|>\n"


def test_patch_size_sets_the_image_tokens_per_image(image):
    model, processor = make_tiny_qwen3vl(seed=0, vocab_size=512, text_layers=1, patch_size=8)
    enc = _inputs(processor, image)  # 128 x 128: (128 / 8)^2 patches, merged 2 x 2
    assert int((enc["input_ids"] == model.config.image_token_id).sum()) == (128 // 16) ** 2
    assert enc["pixel_values"].shape[-1] == 3 * 2 * 8 * 8  # channels x temporal patch x patch x patch
    assert model.config.vision_config.patch_size == processor.image_processor.patch_size == 8
    assert len(_greedy(model, enc, n=3)) == 3


def test_other_sizes_keep_the_architecture_constraints(tmp_path, image):
    model, processor = make_tiny_qwen3vl(
        seed=0, text_hidden=128, text_heads=4, text_kv_heads=1, text_layers=1, vision_hidden=64, vision_layers=3
    )
    tc, vc = model.config.text_config, model.config.vision_config
    assert sum(tc.rope_parameters["mrope_section"]) == tc.head_dim // 2
    assert math.isqrt(vc.num_position_embeddings) ** 2 == vc.num_position_embeddings
    assert len(vc.deepstack_visual_indexes) <= tc.num_hidden_layers
    assert len(_greedy(model, _inputs(processor, image), n=4)) == 4


def test_custom_corpus_shapes_the_tokenizer():
    _, default = make_tiny_qwen3vl(seed=0)
    _, custom = make_tiny_qwen3vl(seed=0, corpus=["zorblax quinta " * 50] * 20, vocab_size=300)
    word = " zorblax"
    assert len(custom.tokenizer(word)["input_ids"]) == 1
    assert len(default.tokenizer(word)["input_ids"]) > 1


def test_bad_sizes_and_existing_folder_are_refused(tmp_path):
    with pytest.raises(ValueError, match="divide"):
        make_tiny_qwen3vl(text_hidden=250, text_heads=4)
    with pytest.raises(ValueError, match="vocab_size"):
        make_tiny_qwen3vl(vocab_size=100)
    path = build_tiny_qwen3vl(tmp_path / "c", seed=0)
    with pytest.raises(FileExistsError):
        build_tiny_qwen3vl(path, seed=1)
    build_tiny_qwen3vl(path, seed=1, overwrite=True)


def test_line_split_tokenizer_merges_across_spaces_but_not_lines():
    from rationalrewards.models.tiny import train_tokenizer

    corpus = ["## Score: four out of four\n## Justification: clean and coherent\n"] * 200
    words = train_tokenizer(corpus, vocab_size=400, split="words")
    lines = train_tokenizer(corpus, vocab_size=400, split="lines", max_token_chars=40)
    text = "## Justification: clean and coherent\n## Score: four out of four\n"
    assert len(lines.tokenize(text)) < len(words.tokenize(text))
    assert any(" " in lines.convert_tokens_to_string([t]).strip() for t in lines.tokenize(text))
    assert all("\n" not in lines.convert_tokens_to_string([t]).rstrip("\n") for t in lines.tokenize(text))
    with pytest.raises(ValueError, match="split"):
        train_tokenizer(corpus, vocab_size=400, split="chars")
