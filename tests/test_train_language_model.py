"""End to end: scripts/train_language_model.py for a few steps on text made here (text files, save_to_disk), in-process
and once under `accelerate launch` with configs/accelerate/cpu.yaml."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import assert_resume_loses_nothing
from datasets import Dataset, DatasetDict
from transformers import AutoModelForCausalLM, AutoTokenizer

from hf_mimetic.inspect import structure
from hf_mimetic.train import load_splits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import train_language_model  # noqa: E402

TINY = ["--n_embd", "32", "--n_layer", "2", "--n_head", "2", "--block_size", "16", "--per_device_train_batch_size", "4",
        "--per_device_eval_batch_size", "8", "--disable_tqdm", "true", "--use_cpu", "true", "--seed", "0"]  # fmt: skip
FEW_STEPS = ["--max_steps", "2", "--save_strategy", "no", "--eval_strategy", "no"]
LINES = [
    "the quick brown fox jumps over the lazy dog",
    "a mimetic init makes attention look pretrained",
    "queries and keys correlate while values and projections cancel",
    "small data sets need a good inductive bias",
] * 6


def write_text_files(folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    train, validation = folder / "train.txt", folder / "validation.txt"
    train.write_text("\n".join(LINES) + "\n")
    validation.write_text("\n".join(reversed(LINES)) + "\n")
    return train, validation


def save_ptb_like(path: Path, column: str = "sentence") -> Path:
    """train/validation/test with PTB's column name (``sentence``) and its <unk> markers."""
    lines = [line.replace("fox", "<unk>") for line in LINES]
    DatasetDict({split: Dataset.from_dict({column: lines}) for split in ("train", "validation", "test")}).save_to_disk(
        str(path)
    )
    return path


def test_char_level_on_text_files_reports_bits_per_character(tmp_path):
    train, validation = write_text_files(tmp_path / "data")
    output = tmp_path / "out"
    results = train_language_model.main(
        [
            *TINY,
            *FEW_STEPS,
            "--train_file",
            str(train),
            "--validation_file",
            str(validation),
            "--output_dir",
            str(output),
            "--mimetic_init",
            "--qk_beta",
            "0.6",
        ]  # fmt: skip
    )
    assert results["eval_bits_per_character"] == pytest.approx(results["eval_loss"] / math.log(2))
    assert results["eval_perplexity"] == pytest.approx(math.exp(results["eval_loss"]))
    assert 0.0 <= results["eval_accuracy"] <= 1.0
    tokenizer = AutoTokenizer.from_pretrained(output)  # the vocabulary is saved with the model
    assert set(tokenizer.get_vocab()) == set("".join(LINES) + "\n") | {"<unk>"}
    assert tokenizer.decode(tokenizer("the lazy dog\n")["input_ids"]) == "the lazy dog\n"
    config = json.loads((output / "config.json").read_text())
    assert config["mimetic_config"]["preset"] == "language" and config["mimetic_config"]["qk_beta"] == 0.6
    assert config["vocab_size"] == len(tokenizer) and config["n_positions"] == 16
    assert "mimetic-init" in (output / "README.md").read_text()
    for layer in structure(AutoModelForCausalLM.from_pretrained(output)):
        assert layer["qk_diag"] > 0.1 and layer["vo_diag"] < -0.05


def test_word_level_on_saved_dataset_caps_the_vocabulary_and_reports_test(tmp_path):
    dataset = save_ptb_like(tmp_path / "data")
    output = tmp_path / "out"
    results = train_language_model.main(
        [
            *TINY,
            *FEW_STEPS,
            "--dataset_path",
            str(dataset),
            "--tokenizer",
            "word",
            "--max_vocab_size",
            "12",
            "--output_dir",
            str(output),
        ]
    )
    assert {"eval_perplexity", "test_perplexity", "test_accuracy"} <= results.keys()
    assert "eval_bits_per_character" not in results
    tokenizer = AutoTokenizer.from_pretrained(output)
    assert len(tokenizer) <= 12 and {"<unk>", "<eos>"} <= set(tokenizer.get_vocab())
    ids = tokenizer("the zebra <eos>")["input_ids"]
    assert ids[1] == tokenizer.unk_token_id and ids[2] == tokenizer.eos_token_id
    assert "mimetic_config" not in json.loads((output / "config.json").read_text())


def test_validation_is_carved_from_train_the_same_for_every_seed(tmp_path):
    train, _ = write_text_files(tmp_path / "data")
    args = train_language_model.TextDataArguments(train_file=str(train), validation_split_percentage=25)
    first, second = load_splits(args, seed=0), load_splits(args, seed=1)
    assert sorted(first) == ["train", "validation"] and len(first["validation"]) == len(LINES) // 4
    assert first["validation"]["text"] == second["validation"]["text"]
    assert len(first["train"]) + len(first["validation"]) == len(LINES)


def test_resume_from_checkpoint_loses_nothing(tmp_path):
    """With dropout on: the resumed run must replay the same data order and dropout masks."""
    train, validation = write_text_files(tmp_path / "data")
    argv = [
        *TINY,
        "--train_file",
        str(train),
        "--validation_file",
        str(validation),
        "--mimetic_init",
        "--dropout",
        "0.1",
    ]
    assert_resume_loses_nothing(train_language_model.main, argv, tmp_path)


def test_missing_text_column_is_a_clear_error(tmp_path):
    dataset = save_ptb_like(tmp_path / "data", column="words")
    argv = [*TINY, *FEW_STEPS, "--dataset_path", str(dataset), "--output_dir", str(tmp_path / "out")]
    with pytest.raises(
        ValueError,
        match=r"no text column in the dataset: looked for \['text', 'sentence', 'content'\], found \['words'\]",
    ):
        train_language_model.main(argv)
    with pytest.raises(ValueError, match="fewer than --block_size 4096 tokens"):
        train_language_model.main([*argv, "--text_column", "words", "--block_size", "4096"])


def test_script_runs_under_accelerate_launch_with_the_cpu_config(tmp_path):
    train, validation = write_text_files(tmp_path / "data")
    config = ROOT / "configs" / "accelerate" / "cpu.yaml"
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config),
               str(ROOT / "scripts" / "train_language_model.py"), *TINY, *FEW_STEPS, "--train_file", str(train),
               "--validation_file", str(validation), "--output_dir", str(tmp_path / "out")]  # fmt: skip
    subprocess.run(command, check=True, cwd=tmp_path, timeout=300, capture_output=True)
    assert "eval_bits_per_character" in json.loads((tmp_path / "out" / "all_results.json").read_text())


def test_help_lists_the_script_and_mimetic_flags(capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_language_model.main(["--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    assert all(flag in help_text for flag in ("--tokenizer", "--block_size", "--qk_beta", "--dataset_path"))


def test_a_grouped_query_llama_trains_as_a_causal_lm(tmp_path):
    train, validation = write_text_files(tmp_path / "data")
    output = tmp_path / "out"
    argv = [*TINY, *FEW_STEPS, "--model_type", "llama", "--n_head", "4", "--n_kv_head", "2", "--train_file", str(train),
            "--validation_file", str(validation), "--output_dir", str(output), "--mimetic_init"]  # fmt: skip
    results = train_language_model.main(argv)
    assert results["eval_bits_per_character"] == pytest.approx(results["eval_loss"] / math.log(2))
    config = json.loads((output / "config.json").read_text())
    assert config["model_type"] == "llama" and config["num_key_value_heads"] == 2 and config["attention_dropout"] == 0.1
    assert config["mimetic_config"]["preset"] == "decoder" and config["mimetic_config"]["initialized"] == {"attention": [0, 1]}
    with pytest.raises(ValueError, match=r"'position_scale' does not apply to llama models \(it has no learned position table"):
        train_language_model.main([*argv[:-3], "--output_dir", str(tmp_path / "o2"), "--mimetic_init", "--position_scale", "2"])


def test_bert_trains_with_masked_language_modelling_on_fixed_evaluation_masks(tmp_path, monkeypatch):
    train, validation = write_text_files(tmp_path / "data")
    evaluated = []  # the evaluation set each run's Trainer receives

    class RecordingTrainer(train_language_model.MimeticTrainer):
        def __init__(self, *args, **kwargs):
            evaluated.append(kwargs["eval_dataset"])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(train_language_model, "MimeticTrainer", RecordingTrainer)
    runs = []
    for run in ("a", "b"):
        argv = [*TINY, *FEW_STEPS, "--model_type", "bert", "--train_file", str(train), "--validation_file",
                str(validation), "--output_dir", str(tmp_path / run), "--mimetic_init"]  # fmt: skip
        runs.append(train_language_model.main([*argv, "--seed", "0" if run == "a" else "1"]))
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "a")
    assert tokenizer.mask_token == "<mask>" and tokenizer.pad_token == "<pad>"
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert config["model_type"] == "bert" and config["pad_token_id"] == tokenizer.pad_token_id
    assert set(config["mimetic_config"]["initialized"]) == {"attention", "positions"}
    assert all(0.0 <= run["eval_accuracy"] <= 1.0 for run in runs)
    # Seeds 0 and 1 are scored on the same masked tokens.
    first, second = (dataset.to_dict() for dataset in evaluated)
    assert first == second and any(label != -100 for row in first["labels"] for label in row)
    assert any(label == -100 for row in first["labels"] for label in row)
    from transformers import AutoModelForMaskedLM

    model = AutoModelForMaskedLM.from_pretrained(tmp_path / "a")
    assert structure(model)[0]["vo_diag"] < -0.1


def test_byte_tokenizer_gives_each_byte_its_value_and_decodes_any_text():
    text = "déjà vu ∑ <mask> <pad>\x00\t\r\n"
    for masked in (False, True):
        tokenizer = train_language_model.build_byte_tokenizer(masked)
        ids = tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]
        assert ids == list(text.encode("utf-8")) and tokenizer.decode(ids) == text
        assert len(tokenizer) == 256 + 2 * masked
    assert (tokenizer.pad_token_id, tokenizer.mask_token_id) == (256, 257)


def test_byte_level_masked_lm_reports_bits_per_byte_and_saves_its_vocabulary(tmp_path):
    train, validation = write_text_files(tmp_path / "data")
    validation.write_text("naïve café\n" * 8)  # bytes outside the training text are not unknown
    argv = [*TINY, *FEW_STEPS, "--model_type", "bert", "--tokenizer", "byte", "--train_file", str(train),
            "--validation_file", str(validation), "--output_dir", str(tmp_path / "out")]  # fmt: skip
    results = train_language_model.main(argv)
    assert results["eval_bits_per_byte"] == pytest.approx(results["eval_loss"] / math.log(2))
    assert "eval_bits_per_character" not in results
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "out")
    assert len(tokenizer) == 258 and tokenizer.decode(tokenizer("é")["input_ids"]) == "é"
    assert json.loads((tmp_path / "out" / "config.json").read_text())["vocab_size"] == 258


def test_evaluation_masks_follow_berts_rule_and_are_the_same_for_every_run():
    import numpy as np

    ids = list(range(10, 60)) * 400
    inputs, labels = train_language_model.mask_once(ids, np.random.default_rng(0), mask_id=3, vocab_size=60)
    again = train_language_model.mask_once(ids, np.random.default_rng(0), mask_id=3, vocab_size=60)
    assert (inputs, labels) == again
    scored = [i for i, label in enumerate(labels) if label != -100]
    assert len(scored) / len(ids) == pytest.approx(0.15, abs=0.01)
    assert all(labels[i] == ids[i] for i in scored)
    masked = sum(inputs[i] == 3 for i in scored) / len(scored)
    kept = sum(inputs[i] == ids[i] for i in scored) / len(scored)
    assert masked == pytest.approx(0.8, abs=0.03) and kept == pytest.approx(0.1 + 0.1 / 60, abs=0.03)
    assert all(inputs[i] == ids[i] for i in range(len(ids)) if labels[i] == -100)


class LocalHub:
    """Stands in for huggingface_hub's HfApi: create_repo and upload_folder copy to a local folder (no network)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def create_repo(self, repo_id: str, **kwargs):
        from types import SimpleNamespace

        (self.root / repo_id).mkdir(parents=True, exist_ok=True)
        return SimpleNamespace(repo_id=repo_id)

    def upload_folder(self, repo_id: str, folder_path: str, ignore_patterns=(), **kwargs):
        import fnmatch
        import shutil

        for path in Path(folder_path).rglob("*"):
            relative = path.relative_to(folder_path)
            if path.is_file() and not any(fnmatch.fnmatch(part, p) for p in ignore_patterns for part in relative.parts):
                (self.root / repo_id / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, self.root / repo_id / relative)


@pytest.mark.parametrize("precision", ["--bf16", "--fp16"])
def test_half_precision_push_to_hub_and_the_position_scale_reach_the_saved_model(tmp_path, monkeypatch, precision):
    """What the README promises of both scripts' flags, on GPT-2: --bf16 and --fp16 train (mixed precision: CPU
    autocast here), --push_to_hub uploads the model and its card, and --position_scale is in the saved position table."""
    import transformers.trainer
    from safetensors.torch import load_file

    from hf_mimetic.maths.positions import sinusoidal_1d

    hub = LocalHub(tmp_path / "hub")
    monkeypatch.setattr(transformers.trainer, "hf_api", lambda: hub)
    train, validation = write_text_files(tmp_path / "data")
    argv = [*TINY, *FEW_STEPS, "--train_file", str(train), "--validation_file", str(validation), "--output_dir",
            str(tmp_path / "out"), "--mimetic_init", "--position_scale", "2", precision, "--push_to_hub",
            "--hub_model_id", "me/tiny-gpt2"]  # fmt: skip
    results = train_language_model.main(argv)
    assert math.isfinite(results["eval_loss"])
    pushed = tmp_path / "hub" / "me" / "tiny-gpt2"
    config = json.loads((pushed / "config.json").read_text())
    assert config["mimetic_config"]["position_scale"] == 2.0
    assert "mimetic" in (pushed / "README.md").read_text().lower()
    # Two steps at the default learning rate move the table by far less than its amplitude: it is still 2 × 0.02 ×
    # the sinusoids (an ignored flag would leave 1 × 0.02 ×, the preset's).
    table = load_file(pushed / "model.safetensors")["transformer.wpe.weight"].float()
    expected = 2.0 * 0.02 * sinusoidal_1d(*table.shape)
    assert (table - expected).abs().max().item() < 0.1 * expected.abs().max().item()
