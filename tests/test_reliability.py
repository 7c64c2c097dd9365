"""Nothing lost, nothing silently wrong: earlier runs kept, models saved and resumed, bad settings refused with the
valid range, the recipe kept through loading and resuming, presets the same from objects and dicts."""

from __future__ import annotations

import json
import math
import random
import sys
from pathlib import Path

import pytest
import torch
from conftest import assert_resume_loses_nothing, build, config_of
from test_train_image_classification import TINY as IMAGE_TINY
from test_train_image_classification import write_imagefolder
from test_train_language_model import TINY as TEXT_TINY
from test_train_language_model import write_text_files
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

from hf_mimetic import MimeticConfig, catalog
from hf_mimetic.cli import main as cli_main
from hf_mimetic.plan import recipe_for

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import train_image_classification  # noqa: E402
import train_language_model  # noqa: E402
import train_synthetic  # noqa: E402

SYNTHETIC = ["--model_type", "mamba2", "--hidden_size", "32", "--state_size", "8", "--head_dim", "16", "--num_layers", "2",
             "--train_max_len", "4", "--eval_examples", "4", "--per_device_train_batch_size", "4", "--disable_tqdm", "true"]  # fmt: skip


# -------------------------------------------------------------------------------------------- runs are not lost
def test_a_second_run_into_the_same_output_dir_is_refused_and_the_first_run_kept(tmp_path):
    train, validation = write_text_files(tmp_path / "data")
    output = tmp_path / "out"
    argv = [*TEXT_TINY, "--train_file", str(train), "--validation_file", str(validation), "--output_dir", str(output),
            "--max_steps", "2", "--save_strategy", "steps", "--save_steps", "1", "--eval_strategy", "no"]  # fmt: skip
    train_language_model.main(argv)
    before = {path.relative_to(output): path.stat().st_mtime_ns for path in output.rglob("*") if path.is_file()}
    assert any(str(path).startswith("checkpoint-") for path in before)
    with pytest.raises(ValueError, match=r"already holds an earlier run \(.*checkpoint-1.*--resume_from_checkpoint last.*--overwrite_output_dir"):
        train_language_model.main(argv)
    after = {path.relative_to(output): path.stat().st_mtime_ns for path in output.rglob("*") if path.is_file()}
    assert after == before
    train_language_model.main([*argv, "--overwrite_output_dir", "true"])  # asked for: allowed


@pytest.mark.parametrize("script", ["image", "synthetic"])
def test_the_other_scripts_refuse_an_earlier_run_too(script, tmp_path):
    output = tmp_path / "out"
    output.mkdir()
    (output / "model.safetensors").write_text("earlier")
    if script == "image":
        folder = write_imagefolder(tmp_path / "images")
        argv, main = [*IMAGE_TINY, "--train_dir", str(folder), "--max_steps", "1"], train_image_classification.main
    else:
        argv, main = [*SYNTHETIC, "--max_steps", "1"], train_synthetic.main
    with pytest.raises(ValueError, match="already holds an earlier run"):
        main([*argv, "--output_dir", str(output)])
    assert (output / "model.safetensors").read_text() == "earlier"


def test_synthetic_runs_save_their_model_and_resume_to_the_same_step(tmp_path):
    assert_resume_loses_nothing(train_synthetic.main, [*SYNTHETIC, "--mimetic_init", "--eval_steps", "2"], tmp_path)
    for run in ("whole", "resumed"):
        saved = AutoModelForCausalLM.from_pretrained(tmp_path / run)
        assert saved.config.mimetic_init is True
    card = (tmp_path / "whole" / "README.md").read_text()
    assert "mimetic initialization" in card and "state-space layers" in card


# --------------------------------------------------------------------------------- the recipe survives
def test_resuming_without_the_flags_keeps_the_checkpoints_recipe_and_freeze(tmp_path):
    folder = write_imagefolder(tmp_path / "images")
    output = tmp_path / "out"
    base = [*IMAGE_TINY, "--train_dir", str(folder), "--output_dir", str(output), "--save_strategy", "steps",
            "--save_steps", "1", "--eval_strategy", "no"]  # fmt: skip
    train_image_classification.main([*base, "--max_steps", "1", "--mimetic_init", "--freeze_position_embeddings", "true"])
    train_image_classification.main([*base, "--max_steps", "2", "--resume_from_checkpoint", "last"])
    config = json.loads((output / "config.json").read_text())
    assert config["mimetic_init"] is True and config["mimetic_config"]["freeze_position_embeddings"] is True
    assert "mimetic initialization" in (output / "README.md").read_text()
    with pytest.raises(ValueError, match=r"differ from the checkpoint .*qk_beta: flag 0.5, checkpoint 0.7"):
        train_image_classification.main([*base, "--max_steps", "3", "--resume_from_checkpoint", "last", "--mimetic_init", "--qk_beta", "0.5"])


def test_a_frozen_table_stays_frozen_after_from_pretrained(tmp_path):
    model = build("gpt2", mimetic_init=True, mimetic_config={"freeze_position_embeddings": True})
    model.save_pretrained(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert not loaded.transformer.wpe.weight.requires_grad
    assert loaded.transformer.wte.weight.requires_grad


def test_from_pretrained_explains_that_it_takes_no_mimetic_flags(tmp_path):
    build("gpt2").save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"from_pretrained got mimetic_init: it loads trained weights .*from_config\(AutoConfig.from_pretrained"):
        AutoModelForCausalLM.from_pretrained(tmp_path, mimetic_init=True)


def test_presets_are_the_same_from_an_object_and_from_a_dict(family):
    options = {"layers": [0, 1]}
    from_dict = build(family, mimetic_init=True, mimetic_config=options)
    from_object = build(family, mimetic_init=True, mimetic_config=MimeticConfig(**options))
    assert from_object.config.mimetic_config == from_dict.config.mimetic_config
    assert from_dict.config.mimetic_config["preset"] == catalog.family(family).preset
    for name, tensor in from_dict.state_dict().items():
        assert torch.equal(tensor, from_object.state_dict()[name]), name
    assert recipe_for("gpt2", qk_beta=0.6).position_scale == 1.0  # the language preset, not vision


# --------------------------------------------------------------------------- bad settings: the valid range
@pytest.mark.parametrize(
    "family, settings, message",
    [
        ("vit", {"position_scale": math.inf}, r"position_scale must be a number in \[0.0, 100.0\], got inf"),
        ("vit", {"position_scale": 1e30}, r"position_scale must be a number in \[0.0, 100.0\], got 1e\+30"),
        ("gpt2", {"mlp_mean": float("nan")}, r"mlp_mean must be a number in \[-1.0, 1.0\], got nan"),
        ("mamba", {"ssm_a_shift": math.inf}, r"ssm_a_shift must be a number in \[0.0, 20.0\], got inf"),
        ("mamba2", {"ssm_bc_diagonal": 1e30}, r"ssm_bc_diagonal must be None \(keep the native draw\) or a number in \(0.0, 100.0\], got 1e\+30"),
        ("vit", {"layers": {0, 1}}, r"layers must be None \(every layer\) or a list of distinct layer indices >= 0, e.g. \[0, 2\]; got \{0, 1\}"),
        ("vit", {"layers": {"0": 1}}, r"layers must be None .* got \{'0': 1\}"),
        ("vit", {"layers": 0}, r"layers must be None .* got 0"),
        ("vit", {"layers": [True]}, r"layers must be None .* got \[True\]"),
        ("vit", {"layers": [0, 0]}, r"layers must be None .*distinct.* got \[0, 0\]"),
        ("vit", {"vo_sign": True}, r"vo_sign must be one of \(-1, 1\), got True"),
        ("vit", {"qk_alpha": "0.5"}, r"qk_alpha must be a number in \[0.0, 1.0\], got '0.5'"),
        ("vit", {"preset": "imagenet"}, r"unknown preset 'imagenet'; valid presets: \('vision', 'language', 'decoder', 'encoder', 'ssm', 'conv', 'hybrid'\)"),
        ("vit", {3: 1}, r"mimetic_config keys must be option names|unknown mimetic_config key 3"),
    ],
)
def test_bad_values_raise_a_value_error_naming_the_valid_range(family, settings, message):
    with pytest.raises(ValueError, match=message):
        build(family, mimetic_init=True, mimetic_config=settings)


@pytest.mark.parametrize("flag", ["yes", 1, None])
def test_mimetic_init_must_be_a_bool(flag, tmp_path):
    config = config_of("gpt2", mimetic_init=flag)
    if flag is None:  # None on a config is "not set": the native init
        assert AutoModel.from_config(config).config.mimetic_init is None
        return
    with pytest.raises(ValueError, match=rf"mimetic_init must be True or False, got {flag!r}"):
        AutoModel.from_config(config)
    with pytest.raises(ValueError, match=rf"mimetic_init must be True or False, got {flag!r}"):
        AutoModel.from_config(config_of("gpt2"), mimetic_init=flag)


def test_a_one_layer_model_says_one_layer(tmp_path):
    config = config_of("mamba", num_hidden_layers=1)
    with pytest.raises(ValueError, match=r"layers \[1\] out of range: the model has 1 layer \(valid: 0\)"):
        AutoModel.from_config(config, mimetic_init=True, mimetic_config={"layers": [1]})


# ------------------------------------------------------------------------------------------------------ fuzz
FUZZ_VALUES = [0, 1, -1, 0.5, 2, 1e-3, 1e30, -1e30, math.inf, -math.inf, math.nan, True, False, None, "x", "0.5",
               [], [0], [0, 1], [1, 0], [-1], {0}, {"a": 1}, (0,), 10**20]  # fmt: skip


@pytest.mark.parametrize("seed", range(12))
def test_fuzzed_mimetic_config_either_raises_value_error_or_builds_a_finite_model_that_round_trips(seed, tmp_path):
    rng = random.Random(seed)
    model_type = catalog.model_types()[seed % len(catalog.model_types())]
    keys = sorted({*recipe_for(model_type).to_dict(), "qk_alpha", "ssm_a", "bogus", "initialized"})
    for trial in range(6):
        settings = {rng.choice(keys): rng.choice(FUZZ_VALUES) for _ in range(rng.randint(1, 3))}
        try:
            model = build(model_type, mimetic_init=True, mimetic_config=settings)
        except ValueError:
            continue
        for name, tensor in model.state_dict().items():
            assert torch.isfinite(tensor).all(), (settings, name)
        folder = tmp_path / f"{trial}"
        model.config.save_pretrained(folder)
        reloaded = AutoConfig.from_pretrained(folder)
        assert reloaded.mimetic_config == model.config.mimetic_config, settings
        rebuilt = build(model_type, config=reloaded)
        assert rebuilt.config.mimetic_config == model.config.mimetic_config, settings


# ------------------------------------------------------------------------------------ clear errors in scripts
def test_image_script_errors_name_the_problem_and_the_fix(tmp_path):
    run = lambda *extra: train_image_classification.main([*IMAGE_TINY, "--output_dir", str(tmp_path / "o"), "--max_steps", "1", *extra])  # noqa: E731
    with pytest.raises(ValueError, match=r"--train_dir .*missing: no such folder \(an imagefolder: one sub-folder of images per class\)"):
        run("--train_dir", str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"--train_dir .*empty holds no files"):
        run("--train_dir", str(tmp_path / "empty"))
    one_class = write_imagefolder(tmp_path / "one", classes=("cat",))
    with pytest.raises(ValueError, match=r"gave no labels: an imagefolder needs one sub-folder per class, and at least two classes"):
        run("--train_dir", str(one_class))
    two = write_imagefolder(tmp_path / "two")
    with pytest.raises(ValueError, match=r"--label_column 'image' holds images, not labels"):
        run("--train_dir", str(two), "--label_column", "image")
    with pytest.raises(ValueError, match=r"num_attention_heads must be >= 1, got 0"):
        run("--train_dir", str(two), "--num_attention_heads", "0")


def test_text_script_errors_name_the_problem_and_the_fix(tmp_path):
    run = lambda *extra: train_language_model.main([*TEXT_TINY, "--output_dir", str(tmp_path / "o"), "--max_steps", "1", *extra])  # noqa: E731
    train, _ = write_text_files(tmp_path / "data")
    with pytest.raises(ValueError, match=r"n_head must be >= 1, got 0"):
        run("--train_file", str(train), "--n_head", "0")
    for size in ("0", "-3", "1"):
        with pytest.raises(ValueError, match=rf"block_size must be >= 2 \(a block must hold an input and its next token\), got {size}"):
            run("--train_file", str(train), "--block_size", size)
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(ValueError, match=r"--train_file .*empty.txt is empty"):
        run("--train_file", str(empty))
    one_line = tmp_path / "one.txt"
    one_line.write_text("a single line of text that is long enough for a block\n")
    with pytest.raises(ValueError, match=r"cannot hold out 5% of 1 training examples for validation; give a validation split"):
        run("--train_file", str(one_line))


def test_cli_refuses_zero_steps(capsys):
    with pytest.raises(SystemExit):
        cli_main(["demo", "--steps", "0"])
    assert "must be an integer >= 1, got 0" in capsys.readouterr().err
