"""Train a default-initialised and a mimetic-initialised model side by side, in two threads of this process.

The training is :func:`hf_mimetic.train.synthetic.train_synthetic`, the library's one training path, with the study's
recipe (:func:`~hf_mimetic.train.synthetic.study_training_arguments`). This module runs it twice, streams its evaluations
through a Trainer callback and stops both runs on request. The app (``app.py``) and the benchmark
(``benchmarks/bench_space.py``) drive it.
"""

from __future__ import annotations

import math
import os
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import PreTrainedModel, TrainerCallback, TrainingArguments

import hf_mimetic  # noqa: F401  (installs the mimetic_init hook and the fast Mamba 1 scan)
from hf_mimetic.tasks import TaskConfig
from hf_mimetic.train.synthetic import (
    MimeticArguments,
    SyntheticModelArguments,
    SyntheticTaskArguments,
    study_training_arguments,
    train_synthetic,
)

INITS = ("default", "mimetic")

#: The model of the length-generalisation study (docs/RESULTS.md, "Mamba 2") per architecture.
STUDY_MODELS: dict[str, dict[str, int]] = {
    "mamba2": {"hidden_size": 256, "num_layers": 2, "state_size": 128, "head_dim": 64},
    "mamba": {"hidden_size": 256, "num_layers": 2, "state_size": 32},
}


@dataclass(frozen=True)
class TaskLimits:
    """A task's vocabulary (as in the study) and the training lengths L the demo allows for it."""

    vocab_size: int
    min_length: int
    max_length: int


# Copy: L ≤ 64 keeps 4L = 256 (a 514-token eval sequence) affordable on 2 vCPUs. MQAR: 4L key-value pairs need
# 4L distinct keys among vocab_size / 2, so L ≤ 16 with the study's vocabulary of 128.
TASK_LIMITS: dict[str, TaskLimits] = {
    "copy": TaskLimits(vocab_size=16, min_length=2, max_length=64),
    "stack_copy": TaskLimits(vocab_size=16, min_length=2, max_length=64),
    "mqar": TaskLimits(vocab_size=128, min_length=2, max_length=16),
}
LEARNING_RATE_RANGE = (1e-4, 3e-2)
STEPS_RANGE = (10, 300)


def _check_number(name: str, value: Any, low: float, high: float, whole: bool = False) -> None:
    """Raise ValueError, naming ``name`` and the valid range, unless ``low <= value <= high``."""
    kind = "a whole number" if whole else "a number"
    if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)) or not math.isfinite(value):
        # ValueError, not TypeError: the app shows every ValueError to the visitor.
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} = {value:g} is out of range: valid range is {low:g} to {high:g}")


@dataclass(frozen=True)
class RunSettings:
    """What a visitor chooses. Defaults: the study's copy regime and schedule, each init at its tuned learning rate."""

    task: str = "copy"
    model_type: str = "mamba2"
    train_length: int = 50
    lr_default: float = 3e-3
    lr_mimetic: float = 1e-2
    max_steps: int = 200
    eval_4x: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.task not in TASK_LIMITS:
            raise ValueError(f"task {self.task!r} is not available: choose one of {sorted(TASK_LIMITS)}")
        if self.model_type not in STUDY_MODELS:
            raise ValueError(f"architecture {self.model_type!r} is not available: choose one of {sorted(STUDY_MODELS)}")
        limits = TASK_LIMITS[self.task]
        _check_number(f"training length for {self.task}", self.train_length, limits.min_length, limits.max_length, True)
        _check_number("learning rate (default init)", self.lr_default, *LEARNING_RATE_RANGE)
        _check_number("learning rate (mimetic init)", self.lr_mimetic, *LEARNING_RATE_RANGE)
        _check_number("training steps", self.max_steps, *STEPS_RANGE, whole=True)
        if not isinstance(self.eval_4x, bool):
            raise ValueError(f"evaluate at 4× must be true or false, got {self.eval_4x!r}")

    @property
    def eval_lengths(self) -> list[int]:
        """L and 2L, and 4L if asked."""
        factors = (1, 2, 4) if self.eval_4x else (1, 2)
        return [f * self.train_length for f in factors]

    @property
    def eval_every(self) -> int:
        """Twenty evaluations per run: every 10 steps by default (about 12 s), at ~15% of the time with 4L."""
        return max(1, self.max_steps // 20)

    def learning_rate(self, init: str) -> float:
        return self.lr_mimetic if init == "mimetic" else self.lr_default

    def task_config(self) -> TaskConfig:
        return self.task_arguments(eval_examples=1).task_config()

    def task_arguments(self, eval_examples: int) -> SyntheticTaskArguments:
        return SyntheticTaskArguments(
            task=self.task, vocab_size=TASK_LIMITS[self.task].vocab_size, train_max_len=self.train_length,
            eval_lengths=self.eval_lengths, eval_examples=eval_examples, greedy_eval=False, task_seed=self.seed,
        )  # fmt: skip


@dataclass
class Evaluation:
    """Teacher-forced token accuracy of one init at one step and eval length."""

    init: str
    step: int
    length: int
    accuracy: float


class _RngTurn:
    """One thread's turn at torch's process-wide RNG, released once (by the first training step, or at exit)."""

    def __init__(self, lock: threading.Lock) -> None:
        self.lock, self.held = lock, False

    def acquire(self) -> None:
        self.lock.acquire()
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self.lock.release()


class _Stream(TrainerCallback):
    """Reports one Trainer's progress to its :class:`SideBySideRun` and stops it when the run is stopped."""

    def __init__(self, run: SideBySideRun, init: str, rng_turn: _RngTurn) -> None:
        self.run, self.init, self.rng_turn = run, init, rng_turn

    def on_step_begin(self, args, state, control, **kwargs):
        self.rng_turn.release()  # the model is built and the data iterator made: the RNG is no longer needed

    def on_step_end(self, args, state, control, **kwargs):
        self.run._report_step(self.init, state.global_step)
        if self.run.stop_event.is_set():
            control.should_training_stop = True

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        for key, value in (metrics or {}).items():
            # The Trainer evaluates each eval set on its own, with keys like eval_L100_token_accuracy.
            if key.startswith("eval_L") and key.endswith("_token_accuracy"):
                length = int(key[len("eval_L") : -len("_token_accuracy")])
                self.run._report(Evaluation(self.init, state.global_step, length, float(value)))

    def on_train_end(self, args, state, control, model=None, **kwargs):
        self.run.models[self.init] = model


@dataclass
class SideBySideRun:
    """Both inits of ``settings``, each trained by ``train_synthetic`` in its own thread.

    ``model`` overrides the study's model shape (tests use tiny ones); ``eval_examples`` examples per eval length.
    Call :meth:`start`, then read :meth:`evaluations` and :attr:`steps` while :meth:`is_alive`; :meth:`stop` asks
    both Trainers to stop after their current step, :meth:`join` waits for the threads.
    """

    settings: RunSettings
    model: Mapping[str, Any] | None = None
    eval_examples: int = 16
    stop_event: threading.Event = field(default_factory=threading.Event)
    steps: dict[str, int] = field(default_factory=lambda: dict.fromkeys(INITS, 0))
    models: dict[str, PreTrainedModel] = field(default_factory=dict)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: dict[str, Exception] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._evaluations: list[Evaluation] = []
        self._lock = threading.Lock()
        self.updated = threading.Event()
        # torch's global RNG is process-wide: train_synthetic seeds it and builds the model from it. One thread at
        # a time may use it, from the seed until its first training step, so each init depends only on the seed.
        self._rng = threading.Lock()
        self._output_dirs = {init: tempfile.TemporaryDirectory(prefix=f"space-{init}-") for init in INITS}
        self._threads: list[threading.Thread] = []
        self.started_at: float | None = None

    # ------------------------------------------------------------------ control
    def start(self) -> None:
        # One core per Trainer. torch's intra-op thread count is process-wide; on 2 cores two Trainers with one
        # thread each took 1.14 s per step of the study's model, with two each (4 threads on 2 cores) 1.23–1.30 s.
        torch.set_num_threads(max(1, (os.cpu_count() or 2) // len(INITS)))
        self.started_at = time.perf_counter()
        # Making TrainingArguments resets accelerate's process-wide AcceleratorState, which a running Trainer reads
        # at every step: make both here, before either Trainer exists.
        training_args = {init: self._training_arguments(init) for init in INITS}
        self._threads = [
            threading.Thread(
                target=self._train, args=(init, training_args[init]), name=f"space-train-{init}", daemon=True
            )
            for init in INITS
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Ask both Trainers to stop after their current step (they then run their final evaluation)."""
        self.stop_event.set()

    def join(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def is_alive(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    @property
    def elapsed(self) -> float:
        return 0.0 if self.started_at is None else time.perf_counter() - self.started_at

    def evaluations(self) -> list[Evaluation]:
        """Every evaluation so far, in arrival order."""
        with self._lock:
            return list(self._evaluations)

    # ----------------------------------------------------------- worker threads
    def _training_arguments(self, init: str) -> TrainingArguments:
        settings = self.settings
        return study_training_arguments(
            self._output_dirs[init].name, settings.max_steps, settings.learning_rate(init), settings.seed,
            eval_steps=settings.eval_every,
        )  # fmt: skip

    def _train(self, init: str, training_args: TrainingArguments) -> None:
        model_args = SyntheticModelArguments(
            model_type=self.settings.model_type,
            **(self.model or STUDY_MODELS[self.settings.model_type]),
            mimetic_init=init == "mimetic",
        )
        rng_turn = _RngTurn(self._rng)
        rng_turn.acquire()
        try:
            result = train_synthetic(
                model_args,
                self.settings.task_arguments(self.eval_examples),
                MimeticArguments(),
                training_args,
                callbacks=(_Stream(self, init, rng_turn),),
            )
            self.results[init] = result
            # The final evaluation covers a step the periodic ones may have skipped (a stop, or steps % eval_every).
            step = self.steps[init]
            if not any(e.init == init and e.step == step for e in self.evaluations()):
                for length, metrics in result["eval"].items():
                    self._report(Evaluation(init, step, int(length), metrics["tf_token_accuracy"]))
        except Exception as error:  # noqa: BLE001  (shown to the visitor by the app; the other init keeps training)
            self.errors[init] = error
        finally:
            rng_turn.release()
            self._output_dirs[init].cleanup()
            self.updated.set()

    def _report_step(self, init: str, step: int) -> None:
        self.steps[init] = step
        self.updated.set()

    def _report(self, evaluation: Evaluation) -> None:
        with self._lock:
            self._evaluations.append(evaluation)
        self.updated.set()
