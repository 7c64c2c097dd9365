"""The copy demo (``hf-mimetic``, ``hf-mimetic demo``): a default and a mimetic Mamba 2 trained side by side on copy,
one process each, with a progress line about every 10%, a table of accuracy per length and a picture.

The demo is one seed of the regime where the length-generalisation study (docs/RESULTS.md, "Mamba 2") found a robust
difference over 3 seeds, each init at its own best learning rate from the same sweep.

Example:
    >>> print(copy_experiment(steps=200, picture=Path("demo.png")))  # about 5 minutes on 2 CPU cores
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import tempfile
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any, Optional

import torch

from .train.progress import Progress, combined_line, format_duration, note_kernel_fallbacks, token_accuracies

# The study's regime (experiments/length_generalization.py, study "copy-mamba2"): thesis-like Mamba 2, copy, L = 50,
# 200 steps, each init at its best learning rate of the sweep {3e-4, 1e-3, 3e-3, 1e-2}. The final table evaluates
# 64 examples per length; the curves, ten evaluations during training, 16 (they cost little: see the README).
COPY_MODEL = {"model_type": "mamba2", "hidden_size": 256, "num_layers": 2, "state_size": 128, "head_dim": 64}
COPY_TASK = {"task": "copy", "vocab_size": 16, "train_max_len": 50, "eval_examples": 64, "periodic_eval_examples": 16}
COPY_STEPS = 200
COPY_LR = {"default": 3e-3, "mimetic": 1e-2}
PICTURE = "hf_mimetic_demo.png"
COLORS = {"default": "tab:blue", "mimetic": "tab:orange"}

# Set in each worker process by _start_worker: where its progress and the kernel note go.
_events: Optional[Any] = None


def _start_worker(events: Any, threads: int) -> None:
    """A worker's setup: its share of the cores, its queue, and quiet output (the main process prints)."""
    from transformers.utils import logging as hf_logging

    global _events
    _events = events
    # The demo trains on the CPU. With DeepSpeed installed (the tests' extra), accelerate imports it when the Trainer
    # starts, and DeepSpeed warns that it found no GPU unless told its accelerator.
    os.environ.setdefault("DS_ACCELERATOR", "cpu")
    torch.set_num_threads(threads)
    hf_logging.disable_progress_bar()  # "Writing model shards" of a model saved to a temporary folder
    note_kernel_fallbacks(lambda text: events.put(("note", text)))


def _train_copy(name: str, learning_rate: float, seed: int, steps: int, model: Mapping, task: Mapping) -> dict:
    from .train import MimeticArguments
    from .train.synthetic import (
        SyntheticModelArguments,
        SyntheticTaskArguments,
        study_training_arguments,
        train_synthetic,
    )

    def report(progress: Progress) -> None:
        if _events is not None:
            _events.put(("step", name, progress))

    with tempfile.TemporaryDirectory() as output_dir:
        args = study_training_arguments(output_dir, steps, learning_rate, seed, eval_steps=max(1, steps // 10))
        model_args = SyntheticModelArguments(**model, mimetic_init=name == "mimetic")
        result = train_synthetic(model_args, SyntheticTaskArguments(**task), MimeticArguments(), args, progress=report)
    return {"eval": result["eval"], "history": result["history"], "train_seconds": result["train"]["train_seconds"]}


def _watch(events: Any, futures: Mapping[str, Future], echo: Callable[[str], None], started: float) -> None:
    """Print the workers' progress, side by side, until both are done: a line at the first step of either, then
    each time the slower one passes another tenth of its steps; the kernel note once."""
    latest: dict[str, Optional[Progress]] = dict.fromkeys(futures)
    shown, noted, announced = -1, False, False
    finished = False
    while True:
        try:
            event = events.get(timeout=0.1 if finished else 0.5)
        except queue.Empty:
            if finished:
                return
            finished = all(future.done() for future in futures.values())  # then drain what is left
            continue
        if event[0] == "note":
            if not noted:
                echo(event[1])
            noted = True
            continue
        _, name, progress = event
        latest[name] = progress
        tenth = min(0 if p is None else 10 * p.step // p.max_steps for p in latest.values())
        if tenth > shown:
            echo(combined_line(latest, time.perf_counter() - started))
            shown = tenth
        if tenth == 10 and not announced:
            echo("Both trained; the final evaluation (teacher-forced and greedy decoding at each length) follows.")
            announced = True


def copy_experiment(
    seed: int = 0,
    steps: int = COPY_STEPS,
    picture: Optional[Path] = Path(PICTURE),
    model: Mapping[str, Any] = COPY_MODEL,
    task: Mapping[str, Any] = COPY_TASK,
    echo: Callable[[str], None] = lambda line: print(line, flush=True),
) -> str:
    """Train the default and the mimetic Mamba 2 side by side (one process each), printing progress through
    ``echo``; return the table of accuracy per length and where the picture went (``picture=None``: none).

    ``model`` and ``task`` are :class:`~hf_mimetic.train.synthetic.SyntheticModelArguments` and
    :class:`~hf_mimetic.train.synthetic.SyntheticTaskArguments` fields (tests shrink them)."""
    threads = max(1, (os.cpu_count() or 2) // 2)
    length = task["train_max_len"]
    lengths = ", ".join(str(f * length) for f in (1, 2, 4))
    echo(
        f"Copy task, Mamba 2: training a default and a mimetic model side by side (one process each, {threads} "
        f"thread{'s' * (threads > 1)} each) for {steps} steps, then evaluating at lengths {lengths}. "
        "A line about every 10%:"
    )
    started = time.perf_counter()
    context = multiprocessing.get_context()
    events = context.Queue()
    with ProcessPoolExecutor(2, mp_context=context, initializer=_start_worker, initargs=(events, threads)) as pool:
        futures = {
            name: pool.submit(_train_copy, name, COPY_LR[name], seed, steps, dict(model), dict(task))
            for name in COPY_LR
        }
        _watch(events, futures, echo, started)
        runs = {name: future.result() for name, future in futures.items()}
    table = copy_table(runs, seed, steps, model, task)
    done = f"Done in {format_duration(time.perf_counter() - started)}."
    if picture is None:
        return f"{table}\n\n{done}"
    return f"{table}\n\n{done} {write_picture(runs, Path(picture), seed, task)}"


def copy_table(
    runs: Mapping[str, dict], seed: int, steps: int, model: Mapping[str, Any], task: Mapping[str, Any]
) -> str:
    """The final accuracy per length of each init, as a markdown table."""
    lengths = sorted(runs["default"]["eval"])
    size = f"d={model['hidden_size']}, {model['num_layers']} layers, state {model['state_size']}, head dim {model['head_dim']}"
    lines = [
        f"Copy, Mamba 2 ({size}), trained on lengths 1..{task['train_max_len']} for {steps} steps, seed {seed}. "
        "Token accuracy, teacher-forced / greedy decoding:",
        "",
        "| init | " + " | ".join(f"L={n}" for n in lengths) + " |",
        "|---|" + "---:|" * len(lengths),
    ]
    for name, run in runs.items():
        per_length = run["eval"]
        cells = [
            f"{per_length[n]['tf_token_accuracy']:.3f} / {per_length[n]['greedy_token_accuracy']:.3f}" for n in lengths
        ]
        lines.append(f"| {name} (lr {COPY_LR[name]:g}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def curves(run: Mapping[str, Any]) -> dict[int, list[tuple[int, float]]]:
    """Per eval length, (step, teacher-forced token accuracy) of the evaluations during training.

    >>> curves({"history": [{"step": 20, "eval_L50_token_accuracy": 0.5}, {"step": 20, "loss": 2.0}]})
    {50: [(20, 0.5)]}
    """
    found: dict[int, list[tuple[int, float]]] = {}
    for entry in run["history"]:
        for length, accuracy in token_accuracies(entry).items():
            found.setdefault(length, []).append((entry["step"], accuracy))
    return found


def write_picture(runs: Mapping[str, dict], path: Path, seed: int, task: Mapping[str, Any]) -> str:
    """Draw both inits' accuracy over the training steps (per length) and against length (final), save it as a PNG
    at ``path`` and say where; without matplotlib, say so and draw nothing."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return "No picture: matplotlib is not installed (pip install matplotlib, or the package's [inspect] extra)."
    length = task["train_max_len"]
    styles = {length: "-", 2 * length: "--", 4 * length: ":"}
    figure = Figure(figsize=(11, 4.2), layout="constrained")
    over_steps, over_length = figure.subplots(1, 2, width_ratios=[1.6, 1])
    chance = 1 / task["vocab_size"]
    for name, run in runs.items():
        for n, points in sorted(curves(run).items()):
            steps, accuracy = zip(*points)
            over_steps.plot(
                steps, accuracy, styles.get(n, "-."), color=COLORS[name], label=f"{name}, {n // length}L = {n}"
            )
        lengths = sorted(run["eval"])
        for metric, style, what in (
            ("tf_token_accuracy", "o-", "teacher-forced"),
            ("greedy_token_accuracy", "s--", "greedy"),
        ):
            values = [run["eval"][n][metric] for n in lengths]
            over_length.plot(range(len(lengths)), values, style, color=COLORS[name], label=f"{name}, {what}")
    for axes in (over_steps, over_length):
        axes.axhline(chance, color="gray", linewidth=0.8, linestyle=":")
        axes.set_ylim(0, 1.02)
        axes.set_ylabel("token accuracy")
        axes.grid(alpha=0.3)
    over_steps.set_xlabel("training step")
    over_steps.set_title(
        f"During training (teacher-forced, {task.get('periodic_eval_examples') or task['eval_examples']} examples per length)"
    )
    over_steps.legend(fontsize=8, ncol=2, loc="upper left")
    lengths = sorted(runs["default"]["eval"])
    over_length.set_xticks(range(len(lengths)), [f"{n // length}L = {n}" for n in lengths])
    over_length.set_xlabel("sequence length (trained on 1..L)")
    over_length.set_title(f"After training ({task['eval_examples']} examples per length)")
    over_length.legend(fontsize=8)
    figure.suptitle(f"Copy, Mamba 2, seed {seed}: default vs mimetic init (dotted gray: chance)")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return f"Picture: {path.resolve()}"
