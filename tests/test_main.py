"""`python -m hf_mimetic`: the copy demo (progress, one kernel note, the table and a picture), and `structure`: the
side-by-side table shows the structure the init creates."""

from __future__ import annotations

import importlib.util
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from hf_mimetic.cli import coverage_table, describe
from hf_mimetic.demo import write_picture
from hf_mimetic.train.progress import FALLBACK_TEXT, KERNEL_NOTE

# The demo's code path (two worker processes, the study's recipe) on a model and task small enough for seconds.
TINY_MODEL = {"model_type": "mamba2", "hidden_size": 32, "num_layers": 1, "state_size": 8, "head_dim": 16}
TINY_TASK = {"task": "copy", "vocab_size": 8, "train_max_len": 4, "eval_examples": 4, "periodic_eval_examples": 2}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ROOT = Path(__file__).resolve().parents[1]


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR", "not a PNG"
    return struct.unpack(">II", data[16:24])


def test_demo_shows_progress_one_kernel_note_the_table_and_a_picture(tmp_path):
    """`hf-mimetic demo` as a user runs it (its own process, so transformers' handler writes to its real stderr),
    with the model and task shrunk."""
    picture = tmp_path / "figures" / "demo.png"
    code = (
        "import hf_mimetic.demo as demo; from hf_mimetic.cli import main; "
        f"demo.COPY_MODEL.update({TINY_MODEL!r}); demo.COPY_TASK.update({TINY_TASK!r}); "
        f"main(['demo', '--steps', '10', '--seed', '1', '--out', {str(picture)!r}])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=ROOT)
    out, err = done.stdout, done.stderr
    assert done.returncode == 0, err
    progress = re.findall(
        r"^\[\d+:\d\d\] default: (.*) \| mimetic: (.*) \| (?:about \d+:\d\d of training left|time left: estimating)$",
        out,
        re.M,
    )
    # A line when either model has done its first step, then one per tenth of the slower one: 2 to 11 lines.
    assert 2 <= len(progress) <= 11, out
    assert "step 1/10, loss" in progress[0][0] + progress[0][1]
    assert [re.sub(r"[\d.]+$", "", p) for p in progress[-1]] == ["step 10/10, loss "] * 2
    # On CPU without mamba-ssm, transformers warns per kernel and process (10 warnings): one line remains.
    everything = out + err
    assert FALLBACK_TEXT not in everything
    if importlib.util.find_spec("mamba_ssm") is None:
        assert everything.count(KERNEL_NOTE) == 1, everything
    # Nothing else of the Trainer's: no printed log dicts, no bars.
    assert "{'" not in everything and "Writing model shards" not in everything and "it/s]" not in everything
    assert "Setting accelerator" not in everything  # DeepSpeed (the tests' extra) on a machine without a GPU
    row = r"^\| default \(lr 0\.003\) \| [\d.]+ / [\d.]+ \| [\d.]+ / [\d.]+ \| [\d.]+ / [\d.]+ \|$"
    assert re.search(row, out, re.M), out
    assert out.rstrip().endswith(f"Picture: {picture.resolve()}")
    width, height = _png_size(picture)
    assert width > 800 and height > 300


def _fake_run(accuracy: float) -> dict:
    final = {n: {"tf_token_accuracy": accuracy, "greedy_token_accuracy": accuracy / 2} for n in (4, 8, 16)}
    history = [{"step": s, **{f"eval_L{n}_token_accuracy": accuracy * s / 10 for n in (4, 8, 16)}} for s in (5, 10)]
    return {"eval": final, "history": history}


def test_the_picture_is_skipped_with_one_line_without_matplotlib(tmp_path, monkeypatch):
    runs = {"default": _fake_run(0.2), "mimetic": _fake_run(0.9)}
    assert write_picture(runs, tmp_path / "a.png", 0, TINY_TASK) == f"Picture: {(tmp_path / 'a.png').resolve()}"
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import fails as if not installed
    line = write_picture(runs, tmp_path / "b.png", 0, TINY_TASK)
    assert line.startswith("No picture: matplotlib is not installed") and not (tmp_path / "b.png").exists()


def test_demo_command_rejects_zero_steps(capsys):
    from hf_mimetic.cli import main

    with pytest.raises(SystemExit):
        main(["demo", "--steps", "0"])
    assert "must be an integer >= 1, got 0" in capsys.readouterr().err


def _cells(table: str, column: int) -> list[tuple[float, float]]:
    rows = [line for line in table.splitlines() if re.match(r"\| \d+ \|", line)]
    pairs = [row.split("|")[column + 2].strip().split(" → ") for row in rows]
    return [(float(a), float(b)) for a, b in pairs]


def test_attention_table_shows_positive_qk_and_negative_vo_diagonals():
    table = describe("gpt2")
    assert "preset 'language'" in table
    for default, mimetic in _cells(table, 0):  # QK diag
        assert abs(default) < 0.02 and mimetic > 0.1
    for default, mimetic in _cells(table, 2):  # VO diag
        assert abs(default) < 0.02 and mimetic < -0.15


def test_ssm_table_shows_delta_one_and_a_bar_near_one():
    table = describe("mamba2")
    for default, mimetic in _cells(table, 1):  # mean Δ
        assert default < 0.2 and abs(mimetic - 1.0) < 1e-3
    for default, mimetic in _cells(table, 0):  # mean Ā
        assert mimetic > 0.99 and mimetic > default


def test_the_readme_coverage_tables_are_the_catalogue():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert coverage_table() in readme, "README's table is out of date: paste `hf-mimetic coverage` into it"


def test_structure_works_for_a_grouped_query_decoder():
    table = describe("llama")
    assert "preset 'decoder'" in table and "heads=4" in table
