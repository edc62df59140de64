"""The local transformers backend on the tiny Qwen3-VL: batching, sampling, limits, per-item failure, specs."""

from __future__ import annotations

import asyncio
import io
import json
import shutil

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from PIL import Image  # noqa: E402

from rationalrewards.backends import GenerationConfig, load_backend  # noqa: E402
from rationalrewards.backends.transformers_local import TransformersBackend  # noqa: E402
from rationalrewards.conversation import Conversation, ImagePart  # noqa: E402

GREEDY = GenerationConfig(max_tokens=16)


def _png(color, size=(96, 96)) -> bytes:
    img = Image.new("RGB", size, color)
    img.paste((255 - color[0], 255 - color[1], 255 - color[2]), (size[0] // 4, size[1] // 4, size[0] // 2, size[1]))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _conversations() -> list[Conversation]:
    """Mixed lengths, image counts and text-only items, so that batching needs real left padding."""
    convs = []
    for i in range(7):
        c = Conversation()
        if i % 3 == 0:
            c.add("system", "You judge images strictly.")
        if i % 2 == 0:
            c.add("user", ImagePart(_png((40 * i, 90, 200), (64 + 32 * (i % 3), 96))), f"Judge image {i}." + " red" * i)
        elif i == 3:
            c.add("user", ImagePart(_png((200, 10, 10))), "Source.", ImagePart(_png((10, 10, 200))), "Edited; judge.")
        else:
            c.add("user", f"Text only question {i} about " + "squares and circles, " * i)
        convs.append(c)
    return convs


class _Force:
    """A logits processor that forces a fixed sequence of tokens, then lets the model choose."""

    def __init__(self, tokens: list[int]):
        self.tokens = tokens
        self.start: int | None = None

    def __call__(self, input_ids, scores):
        if self.start is None:
            self.start = input_ids.shape[1]
        step = input_ids.shape[1] - self.start
        if step < len(self.tokens):
            scores = torch.full_like(scores, float("-inf"))
            scores[:, self.tokens[step]] = 0.0
        return scores


def test_batched_equals_one_at_a_time_greedy(tiny_backend):
    convs = _conversations()
    batched = tiny_backend.generate(convs, GREEDY)
    single = [tiny_backend.generate([c], GREEDY)[0] for c in convs]
    assert all(c.ok and len(c.texts) == 1 for c in batched)
    assert [c.texts for c in batched] == [c.texts for c in single]
    assert len({c.texts[0] for c in batched}) > 1  # the prompts really lead to different outputs


def test_batch_size_does_not_change_greedy_outputs(tiny_vlm_path, tiny_backend):
    convs = _conversations()
    small = TransformersBackend(tiny_vlm_path, device="cpu", batch_size=3)
    assert [c.texts for c in small.generate(convs, GREEDY)] == [c.texts for c in tiny_backend.generate(convs, GREEDY)]


def test_greedy_matches_plain_transformers_generate_and_respects_max_tokens(tiny_vlm_path, tiny_backend):
    from rationalrewards.models.processor import load_processor

    model = transformers.AutoModelForImageTextToText.from_pretrained(tiny_vlm_path).eval()
    processor = load_processor(tiny_vlm_path)
    image = _png((0, 120, 60))
    conv = Conversation().add("user", ImagePart(image), "Describe it.")
    prompt = processor.apply_chat_template(conv.to_hf(), add_generation_prompt=True, tokenize=False)
    enc = processor(text=[prompt], images=[Image.open(io.BytesIO(image)).convert("RGB")], return_tensors="pt")
    with torch.inference_mode():
        ref = model.generate(**enc, max_new_tokens=40, do_sample=False)[0, enc["input_ids"].shape[1] :].tolist()
    stops = set(tiny_backend.stop_ids)
    assert not stops & set(ref[:10]), "the tiny model should not stop this early"
    for k in (1, 4, 10):
        got = tiny_backend.generate([conv], GenerationConfig(max_tokens=k))[0].texts[0]
        assert got == processor.tokenizer.decode(ref[:k], skip_special_tokens=True)
    assert len(tiny_backend.generate([conv], GenerationConfig(max_tokens=10))[0].texts[0]) > len(
        tiny_backend.generate([conv], GenerationConfig(max_tokens=1))[0].texts[0]
    )


def test_images_reach_the_model(tiny_backend):
    a = Conversation().add("user", ImagePart(_png((250, 0, 0))), "What colour is it?")
    b = Conversation().add("user", ImagePart(_png((0, 0, 250))), "What colour is it?")
    text = Conversation().add("user", "What colour is it?")
    out = tiny_backend.generate([a, b, text], GenerationConfig(max_tokens=24))
    assert all(c.ok for c in out)
    assert len({c.texts[0] for c in out}) == 3


def test_seeded_sampling_is_reproducible_and_independent_of_the_batch(tiny_backend):
    convs = _conversations()[:4]
    cfg = GenerationConfig(n=3, temperature=1.0, max_tokens=12, seed=11)
    first = tiny_backend.generate(convs, cfg)
    again = tiny_backend.generate(convs, cfg)
    alone = tiny_backend.generate([convs[2]], cfg)[0]
    other_seed = tiny_backend.generate(convs, GenerationConfig(n=3, temperature=1.0, max_tokens=12, seed=12))
    assert [c.texts for c in first] == [c.texts for c in again]
    assert alone.texts == first[2].texts
    assert all(len(c.texts) == 3 for c in first)
    assert all(len(set(c.texts)) == 3 for c in first)  # n samples differ from one another
    assert [c.texts for c in first] != [c.texts for c in other_seed]
    greedy = tiny_backend.generate(convs, GenerationConfig(max_tokens=12))
    assert [c.texts[0] for c in first] != [c.texts[0] for c in greedy]


def test_unseeded_sampling_varies(tiny_backend):
    conv = _conversations()[1]
    cfg = GenerationConfig(n=2, temperature=1.0, max_tokens=12)
    assert tiny_backend.generate([conv], cfg)[0].texts != tiny_backend.generate([conv], cfg)[0].texts


def test_low_temperature_and_tiny_top_p_collapse_to_greedy(tiny_backend):
    convs = _conversations()[:3]
    greedy = [c.texts[0] for c in tiny_backend.generate(convs, GenerationConfig(max_tokens=12))]
    for cfg in (
        GenerationConfig(n=2, temperature=1e-4, max_tokens=12, seed=1),
        GenerationConfig(n=2, temperature=1.0, top_p=1e-6, max_tokens=12, seed=1),
    ):
        assert [c.texts for c in tiny_backend.generate(convs, cfg)] == [[g, g] for g in greedy]


def test_corrupt_image_fails_only_its_item(tiny_backend):
    convs = _conversations()[:4]
    bad = Conversation().add("user", ImagePart(b"\x89PNG\r\n\x1a\nnot really"), "Judge.")
    missing = Conversation().add("user", ImagePart("/no/such/image.png"), "Judge.")
    out = tiny_backend.generate([convs[0], bad, convs[1], missing, convs[2], convs[3]], GREEDY)
    assert not out[1].ok and "image" in out[1].error.lower() and out[1].texts == []
    assert not out[3].ok and "not found" in out[3].error
    clean = tiny_backend.generate(convs, GREEDY)
    assert [c.texts for c in (out[0], out[2], out[4], out[5])] == [c.texts for c in clean]


def test_stops_at_end_of_turn_and_strips_special_tokens(tiny_vlm_path):
    probe = TransformersBackend(tiny_vlm_path, device="cpu")
    tok = probe.processor.tokenizer
    words = tok("red circle", add_special_tokens=False)["input_ids"]
    special = tok.convert_tokens_to_ids
    for stop in ("<|im_end|>", "<|endoftext|>"):
        forced = [words[0], special("<|vision_start|>"), *words[1:], special(stop), *words]
        backend = TransformersBackend(
            tiny_vlm_path, device="cpu", generate_kwargs={"logits_processor": [_Force(forced)]}
        )
        out = backend.generate([Conversation().add("user", "Go.")], GenerationConfig(max_tokens=30))[0]
        assert out.texts == ["red circle"]


def test_checkpoint_sampling_defaults_do_not_leak_into_greedy(tiny_vlm_path, tiny_backend, tmp_path):
    """Real Qwen3-VL checkpoints ship do_sample=True, top_k=20 ... in generation_config.json."""
    folder = tmp_path / "sampling-defaults"
    shutil.copytree(tiny_vlm_path, folder)
    gen = json.loads((folder / "generation_config.json").read_text())
    gen.update(do_sample=True, temperature=0.7, top_k=20, top_p=0.8, repetition_penalty=1.3)
    (folder / "generation_config.json").write_text(json.dumps(gen))
    convs = _conversations()[:3]
    other = TransformersBackend(folder, device="cpu")
    assert [c.texts for c in other.generate(convs, GREEDY)] == [c.texts for c in tiny_backend.generate(convs, GREEDY)]


def test_async_calls_run_concurrently_and_agree(tiny_backend):
    convs = _conversations()

    async def both():
        first, rest = tiny_backend.agenerate(convs[:3], GREEDY), tiny_backend.agenerate(convs[3:], GREEDY)
        return await asyncio.gather(first, rest)

    a, b = asyncio.run(both())
    assert [c.texts for c in a + b] == [c.texts for c in tiny_backend.generate(convs, GREEDY)]


def test_bad_settings_raise(tiny_backend, tiny_vlm_path, tmp_path):
    conv = [Conversation().add("user", "hi")]
    for cfg in (GenerationConfig(n=0), GenerationConfig(max_tokens=0), GenerationConfig(temperature=-1)):
        with pytest.raises(ValueError):
            tiny_backend.generate(conv, cfg)
    with pytest.raises(ValueError, match="top_p"):
        tiny_backend.generate(conv, GenerationConfig(top_p=0))
    with pytest.raises(FileNotFoundError):
        TransformersBackend(tmp_path / "nothing")
    with pytest.raises(ValueError, match="dtype"):
        TransformersBackend(tiny_vlm_path, dtype="int8")
    with pytest.raises(ValueError, match="batch_size"):
        TransformersBackend(tiny_vlm_path, batch_size=0)


def test_load_backend_spec(tiny_vlm_path):
    backend = load_backend(f"transformers:{tiny_vlm_path}", device="cpu", batch_size=2)
    assert isinstance(backend, TransformersBackend)
    assert backend.name == f"transformers:{tiny_vlm_path}"
    assert backend.batch_size == 2
    out = backend.generate([Conversation().add("user", "hello")], GenerationConfig(max_tokens=3))
    assert out[0].ok
    with pytest.raises(ValueError, match="checkpoint folder"):
        load_backend("transformers:")


def test_max_pixels_caps_image_tokens(tiny_vlm_path):
    backend = TransformersBackend(tiny_vlm_path, device="cpu", max_pixels=64 * 64)
    enc = backend.processor(
        text=["<|vision_start|><|image_pad|><|vision_end|>"], images=[Image.new("RGB", (256, 256))], return_tensors="pt"
    )
    image_id = backend.model.config.image_token_id
    assert int((enc["input_ids"] == image_id).sum()) == 4  # 256x256 shrunk to 64x64: (64 / 32) ** 2
    with pytest.raises(ValueError, match="min_pixels"):
        TransformersBackend(tiny_vlm_path, device="cpu", min_pixels=10_000, max_pixels=1_000)


def test_closed_backend_refuses_work(tiny_vlm_path):
    backend = TransformersBackend(tiny_vlm_path, device="cpu")
    backend.close()
    with pytest.raises(RuntimeError, match="closed"):
        backend.generate([Conversation().add("user", "hi")], GREEDY)


def test_loads_a_folder_laid_out_like_the_released_qwen3_vl_checkpoints(tiny_vlm_path, tiny_backend, tmp_path):
    """Qwen/Qwen3-VL-*-Instruct ship preprocessor_config.json (fast image processor), chat_template.json and
    a Qwen2Tokenizer config; the backend must take such a folder unchanged, here without torchvision."""
    folder = tmp_path / "released-layout"
    shutil.copytree(tiny_vlm_path, folder)
    image_processor = json.loads((folder / "processor_config.json").read_text())["image_processor"]
    (folder / "processor_config.json").unlink()
    image_processor.update(image_processor_type="Qwen2VLImageProcessorFast", processor_class="Qwen3VLProcessor")
    (folder / "preprocessor_config.json").write_text(json.dumps(image_processor))
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
    tokenizer_config.update(tokenizer_class="Qwen2Tokenizer", errors="replace")
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    template = (folder / "chat_template.jinja").read_text()
    (folder / "chat_template.jinja").unlink()
    (folder / "chat_template.json").write_text(json.dumps({"chat_template": template}))

    released = load_backend(f"transformers:{folder}", device="cpu")
    assert type(released.processor.tokenizer).__name__ == "Qwen2Tokenizer"
    convs = _conversations()
    assert [c.texts for c in released.generate(convs, GREEDY)] == [
        c.texts for c in tiny_backend.generate(convs, GREEDY)
    ]


def test_item_failing_inside_the_batch_is_isolated(tiny_backend):
    """An image that decodes but that the processor refuses (aspect ratio above 200) fails the batched call;
    the backend retries that chunk one item at a time so only the culprit gets an error."""
    convs = _conversations()[:3]
    odd = Conversation().add("user", ImagePart(Image.new("RGB", (900, 3), (9, 9, 9))), "Judge.")
    out = tiny_backend.generate([convs[0], odd, convs[1], convs[2]], GREEDY)
    assert not out[1].ok and "aspect ratio" in out[1].error
    assert [c.texts for c in (out[0], out[2], out[3])] == [c.texts for c in tiny_backend.generate(convs, GREEDY)]


def test_missing_torch_or_transformers_gives_a_clear_error(tiny_vlm_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ImportError, match="pip install"):
        TransformersBackend(tiny_vlm_path, device="cpu")


def test_importing_the_modules_stays_cheap():
    import subprocess
    import sys

    code = (
        "import sys, rationalrewards.backends.transformers_local, rationalrewards.models.tiny, "
        "rationalrewards.models.processor, rationalrewards.models; "
        "assert not {'torch', 'transformers'} & set(sys.modules), sorted({'torch', 'transformers'} & set(sys.modules))"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- the own decoding loop with a shared prompt prefix (engine="auto" on Qwen3-VL) -------------------------------

SYSTEM = "You judge generated images against the request. " + " ".join(
    f"Rule {i}: check the colours, the shapes and how many there are." for i in range(20)
)


def _shared_prefix_conversations(system: str = SYSTEM) -> list[Conversation]:
    """One long system message shared by all; requests of different lengths with 0, 1 or 2 images."""
    convs = []
    for i in range(6):
        c = Conversation().add("system", system)
        request = f"Request {i}: " + "two red circles and a blue square, " * (1 + 2 * i)
        if i % 3 == 0:
            c.add("user", request, ImagePart(_png((30 * i, 200, 90), (64 + 32 * (i % 2), 96))))
        elif i % 3 == 1:
            c.add("user", "Source:", ImagePart(_png((200, 30 * i, 10))), request, ImagePart(_png((10, 90, 30 * i))))
        else:
            c.add("user", request)
        convs.append(c)
    return convs


def _encode(backend, convs):
    from rationalrewards.images import load_image

    texts = [
        backend.processor.apply_chat_template(c.to_hf(), add_generation_prompt=True, tokenize=False) for c in convs
    ]
    images = [load_image(im) for c in convs for im in c.images()]
    return backend.processor(text=texts, images=images, padding=True, return_tensors="pt")


def test_own_loop_logits_and_tokens_match_model_generate(tiny_backend):
    """Step by step, the shared-prefix loop gives model.generate's logits (to float rounding) and tokens."""
    assert tiny_backend.engine == "own-loop"
    enc = _encode(tiny_backend, _shared_prefix_conversations() + _conversations()[:3])
    mine: list = []
    with torch.inference_mode():
        tokens = tiny_backend._decoder.generate(enc, 12, [], logits_out=mine)
        ref = tiny_backend.model.generate(
            **enc,
            max_new_tokens=12,
            do_sample=False,
            eos_token_id=tiny_backend.stop_ids,
            pad_token_id=tiny_backend.pad_id,
            output_logits=True,
            return_dict_in_generate=True,
        )
    assert tiny_backend.prefix_cache_info()["last_shared_tokens"] <= 1  # only "<|im_start|>" is common
    assert tokens == ref.sequences[:, enc["input_ids"].shape[1] :].tolist()
    assert len(mine) == len(ref.logits)
    for got, want in zip(mine, ref.logits, strict=True):
        torch.testing.assert_close(got, want.float(), atol=1e-4, rtol=1e-4)

    enc = _encode(tiny_backend, _shared_prefix_conversations())
    mine = []
    with torch.inference_mode():
        tokens = tiny_backend._decoder.generate(enc, 12, [], logits_out=mine)
        ref = tiny_backend.model.generate(
            **enc, max_new_tokens=12, do_sample=False, eos_token_id=tiny_backend.stop_ids,
            pad_token_id=tiny_backend.pad_id, output_logits=True, return_dict_in_generate=True,
        )  # fmt: skip
    assert tiny_backend.prefix_cache_info()["last_shared_tokens"] > 100  # the system message ran once
    assert tokens == ref.sequences[:, enc["input_ids"].shape[1] :].tolist()
    for got, want in zip(mine, ref.logits, strict=True):
        torch.testing.assert_close(got, want.float(), atol=1e-4, rtol=1e-4)


def test_own_loop_equals_the_generate_engine(tiny_vlm_path, tiny_backend):
    plain = TransformersBackend(tiny_vlm_path, device="cpu", batch_size=8, engine="generate")
    assert plain.engine == "generate" and plain.prefix_cache_info()["misses"] == 0
    convs = _shared_prefix_conversations() + _conversations()
    greedy = tiny_backend.generate(convs, GREEDY)
    assert all(c.ok for c in greedy)
    assert [c.texts for c in greedy] == [c.texts for c in plain.generate(convs, GREEDY)]
    sampled = GenerationConfig(n=3, temperature=1.0, max_tokens=12, seed=5)
    mine = tiny_backend.generate(convs[:5], sampled)
    assert [c.texts for c in mine] == [c.texts for c in plain.generate(convs[:5], sampled)]
    assert [c.texts for c in mine] == [c.texts for c in tiny_backend.generate(convs[:5], sampled)]
    assert [tiny_backend.generate([c], sampled)[0].texts for c in convs[:5]] == [c.texts for c in mine]
    assert all(len(set(c.texts)) == 3 for c in mine)


def test_min_new_tokens_forces_length_in_both_engines(tiny_vlm_path, monkeypatch):
    from rationalrewards.backends.transformers_local import _PrefixDecoder

    monkeypatch.setattr(_PrefixDecoder, "_GROW", 3)  # the per-row key/value buffers grow several times
    kwargs = {"min_new_tokens": 20}
    own = TransformersBackend(tiny_vlm_path, device="cpu", generate_kwargs=kwargs)
    plain = TransformersBackend(tiny_vlm_path, device="cpu", generate_kwargs=kwargs, engine="generate")
    assert own.engine == "own-loop"
    convs = _shared_prefix_conversations()[:4]
    cfg = GenerationConfig(max_tokens=20)
    assert [c.texts for c in own.generate(convs, cfg)] == [c.texts for c in plain.generate(convs, cfg)]
    enc = _encode(own, convs)
    with torch.inference_mode():
        rows = own._decoder.generate(enc, 20, [], min_new=20)
    assert all(len(r) == 20 and not set(r) & set(own.stop_ids) for r in rows)


def test_prefix_cache_is_reused_across_calls_and_bounded(tiny_vlm_path):
    cached = TransformersBackend(tiny_vlm_path, device="cpu", prefix_cache=2)
    uncached = TransformersBackend(tiny_vlm_path, device="cpu", prefix_cache=0)
    convs = _shared_prefix_conversations()
    one_by_one = [cached.generate([c], GREEDY)[0] for c in convs]
    info = cached.prefix_cache_info()
    assert info["misses"] == 1 and info["hits"] == len(convs) - 1 and info["entries"] == 1
    assert [c.texts for c in one_by_one] == [c.texts for c in uncached.generate(convs, GREEDY)]
    assert uncached.prefix_cache_info()["entries"] == 0
    for k in range(3):  # three other system messages: the oldest entries go
        cached.generate(_shared_prefix_conversations(f"System {k}. " + SYSTEM)[:2], GREEDY)
    assert cached.prefix_cache_info()["entries"] == 2
    assert [c.texts for c in cached.generate(convs, GREEDY)] == [c.texts for c in one_by_one]


def test_shared_prefix_batch_with_a_bad_item(tiny_backend):
    convs = _shared_prefix_conversations()
    corrupt = Conversation().add("system", SYSTEM).add("user", "Judge.", ImagePart(b"\x89PNG\r\n\x1a\nnot really"))
    odd = Conversation().add("system", SYSTEM).add("user", "Judge.", ImagePart(Image.new("RGB", (900, 3))))
    out = tiny_backend.generate([convs[0], corrupt, convs[1], odd, *convs[2:]], GREEDY)
    assert not out[1].ok and not out[3].ok and "aspect ratio" in out[3].error
    good = [out[0], out[2], *out[4:]]
    assert all(c.ok for c in good)
    assert [c.texts for c in good] == [tiny_backend.generate([c], GREEDY)[0].texts for c in convs]


def test_shared_prefix_attention_equals_sdpa():
    from rationalrewards.backends.transformers_local import _shared_prefix_attention

    g = torch.Generator().manual_seed(0)
    rows, heads, kv, d, p, t = 3, 4, 2, 8, 7, 5
    q = torch.randn(rows, heads, 1, d, generator=g)
    shared_k, shared_v = torch.randn(kv, p, d, generator=g), torch.randn(kv, p, d, generator=g)
    own_k, own_v = torch.randn(rows, kv, t, d, generator=g), torch.randn(rows, kv, t, d, generator=g)
    keep = torch.ones(rows, t, dtype=torch.bool)
    keep[1, :2] = False  # left padding in row 1
    bias = torch.where(keep, 0.0, torch.finfo(torch.float32).min).view(rows, 1, 1, t)
    scale = d**-0.5

    def reference(k_all, v_all, mask):
        k_all, v_all = k_all.repeat_interleave(heads // kv, 1), v_all.repeat_interleave(heads // kv, 1)
        out = torch.nn.functional.scaled_dot_product_attention(q, k_all, v_all, attn_mask=mask, scale=scale)
        return out[:, :, 0]

    full_k = torch.cat([shared_k.expand(rows, -1, -1, -1), own_k], 2)
    full_v = torch.cat([shared_v.expand(rows, -1, -1, -1), own_v], 2)
    mask = torch.cat([torch.ones(rows, p, dtype=torch.bool), keep], 1).view(rows, 1, 1, -1)
    got = _shared_prefix_attention(q, shared_k, shared_v, own_k, own_v, bias, scale)
    torch.testing.assert_close(got, reference(full_k, full_v, mask))
    got = _shared_prefix_attention(q, None, None, own_k, own_v, bias, scale)
    torch.testing.assert_close(got, reference(own_k, own_v, keep.view(rows, 1, 1, t)))
    assert not torch.allclose(got[1], reference(own_k, own_v, None)[1])  # the padding really is masked


def test_engine_prefix_cache_and_threads_settings(tiny_vlm_path):
    with pytest.raises(ValueError, match="engine"):
        TransformersBackend(tiny_vlm_path, device="cpu", engine="vllm")
    with pytest.raises(ValueError, match="prefix_cache"):
        TransformersBackend(tiny_vlm_path, device="cpu", prefix_cache=-1)
    with pytest.raises(ValueError, match="num_threads"):
        TransformersBackend(tiny_vlm_path, device="cpu", num_threads=0)
    before = torch.get_num_threads()
    try:
        TransformersBackend(tiny_vlm_path, device="cpu", num_threads=1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    other = TransformersBackend(tiny_vlm_path, device="cpu", generate_kwargs={"repetition_penalty": 1.3})
    out = other.generate(_shared_prefix_conversations()[:2], GREEDY)  # a kwarg the own loop lacks: model.generate
    assert all(c.ok for c in out) and other.prefix_cache_info()["misses"] == 0
