"""The GPU studies (experiments/gpu_studies.py) without a GPU: each study's dry twin runs its whole code path on the
CPU (data, one run per variant, the report and figure) into a temporary folder; the studies' sizes are the GPU's;
the standard-library corpus splits by file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))
import _data  # noqa: E402
import gpu_studies  # noqa: E402
from _runner import ScriptRun, SyntheticRun  # noqa: E402

GPU = [name for name in gpu_studies.STUDIES if name.startswith("gpu-")]
DRY = sorted({gpu_studies.dry_name(name) for name in GPU})


def study_command(*argv: str) -> str:
    """Run experiments/gpu_studies.py as a user would; its stdout (fails with its stderr's end)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "experiments/gpu_studies.py", *argv], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory) -> tuple[Path, str]:
    """Every dry twin, one after another in one process (``--workers 0``), then their report."""
    folder = tmp_path_factory.mktemp("dry")
    study_command("run", "--study", "dry-*", "--workers", "0", "--results", str(folder))
    return folder, study_command("report", "--study", "dry-*", "--results", str(folder))


@pytest.mark.parametrize("name", DRY)
def test_each_dry_run_trains_every_variant_and_reports_the_pairs(dry_run, name):
    folder, report = dry_run
    study = gpu_studies.STUDIES[name]
    records = [json.loads(line) for line in (folder / f"{name}.jsonl").read_text().splitlines()]
    assert sorted(r["variant"] for r in records) == sorted(study.variants)  # one run each: seed 0, one rate
    columns = [c.format(metric=study.metric) for c in study.columns]
    assert all(set(columns) <= r["results"].keys() and r["history"] for r in records)
    section = report.split(f"### {name}:")[1].split("\n### ")[0]
    assert "Paired with default (variant − default, same seed)" in section
    assert all(f"| {variant} |" in section for variant in study.variants)
    assert (folder / "figures" / f"{name}.png").stat().st_size > 0


def test_dry_runs_write_nothing_into_the_repository(dry_run):
    for folder, pattern in ((ROOT / "experiments" / "results", "dry-*"), (ROOT / "docs" / "figures", "dry-*")):
        assert not list(folder.glob(pattern)), f"a dry run wrote into {folder}"
    corpus = json.loads((dry_run[0] / "runs" / "data" / "dry-stdlib" / "corpus.json").read_text())
    assert corpus["python"] == ".".join(map(str, sys.version_info[:3]))
    assert all(0 < split["MB"] < 0.008 for split in corpus["splits"].values())


def test_every_gpu_study_has_a_dry_twin_and_runs_on_the_gpu_at_the_issues_sizes():
    assert {gpu_studies.dry_name(name) for name in GPU} <= set(gpu_studies.STUDIES)
    for name in GPU:
        study, twin = gpu_studies.STUDIES[name], gpu_studies.STUDIES[gpu_studies.dry_name(name)]
        assert (study.seeds, study.sweep_seeds, len(study.learning_rates)) == ([0, 1, 2], [0], 3)
        assert "default" in study.variants and twin.variants.keys() == study.variants.keys()
        if isinstance(study.run, SyntheticRun):
            assert not study.run.use_cpu and twin.run.use_cpu
            assert study.run.model["num_layers"] in (8, 16) and study.run.max_steps in (1000, 4000)
            model = study.run.model
            assert (model["hidden_size"], model["state_size"], study.run.batch_size) == (256, 128, 64)
            continue
        assert isinstance(study.run, ScriptRun)
        flags = study.run.flags
        assert flags["use_cpu"] is False and flags["bf16"] is True
        assert twin.run.flags["use_cpu"] is True and twin.run.flags["bf16"] is False
        if study.run.script == "train_language_model":
            assert flags["tokenizer"] == "byte" and 512 <= flags["n_embd"] <= 768 and 8 <= flags["n_layer"] <= 12
            assert flags["model_type"] != "llama" or flags["n_head"] == 4 * flags["n_kv_head"]
        else:
            assert 192 <= flags["hidden_size"] <= 384 and flags["max_steps"] >= 2000
    assert {r["study"] for r in gpu_studies.plan_rows()} == set(GPU)


def test_the_standard_library_corpus_splits_by_file_the_same_every_time():
    corpus = _data.stdlib_corpus()
    paths = {split: [path for path, _ in files] for split, files in corpus.items()}
    assert all(paths.values()) and sum(map(len, paths.values())) == len(set().union(*paths.values()))  # disjoint
    assert all(_data.stdlib_split(path) == split for split, names in paths.items() for path in names)
    assert not any("site-packages" in path for names in paths.values() for path in names)
    assert "json/encoder.py" in paths["train"] and "json/decoder.py" in paths["test"]
    total = sum(map(len, paths.values()))
    assert all(0.01 < len(paths[split]) / total < 0.06 for split in ("validation", "test"))  # 3% of the files each
    # The same in another process (a hash that changed with PYTHONHASHSEED would move files between splits).
    sample = sorted(paths["train"])[::50] + paths["validation"] + paths["test"]
    code = "import sys, _data; print([_data.stdlib_split(p) for p in sys.argv[1:]])"
    other = subprocess.run([sys.executable, "-c", code, *sample], cwd=ROOT / "experiments", capture_output=True,
                           text=True, check=True).stdout  # fmt: skip
    assert other.strip() == str([_data.stdlib_split(path) for path in sample])
    small = _data.stdlib_corpus(max_bytes=5000)
    for files in small.values():
        assert files and sum(len(text.encode()) for _, text in files) < 2 * 5000
        assert [path for path, _ in files] == sorted(path for path, _ in files)
