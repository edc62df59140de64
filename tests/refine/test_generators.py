"""Generator contract and adapters: callables, a real loopback images server, tiny Flux / FluxKontext pipelines."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from rationalrewards.refine.generators import CallableGenerator, GeneratorError, load_generator
from rationalrewards.testing.colour_world import COLOURS, colour_name, paint
from rationalrewards.testing.images_server import ImagesServer


def same(a: Image.Image, b: Image.Image) -> bool:
    return np.array_equal(np.asarray(a), np.asarray(b))


def close(a: Image.Image, b: Image.Image, levels: int = 2) -> bool:
    """Equal up to float rounding: a batch runs other CPU kernels than one image, which can move a pixel by 1."""
    return int(np.abs(np.asarray(a).astype(int) - np.asarray(b).astype(int)).max()) <= levels


# ---------------------------------------------------------------------- contract


def test_callable_generator_counts_and_validates():
    gen = CallableGenerator(paint, supports_edit=False)
    out = gen.generate(["a red cube", "a blue cube"], [0, 1])
    assert [colour_name(i) for i in out] == ["red", "blue"]
    assert (gen.images_made, gen.batches) == (2, 1)
    with pytest.raises(ValueError, match="one seed"):
        gen.generate(["a", "b"], [0])
    with pytest.raises(ValueError, match="empty"):
        gen.generate([" "], [0])
    with pytest.raises(ValueError, match="edit"):
        gen.generate(["a"], [0], [Image.new("RGB", (4, 4))])
    assert gen.images_made == 2  # refused calls count nothing


def test_batched_callable_and_wrong_count():
    gen = CallableGenerator(lambda rs, ss, srcs: [paint(r, s) for r, s in zip(rs, ss, strict=True)], batched=True)
    assert len(gen.generate(["a", "b", "c"], [0, 1, 2])) == 3
    short = CallableGenerator(lambda rs, ss, srcs: [paint(rs[0])], batched=True)
    with pytest.raises(GeneratorError, match="made 1 images for 2"):
        short.generate(["a", "b"], [0, 1])


def test_load_generator_errors():
    with pytest.raises(ValueError, match="unknown generator"):
        load_generator("nope:thing")
    with pytest.raises(ValueError, match="non-empty"):
        load_generator("")
    with pytest.raises(ValueError, match="http"):
        load_generator("openai-images:localhost:9")


# ---------------------------------------------------------------------- images endpoint


def test_images_endpoint_generations_and_edits():
    with ImagesServer(api_key="sekret") as srv:
        spec = f"openai-images:{srv.base_url}?model=img-1&size=32x32&send_seed&quality=high"
        gen = load_generator(spec, api_key="sekret")
        source = Image.new("RGB", (16, 16), COLOURS["green"])
        out = gen.generate(["a red cube", "keep it"], [3, 4], [None, source])
        assert colour_name(out[0]) == "red"
        assert colour_name(out[1]) == "green"  # the server painted from the uploaded source
        assert same(out[0], paint("a red cube", 3))
        by_endpoint = {r["endpoint"]: r for r in srv.state.requests}
        assert by_endpoint["generations"]["model"] == "img-1"
        assert by_endpoint["generations"]["size"] == "32x32" and by_endpoint["generations"]["seed"] == 3
        assert by_endpoint["generations"]["quality"] == "high"
        assert by_endpoint["edits"]["image_bytes"] > 0 and by_endpoint["edits"]["seed"] == "4"
        assert gen.images_made == 2


def test_images_endpoint_retries_on_503_and_429():
    for status in (503, 429):
        with ImagesServer(fail_first=2, fail_status=status) as srv:
            gen = load_generator(f"openai-images:{srv.base_url}", backoff_s=0.001)
            out = gen.generate(["a blue cube"], [0])
            assert colour_name(out[0]) == "blue"
            assert len(srv.state.requests) == 3


def test_images_endpoint_gives_up_and_does_not_retry_client_errors():
    with ImagesServer(fail_first=10, fail_status=500) as srv:
        gen = load_generator(f"openai-images:{srv.base_url}?max_retries=2", backoff_s=0.001)
        with pytest.raises(GeneratorError, match="gave up after 3"):
            gen.generate(["a"], [0])
        assert len(srv.state.requests) == 3
    with ImagesServer(api_key="right") as srv:
        gen = load_generator(f"openai-images:{srv.base_url}", api_key="wrong", backoff_s=0.001)
        with pytest.raises(GeneratorError, match="401"):
            gen.generate(["a"], [0])
        assert len(srv.state.requests) == 1
    assert gen.images_made == 0


# ---------------------------------------------------------------------- diffusers


@pytest.fixture(scope="module")
def tiny_pipelines(tmp_path_factory):
    pytest.importorskip("diffusers")
    from rationalrewards.testing.tiny_diffusers import build_tiny_flux

    root = tmp_path_factory.mktemp("tiny-flux")
    return build_tiny_flux(root / "flux"), build_tiny_flux(root / "kontext", kontext=True)


def test_diffusers_text_to_image_is_batched_and_seeded_per_item(tiny_pipelines):
    from rationalrewards.testing.tiny_diffusers import TINY_CALL_KWARGS

    flux, _ = tiny_pipelines
    query = "&".join(f"{k}={v}" for k, v in TINY_CALL_KWARGS.items())
    gen = load_generator(f"diffusers:{flux}?device=cpu&batch_size=2&{query}")
    assert type(gen.pipeline).__name__ == "FluxPipeline"
    assert gen.supports_t2i and not gen.supports_edit
    out = gen.generate(["a red cube", "two blue spheres", "a green triangle"], [1, 2, 3])
    assert len(out) == 3 and all(i.size == (64, 64) for i in out)
    assert gen.images_made == 3
    alone = gen.generate(["two blue spheres"], [2])[0]
    assert close(alone, out[1])  # same seed and request: the same image whatever the batch
    assert not close(gen.generate(["two blue spheres"], [7])[0], out[1])
    with pytest.raises(ValueError, match="edit"):
        gen.generate(["x"], [0], [Image.new("RGB", (64, 64))])


def test_diffusers_edit_pipeline(tiny_pipelines):
    from rationalrewards.refine.generators.diffusers_gen import DiffusersGenerator
    from rationalrewards.testing.tiny_diffusers import TINY_KONTEXT_KWARGS

    _, kontext = tiny_pipelines
    gen = DiffusersGenerator(str(kontext), device="cpu", call_kwargs=TINY_KONTEXT_KWARGS)
    assert type(gen.pipeline).__name__ == "FluxKontextPipeline" and gen.supports_edit
    red, blue = Image.new("RGB", (64, 64), COLOURS["red"]), Image.new("RGB", (64, 64), COLOURS["blue"])
    out = gen.generate(["make it blue", "make it red", "a cat"], [0, 0, 0], [red, blue, None])
    assert len(out) == 3 and gen.images_made == 3
    assert not same(out[0], out[1])  # the source conditions the result
    assert gen.batches == 1


def test_diffusers_rejects_unknown_call_kwargs(tiny_pipelines):
    from rationalrewards.refine.generators.diffusers_gen import DiffusersGenerator

    flux, _ = tiny_pipelines
    with pytest.raises(ValueError, match="does not take"):
        DiffusersGenerator(str(flux), call_kwargs={"num_steps": 2})
    with pytest.raises(ValueError, match="may not set"):
        DiffusersGenerator(str(flux), call_kwargs={"prompt": "x"})
    with pytest.raises(ValueError, match="cannot edit"):
        DiffusersGenerator(str(flux), edit=True)
    # spec options and keyword options: generator settings vs pipeline call kwargs
    gen = load_generator(f"diffusers:{flux}?height=64&width=64&batch_size=3", num_inference_steps=2, device="cpu")
    assert gen.call_kwargs == {"height": 64, "width": 64, "num_inference_steps": 2}
    assert (gen.batch_size, gen.device, gen.name) == (3, "cpu", f"diffusers:{flux}")
