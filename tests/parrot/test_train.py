"""Training: TRL SFT on an export, the result loading through TransformersBackend unchanged."""

from __future__ import annotations

import json

import pytest
import typer
from safetensors.torch import load_file
from typer.testing import CliRunner

from rationalrewards.backends import GenerationConfig
from rationalrewards.backends.transformers_local import TransformersBackend
from rationalrewards.model import RationalRewardModel
from rationalrewards.parrot.cli import train_command
from rationalrewards.parrot.config import ExportConfig, PipelineConfig, TrainConfig, load_config
from rationalrewards.parrot.pipeline import run_pipeline
from rationalrewards.parrot.train import is_vision_parameter
from rationalrewards.testing.parrot_teacher import ScriptedTeacher, make_pairs


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    pairs, plan = make_pairs([("A", ["good"]), ("B", ["good"]), ("tie", ["good"])], edit_every=3)
    work = tmp_path_factory.mktemp("parrot-train")
    cfg = PipelineConfig(export=ExportConfig(formats=("hf",)))
    run_pipeline(pairs, work, cfg, backend=ScriptedTeacher(plan).backend(), progress=False)
    return work / "sft", pairs


def _train_cli(args):
    cli = typer.Typer()
    cli.command()(train_command)
    return CliRunner().invoke(cli, args)


def test_train_from_yaml_and_flags_then_critique(tmp_path, exported, tiny_vlm_path):
    data, pairs = exported
    out = tmp_path / "model"
    config = tmp_path / "run.yaml"
    config.write_text(f"model: {tiny_vlm_path}\ndata: {data}\nlearning_rate: 0.001\nlogging_steps: 1\neval: false\n")
    res = _train_cli(["--config", str(config), "--output-dir", str(out), "--max-steps", "2", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    record = json.loads((out / "parrot_train.json").read_text())
    assert record["config"]["learning_rate"] == 0.001 and record["config"]["max_steps"] == 2
    losses = [h["loss"] for h in record["log_history"] if "loss" in h]
    assert len(losses) == 2 and all(loss > 0 for loss in losses)

    before, after = load_file(tiny_vlm_path / "model.safetensors"), load_file(out / "model.safetensors")
    assert before.keys() == after.keys()
    vision = [k for k in before if is_vision_parameter(k)]
    language = [k for k in before if "language_model" in k and "layers" in k]
    assert vision and language
    assert all(before[k].equal(after[k]) for k in vision)  # the vision tower stayed frozen
    assert any(not before[k].equal(after[k]) for k in language)
    assert (out / "chat_template.jinja").exists() or "chat_template" in (out / "tokenizer_config.json").read_text()

    backend = TransformersBackend(out, device="cpu")
    rm = RationalRewardModel(backend, generation=GenerationConfig(max_tokens=8))
    critiques = rm.critique([pairs[0].sample_a()])
    assert len(critiques) == 1 and critiques[0].raw_text  # a trained tiny model writes something, parsed or not


def test_config_file_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: x\nlearnig_rate: 0.1\n")
    with pytest.raises(ValueError, match="learnig_rate"):
        load_config(TrainConfig, bad)
    res = _train_cli(["--config", str(bad)])
    assert res.exit_code == 1 and "learnig_rate" in res.output
    cfg = load_config(TrainConfig, None, model="m", data="d", lora=True, max_steps=None)
    assert cfg.lora and cfg.max_steps == -1


@pytest.mark.slow
def test_lora_merged_and_kept_as_adapters(tmp_path, exported, tiny_vlm_path):
    from rationalrewards.parrot.train import train

    data, pairs = exported
    merged = train(
        TrainConfig(
            model=str(tiny_vlm_path),
            data=str(data),
            output_dir=str(tmp_path / "merged"),
            lora=True,
            max_steps=2,
            learning_rate=0.01,
            eval=False,
        )
    )
    assert merged.trainable_parameters < merged.frozen_parameters
    keys = load_file(merged.path / "model.safetensors").keys()
    assert not any("lora" in k for k in keys)
    rm = RationalRewardModel(TransformersBackend(merged.path, device="cpu"), generation=GenerationConfig(max_tokens=8))
    assert rm.critique([pairs[0].sample_b()])[0].raw_text
    adapters = train(
        TrainConfig(
            model=str(tiny_vlm_path),
            data=str(data),
            output_dir=str(tmp_path / "adapters"),
            lora=True,
            max_steps=1,
            merge_lora=False,
            eval=False,
        )
    )
    assert (adapters.path / "adapter_config.json").exists()
