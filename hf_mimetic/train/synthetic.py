"""Train a small causal LM on a synthetic task (copy, stack copy, MQAR, sort) with the HF Trainer.

The one training path of the synthetic tasks: ``scripts/train_synthetic.py`` (CLI), the length-generalisation study
(``experiments/length_generalization.py``) and the Space call :func:`train_synthetic`. Arguments are dataclasses, as
in transformers' examples, so ``HfArgumentParser`` turns them into flags; every mimetic option is a flag
(:data:`~hf_mimetic.train.arguments.MimeticArguments`) and any registered causal-LM family is a ``--model_type``.

Example:
    >>> from transformers import TrainingArguments
    >>> result = train_synthetic(SyntheticModelArguments(mimetic_init=True), SyntheticTaskArguments(),
    ...                          MimeticArguments(), TrainingArguments("out", max_steps=50, report_to=[]))
    >>> result["eval"][64]["tf_token_accuracy"]
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedModel, TrainerCallback, TrainingArguments
from transformers.trainer_callback import PrinterCallback

from ..tasks import TASKS, TaskCollator, TaskConfig, make_eval_dataset, make_train_dataset
from ..tasks.metrics import argmax_logits, compute_metrics, evaluate_lengths
from .arguments import MimeticArguments
from .common import MimeticTrainer, resolve_checkpoint, run_recipe
from .progress import Progress, ProgressReport
from .sizes import LM_CONFIGS, LMSizes, lm_types

CAUSAL_LM = "AutoModelForCausalLM"

__all__ = [
    "MimeticArguments", "SyntheticModelArguments", "SyntheticTaskArguments", "build_model", "model_config",
    "study_training_arguments", "train_synthetic",
]  # fmt: skip


@dataclass
class SyntheticModelArguments:
    """Architecture and size. Defaults: a 4-layer Mamba 2 that trains in minutes on 2 CPU cores."""

    model_type: str = field(default="mamba2", metadata={"help": f"a registered causal LM type: {lm_types(CAUSAL_LM)}"})
    hidden_size: int = field(default=128, metadata={"help": "model width d"})
    num_layers: int = field(default=4, metadata={"help": "number of blocks"})
    state_size: int = field(default=32, metadata={"help": "SSM state size N (SSM models)"})
    head_dim: int = field(default=64, metadata={"help": "attention head dim, or Mamba 2 SSM head dim"})
    expand: int = field(default=2, metadata={"help": "SSM inner width = expand × hidden_size"})
    num_kv_heads: Optional[int] = field(default=None, metadata={"help": "key/value heads (grouped-query attention)"})
    # transformers' Mamba 2 torch path pads every sequence to a multiple of chunk_size and is quadratic within a
    # chunk: its default of 256 makes a step on ~100-token sequences ~6× slower than 32 (measured: 1.5 s vs 0.26 s).
    chunk_size: int = field(default=32, metadata={"help": "Mamba 2 SSD chunk size (speed only; same results)"})
    mimetic_init: bool = field(default=False, metadata={"help": "initialise with hf_mimetic's mimetic init"})

    def __post_init__(self) -> None:
        if self.model_type not in lm_types(CAUSAL_LM):
            raise ValueError(f"model_type must be one of {lm_types(CAUSAL_LM)}, got {self.model_type!r}")
        for name in ("hidden_size", "num_layers", "state_size", "head_dim", "expand", "chunk_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        self.sizes(vocab_size=2, max_positions=2)  # raises for sizes the family cannot build

    def sizes(self, vocab_size: int, max_positions: int) -> dict[str, Any]:
        """The family's config kwargs for these sizes (``ValueError`` if they do not fit together)."""
        sizes = LMSizes(
            hidden_size=self.hidden_size, num_layers=self.num_layers, vocab_size=vocab_size, max_positions=max_positions,
            head_dim=self.head_dim, state_size=self.state_size, expand=self.expand, chunk_size=self.chunk_size,
            num_kv_heads=self.num_kv_heads,
        )  # fmt: skip
        return LM_CONFIGS[self.model_type](sizes)


@dataclass
class SyntheticTaskArguments:
    """Task, lengths and evaluation. Train on lengths in [train_min_len, train_max_len]; evaluate at eval_lengths."""

    task: str = field(default="copy", metadata={"help": f"one of {list(TASKS)}"})
    vocab_size: int = field(default=16, metadata={"help": "number of data tokens (special tokens come after)"})
    train_min_len: int = field(default=1)
    train_max_len: int = field(default=32, metadata={"help": "L; eval_lengths default to L, 2L, 4L"})
    eval_lengths: Optional[list[int]] = field(default=None, metadata={"help": "lengths to evaluate at"})
    eval_examples: int = field(default=128, metadata={"help": "examples per eval length"})
    periodic_eval_examples: Optional[int] = field(
        default=None, metadata={"help": "examples per eval length in the evaluations during training (default: eval_examples)"}
    )
    greedy_eval: Optional[bool] = field(default=None, metadata={"help": "also decode greedily (default: not for MQAR)"})
    task_seed: int = field(default=0, metadata={"help": "seed of the task generator (eval sets are fixed by it)"})

    def __post_init__(self) -> None:
        for name in ("eval_examples", "periodic_eval_examples"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    def task_config(self) -> TaskConfig:
        return TaskConfig(task=self.task, vocab_size=self.vocab_size, min_len=self.train_min_len, max_len=self.train_max_len, seed=self.task_seed)

    def lengths(self) -> list[int]:
        return list(self.eval_lengths or [self.train_max_len, 2 * self.train_max_len, 4 * self.train_max_len])


def model_config(args: SyntheticModelArguments, vocab_size: int, max_positions: int):
    """The transformers config for ``args`` (vocab and positions sized for the task)."""
    return AutoConfig.for_model(args.model_type, **args.sizes(vocab_size, max_positions))


def build_model(
    args: SyntheticModelArguments, task: TaskConfig, max_length: int, mimetic: dict[str, Any], checkpoint: Optional[str] = None
) -> PreTrainedModel:
    """The causal LM for ``task``, with mimetic init if asked (uses the global torch seed); a run that resumes
    ``checkpoint`` takes its recipe."""
    config = model_config(args, task.total_vocab_size, task.sequence_length(max_length))
    mimetic_init, recipe = run_recipe(args.mimetic_init, mimetic, checkpoint)
    if not mimetic_init:
        return AutoModelForCausalLM.from_config(config)
    return AutoModelForCausalLM.from_config(config, mimetic_init=True, mimetic_config=recipe)


def study_training_arguments(
    output_dir: str,
    max_steps: int,
    learning_rate: float,
    seed: int,
    batch_size: int = 32,
    eval_steps: int | None = None,
    use_cpu: bool = True,
) -> TrainingArguments:
    """The length-generalisation study's recipe (also the demo's): AdamW without weight decay, cosine schedule with
    5% warmup, no checkpoints, on the CPU unless ``use_cpu=False``; evaluation (and logging) every ``eval_steps``
    steps, or never if ``None``."""
    evaluation = {"eval_strategy": "no", "logging_strategy": "no"}
    if eval_steps is not None:
        evaluation = {"eval_strategy": "steps", "eval_steps": eval_steps, "logging_steps": eval_steps}
    return TrainingArguments(
        output_dir=output_dir, max_steps=max_steps, per_device_train_batch_size=batch_size, learning_rate=learning_rate,
        weight_decay=0.0, warmup_steps=max(1, max_steps // 20), lr_scheduler_type="cosine", per_device_eval_batch_size=64,
        save_strategy="no", report_to=[], seed=seed, disable_tqdm=True, use_cpu=use_cpu, dataloader_pin_memory=False,
        **evaluation,
    )  # fmt: skip


class EvalLogger(TrainerCallback):
    """Keeps every evaluation (step, metrics) so the caller can plot learning curves."""

    def __init__(self) -> None:
        self.history: list[dict[str, Any]] = []

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        self.history.append({"step": state.global_step, **(metrics or {})})


def train_synthetic(
    model_args: SyntheticModelArguments,
    task_args: SyntheticTaskArguments,
    mimetic_args: Any,
    training_args: TrainingArguments,
    callbacks: tuple[TrainerCallback, ...] = (),
    progress: Optional[Callable[[Progress], None]] = None,
) -> dict[str, Any]:
    """Train with the Trainer, then evaluate at every eval length. Returns (and writes, on the main process,
    ``all_results.json`` in ``output_dir``) ``{"eval": {length: metrics}, "history": [...], "train": {...}}``.

    During training the Trainer evaluates teacher-forced accuracy on fixed eval sets at each length (set
    ``eval_strategy``/``eval_steps``; ``periodic_eval_examples`` per length); at the end,
    :func:`hf_mimetic.tasks.metrics.evaluate_lengths` adds greedy decoding on ``eval_examples`` per length.

    ``progress`` is called with a :class:`~hf_mimetic.train.progress.Progress` at the first step and about every 10%
    of the steps (for example ``lambda p: print(progress_line(p))``); it replaces the log dicts the Trainer prints
    when its tqdm bar is off.
    """
    task = task_args.task_config()
    lengths = task_args.lengths()
    for length in lengths:
        task.validate_length(length)
    checkpoint = resolve_checkpoint(training_args.resume_from_checkpoint, training_args.output_dir)
    torch.manual_seed(training_args.seed)  # the model's init depends only on --seed
    model = build_model(model_args, task, max(lengths), mimetic_args.overrides(), checkpoint)
    periodic_examples = task_args.periodic_eval_examples or task_args.eval_examples
    eval_sets = {f"L{n}": make_eval_dataset(task, n, periodic_examples) for n in lengths}
    logger = EvalLogger()
    trainer = MimeticTrainer(
        model=model,
        args=training_args,
        train_dataset=make_train_dataset(task),
        eval_dataset=eval_sets if training_args.eval_strategy != "no" else None,
        data_collator=TaskCollator.from_config(task),
        compute_metrics=compute_metrics,
        preprocess_logits_for_metrics=argmax_logits,
        callbacks=[logger, *callbacks],
    )
    if progress is not None:
        trainer.add_callback(ProgressReport(progress))
        trainer.remove_callback(PrinterCallback)  # its dicts would repeat the progress lines
    start = time.perf_counter()
    train_output = trainer.train(resume_from_checkpoint=checkpoint)
    train_seconds = time.perf_counter() - start
    trainer.save_model()  # weights and config.json, with the mimetic recipe
    model.eval()
    final = evaluate_lengths(model, task, lengths, num_examples=task_args.eval_examples, greedy=task_args.greedy_eval)
    result = {
        "eval": final,
        "history": logger.history,
        "train": {**train_output.metrics, "train_seconds": train_seconds},
        "config": {
            "model": dataclasses.asdict(model_args),
            "task": dataclasses.asdict(task_args),
            "mimetic_config": getattr(model.config, "mimetic_config", None),
            "learning_rate": training_args.learning_rate,
            "seed": training_args.seed,
            "max_steps": training_args.max_steps,
        },
    }
    if trainer.is_world_process_zero():
        flat = {f"L{n}_{k}": v for n, metrics in final.items() for k, v in metrics.items()}
        trainer.save_metrics("all", {**flat, **result["train"]}, combined=False)
        with open(os.path.join(training_args.output_dir, "results.json"), "w") as handle:
            json.dump(result, handle, indent=2)
        trainer.create_model_card(tasks="text-generation", tags=["synthetic-tasks", model_args.model_type])
    return result
