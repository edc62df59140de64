"""Tiny seeded Flux / FluxKontext pipelines built offline (no hub): for tests and smoke runs of the diffusers adapter.

Hidden size 32 CLIP and T5 encoders with locally trained byte-level BPE tokenizers, a 1+1-layer
``FluxTransformer2DModel``, a 2-block ``AutoencoderKL`` and ``FlowMatchEulerDiscreteScheduler``.
The pipelines make 64x64 images in a few steps in well under a second on a CPU; the pictures are
noise, but every code path of a real pipeline runs (tokenizers, encoders, denoiser, VAE, save/load).
"""

from __future__ import annotations

from pathlib import Path

_CORPUS = (
    "a red cube and two blue spheres on a white table, no text. "
    "a green triangle left of a yellow circle. the sign says 'OPEN' in black letters. "
    "make the background purple and keep everything else. replace the cat with a dog. "
    "three orange squares above one pink star, photo, painting, render, sketch. "
)


def _tokenizer(kind: str):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|startoftext|>", "<pad>", "</s>", "<unk>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator([_CORPUS] * 4, trainer)
    if kind == "clip":
        bos, eos = tok.token_to_id("<|startoftext|>"), tok.token_to_id("<|endoftext|>")
        tok.post_processor = processors.TemplateProcessing(
            single="<|startoftext|> $A <|endoftext|>",
            special_tokens=[("<|startoftext|>", bos), ("<|endoftext|>", eos)],
        )
        return PreTrainedTokenizerFast(
            tokenizer_object=tok,
            bos_token="<|startoftext|>",
            eos_token="<|endoftext|>",
            pad_token="<|endoftext|>",
            unk_token="<unk>",
            model_max_length=77,
        )
    eos = tok.token_to_id("</s>")
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", eos)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="</s>", pad_token="<pad>", unk_token="<unk>", model_max_length=512
    )


def tiny_flux_components(seed: int = 0) -> dict:
    """The components of a tiny ``FluxPipeline`` / ``FluxKontextPipeline`` (seeded, eval mode)."""
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    tokenizer = _tokenizer("clip")
    tokenizer_2 = _tokenizer("t5")
    torch.manual_seed(seed)
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=4,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        pooled_projection_dim=32,
        axes_dims_rope=[4, 4, 8],
    )
    torch.manual_seed(seed + 1)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            max_position_embeddings=77,
            projection_dim=32,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    torch.manual_seed(seed + 2)
    text_encoder_2 = T5EncoderModel(
        T5Config(
            vocab_size=len(tokenizer_2),
            d_model=32,
            d_kv=8,
            d_ff=37,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
            pad_token_id=tokenizer_2.pad_token_id,
            eos_token_id=tokenizer_2.eos_token_id,
            decoder_start_token_id=tokenizer_2.pad_token_id,
        )
    )
    torch.manual_seed(seed + 3)
    vae = AutoencoderKL(
        sample_size=32,
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(4, 4),
        layers_per_block=1,
        latent_channels=1,
        norm_num_groups=1,
        use_quant_conv=False,
        use_post_quant_conv=False,
        shift_factor=0.0609,
        scaling_factor=1.5035,
    )
    for m in (transformer, text_encoder, text_encoder_2, vae):
        m.eval()
    return {
        "scheduler": FlowMatchEulerDiscreteScheduler(),
        "text_encoder": text_encoder,
        "text_encoder_2": text_encoder_2,
        "tokenizer": tokenizer,
        "tokenizer_2": tokenizer_2,
        "transformer": transformer,
        "vae": vae,
        "image_encoder": None,
        "feature_extractor": None,
    }


def build_tiny_flux(out_dir: str | Path, kontext: bool = False, seed: int = 0) -> Path:
    """Save a tiny ``FluxPipeline`` (or ``FluxKontextPipeline`` with ``kontext=True``) to ``out_dir``; return it."""
    try:
        from diffusers import FluxKontextPipeline, FluxPipeline
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("tiny diffusers pipelines need diffusers: pip install 'rationalrewards[diffusers]'") from exc
    cls = FluxKontextPipeline if kontext else FluxPipeline
    pipe = cls(**tiny_flux_components(seed))
    out = Path(out_dir)
    pipe.save_pretrained(out)
    return out


#: call kwargs that make the tiny pipelines fast and small (64x64, 2 steps, short T5 sequence)
TINY_CALL_KWARGS = {"height": 64, "width": 64, "num_inference_steps": 2, "max_sequence_length": 32}
#: extra kwargs for FluxKontextPipeline: keep the condition image small instead of resizing to ~1 MP
TINY_KONTEXT_KWARGS = {**TINY_CALL_KWARGS, "max_area": 64 * 64, "_auto_resize": False}
