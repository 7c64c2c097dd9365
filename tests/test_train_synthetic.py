"""End to end: scripts/train_synthetic.py for a few steps on CPU, in-process and under `accelerate launch`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import train_synthetic  # noqa: E402

TINY = {
    "mamba2": ["--model_type", "mamba2", "--hidden_size", "32", "--state_size", "8", "--head_dim", "16"],
    "mamba": ["--model_type", "mamba", "--hidden_size", "32", "--state_size", "8"],
    "gpt2": ["--model_type", "gpt2", "--hidden_size", "32", "--head_dim", "16"],
}
FAST = ["--num_layers", "2", "--train_max_len", "4", "--max_steps", "3", "--eval_steps", "2", "--eval_examples", "4",
        "--per_device_train_batch_size", "4", "--disable_tqdm", "true"]  # fmt: skip


def test_without_a_terminal_the_script_prints_progress_lines_and_no_log_dicts(tmp_path, capfd):
    """Under pytest stderr is no terminal: a line per report step instead of the Trainer's bar and printed dicts."""
    argv = [*TINY["mamba2"], *[a for a in FAST if a not in ("--disable_tqdm", "true")], "--output_dir", str(tmp_path)]
    train_synthetic.main([*argv, "--max_steps", "10"])
    out, err = capfd.readouterr()
    lines = re.findall(r"^step (\d+)/10 \(\d+%\), loss [\d.]+, \d+:\d\d elapsed, (?:about \d+:\d\d left|time left: estimating)(.*)$", out, re.M)
    assert [int(step) for step, _ in lines] == list(range(1, 11))
    # Evaluated every 2 steps: those lines carry the accuracy per length.
    evaluated = [int(step) for step, tail in lines if re.fullmatch(r"; token accuracy at L=4: [\d.]+, L=8: [\d.]+, L=16: [\d.]+", tail)]
    assert evaluated == [2, 4, 6, 8, 10]
    assert "{'" not in out and "it/s]" not in err and "falling back" not in err


def test_with_the_bar_the_script_prints_no_progress_lines(tmp_path, capfd):
    train_synthetic.main([*TINY["mamba2"], *FAST, "--output_dir", str(tmp_path), "--disable_tqdm", "false"])
    out, err = capfd.readouterr()
    assert "/3 [" in err  # tqdm's bar
    assert not re.search(r"^step \d+/3", out, re.M)


@pytest.mark.parametrize("model_type", sorted(TINY))
def test_script_trains_and_writes_metrics_per_length(model_type, tmp_path):
    argv = [*TINY[model_type], *FAST, "--output_dir", str(tmp_path), "--mimetic_init"]
    if model_type != "gpt2":
        argv += ["--ssm_identity_conv", "false", "--layers", "1"]
    result = train_synthetic.main(argv)
    metrics = json.loads((tmp_path / "all_results.json").read_text())
    for length in (4, 8, 16):
        for key in ("tf_token_accuracy", "tf_exact_match", "greedy_exact_match"):
            assert 0.0 <= metrics[f"L{length}_{key}"] <= 1.0
    assert [h["step"] for h in result["history"] if "eval_L8_token_accuracy" in h] == [2, 3]
    saved = json.loads((tmp_path / "results.json").read_text())["config"]["mimetic_config"]
    assert saved["preset"] == ("language" if model_type == "gpt2" else "ssm")
    if model_type != "gpt2":
        assert saved["ssm_identity_conv"] is False and saved["layers"] == [1]


def test_mimetic_options_are_validated(tmp_path):
    with pytest.raises(ValueError, match="mimetic_config key 'qk_beta' does not apply to mamba2 models"):
        train_synthetic.main([*TINY["mamba2"], *FAST, "--output_dir", str(tmp_path), "--mimetic_init", "--qk_beta", "0.5"])
    with pytest.raises(ValueError, match=r"mimetic options \['ssm_a_shift'\] were given without --mimetic_init"):
        train_synthetic.main([*TINY["mamba2"], *FAST, "--output_dir", str(tmp_path), "--ssm_a_shift", "4"])


def test_script_runs_under_accelerate_launch(tmp_path):
    command = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", "--cpu", str(ROOT / "scripts" / "train_synthetic.py"),
               *TINY["mamba2"], *FAST, "--output_dir", str(tmp_path)]  # fmt: skip
    subprocess.run(command, check=True, cwd=tmp_path, timeout=300, capture_output=True)
    assert "L16_tf_token_accuracy" in json.loads((tmp_path / "all_results.json").read_text())
