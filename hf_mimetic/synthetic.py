"""Train a small causal LM on a synthetic task (copy, stack copy, MQAR, sort) with the HF Trainer.

The one training path of the project: ``scripts/train_synthetic.py`` (CLI), ``experiments/length_generalization.py``
(the study) and the Space call :func:`train_synthetic`. Arguments are dataclasses, as in transformers' examples, so
``HfArgumentParser`` turns them into flags; :data:`MimeticArguments` mirrors every field of
:class:`~hf_mimetic.MimeticConfig` (unset flags keep the preset).

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
from typing import Any, Optional

import torch
from transformers import (
    AutoModelForCausalLM,
    GPT2Config,
    Mamba2Config,
    MambaConfig,
    PreTrainedModel,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from .config import MimeticConfig
from .metrics import argmax_logits, compute_metrics, evaluate_lengths
from .tasks import TASKS, TaskCollator, TaskConfig, make_eval_dataset, make_train_dataset

MODEL_TYPES = ("mamba", "mamba2", "gpt2")


@dataclass
class SyntheticModelArguments:
    """Architecture and size. Defaults: a 4-layer Mamba 2 that trains in minutes on 2 CPU cores."""

    model_type: str = field(default="mamba2", metadata={"help": f"one of {MODEL_TYPES}"})
    hidden_size: int = field(default=128, metadata={"help": "model width d"})
    num_layers: int = field(default=4, metadata={"help": "number of blocks"})
    state_size: int = field(default=32, metadata={"help": "SSM state size N (mamba, mamba2)"})
    head_dim: int = field(default=64, metadata={"help": "Mamba 2 SSM head dim, or GPT-2 attention head dim"})
    expand: int = field(default=2, metadata={"help": "Mamba inner width = expand × hidden_size"})
    # transformers' Mamba 2 torch path pads every sequence to a multiple of chunk_size and is quadratic within a
    # chunk: its default of 256 makes a step on ~100-token sequences ~6× slower than 32 (measured: 1.5 s vs 0.26 s).
    chunk_size: int = field(default=32, metadata={"help": "Mamba 2 SSD chunk size (speed only; same results)"})
    mimetic_init: bool = field(default=False, metadata={"help": "initialise with hf_mimetic's mimetic init"})

    def __post_init__(self) -> None:
        if self.model_type not in MODEL_TYPES:
            raise ValueError(f"model_type must be one of {MODEL_TYPES}, got {self.model_type!r}")
        # Mamba 2 splits its inner width (expand × d) into SSM heads, GPT-2 its width d into attention heads.
        width = {"mamba2": self.expand * self.hidden_size, "gpt2": self.hidden_size}.get(self.model_type)
        if width is not None and width % self.head_dim:
            raise ValueError(f"head_dim {self.head_dim} must divide the {self.model_type} head width {width}")


@dataclass
class SyntheticTaskArguments:
    """Task, lengths and evaluation. Train on lengths in [train_min_len, train_max_len]; evaluate at eval_lengths."""

    task: str = field(default="copy", metadata={"help": f"one of {TASKS}"})
    vocab_size: int = field(default=16, metadata={"help": "number of data tokens (special tokens come after)"})
    train_min_len: int = field(default=1)
    train_max_len: int = field(default=32, metadata={"help": "L; eval_lengths default to L, 2L, 4L"})
    eval_lengths: Optional[list[int]] = field(default=None, metadata={"help": "lengths to evaluate at"})
    eval_examples: int = field(default=128, metadata={"help": "examples per eval length"})
    greedy_eval: Optional[bool] = field(default=None, metadata={"help": "also decode greedily (default: not for MQAR)"})
    task_seed: int = field(default=0, metadata={"help": "seed of the task generator (eval sets are fixed by it)"})

    def task_config(self) -> TaskConfig:
        return TaskConfig(task=self.task, vocab_size=self.vocab_size, min_len=self.train_min_len, max_len=self.train_max_len, seed=self.task_seed)

    def lengths(self) -> list[int]:
        return list(self.eval_lengths or [self.train_max_len, 2 * self.train_max_len, 4 * self.train_max_len])


# MimeticConfig's annotations (strings, from __future__ annotations) → optional flag types.
_FLAG_TYPES = {
    "bool": Optional[bool], "int": Optional[int], "float": Optional[float], "str": Optional[str],
    "float | None": Optional[float], "list[int] | None": Optional[list[int]],
}  # fmt: skip


def _mimetic_arguments_class() -> type:
    """A dataclass with every MimeticConfig field as an optional flag (``None``: keep the preset's value)."""
    fields = [
        (f.name, _FLAG_TYPES[f.type], field(default=None, metadata={"help": f"mimetic_config[{f.name!r}] (default: the preset's)"}))
        for f in dataclasses.fields(MimeticConfig)
    ]
    cls = dataclasses.make_dataclass("MimeticArguments", fields)
    cls.__doc__ = "Every mimetic option as a flag; only the flags you set override the family's preset."
    cls.overrides = lambda self: {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
    return cls


MimeticArguments = _mimetic_arguments_class()


def model_config(args: SyntheticModelArguments, vocab_size: int, max_positions: int):
    """The transformers config for ``args`` (vocab and positions sized for the task)."""
    if args.model_type == "mamba":
        return MambaConfig(hidden_size=args.hidden_size, num_hidden_layers=args.num_layers, state_size=args.state_size, expand=args.expand, vocab_size=vocab_size, pad_token_id=vocab_size - 1)
    if args.model_type == "mamba2":
        num_heads = args.expand * args.hidden_size // args.head_dim
        return Mamba2Config(
            hidden_size=args.hidden_size, num_hidden_layers=args.num_layers, state_size=args.state_size, expand=args.expand,
            head_dim=args.head_dim, num_heads=num_heads, n_groups=1, vocab_size=vocab_size, pad_token_id=vocab_size - 1,
            chunk_size=args.chunk_size,
        )  # fmt: skip
    return GPT2Config(
        n_embd=args.hidden_size, n_layer=args.num_layers, n_head=args.hidden_size // args.head_dim, vocab_size=vocab_size,
        n_positions=max_positions, bos_token_id=vocab_size - 1, eos_token_id=vocab_size - 1,
    )  # fmt: skip


def build_model(args: SyntheticModelArguments, task: TaskConfig, max_length: int, mimetic: dict[str, Any]) -> PreTrainedModel:
    """The causal LM for ``task``, with mimetic init if asked (uses the global torch seed)."""
    config = model_config(args, task.total_vocab_size, task.sequence_length(max_length))
    if not args.mimetic_init:
        if mimetic:
            raise ValueError(f"mimetic options {sorted(mimetic)} were given without --mimetic_init")
        return AutoModelForCausalLM.from_config(config)
    return AutoModelForCausalLM.from_config(config, mimetic_init=True, mimetic_config=mimetic)


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
) -> dict[str, Any]:
    """Train with the Trainer, then evaluate at every eval length. Returns (and writes, on the main process,
    ``all_results.json`` in ``output_dir``) ``{"eval": {length: metrics}, "history": [...], "train": {...}}``.

    During training the Trainer evaluates teacher-forced accuracy on fixed eval sets at each length (set
    ``eval_strategy``/``eval_steps``); at the end, :func:`hf_mimetic.metrics.evaluate_lengths` adds greedy decoding.
    """
    task = task_args.task_config()
    lengths = task_args.lengths()
    for length in lengths:
        task.validate_length(length)
    torch.manual_seed(training_args.seed)  # the model's init depends only on --seed
    model = build_model(model_args, task, max(lengths), mimetic_args.overrides())
    eval_sets = {f"L{n}": make_eval_dataset(task, n, task_args.eval_examples) for n in lengths}
    logger = EvalLogger()
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=make_train_dataset(task),
        eval_dataset=eval_sets if training_args.eval_strategy != "no" else None,
        data_collator=TaskCollator.from_config(task),
        compute_metrics=compute_metrics,
        preprocess_logits_for_metrics=argmax_logits,
        callbacks=[logger, *callbacks],
    )
    start = time.perf_counter()
    train_output = trainer.train()
    train_seconds = time.perf_counter() - start
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
    return result
