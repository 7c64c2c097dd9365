"""What a training run tells its user while it runs: a short progress line about every 10% of the steps, and one
line, once, for transformers' kernel fallback warnings.

* :class:`ProgressReport` — a Trainer callback that hands a :class:`Progress` (step, loss, seconds, accuracy per
  length when it evaluated) to a function at the first step and about every 10% of the steps; :func:`hf_mimetic.train.synthetic.train_synthetic` takes that
  function as ``progress=``. :func:`progress_line` formats one run, :func:`combined_line` several side by side.
* :func:`note_kernel_fallbacks` — on CPU, transformers warns once per CUDA kernel (Mamba's ``mamba_ssm`` and
  ``causal_conv1d`` functions) and process that it "is falling back to its reference PyTorch implementation". A
  side-by-side run showed ten of them. The filter it installs turns the first into :data:`KERNEL_NOTE` and drops the
  rest; every other message is left alone.

Example:
    >>> _ = note_kernel_fallbacks()  # in a script, before training
    >>> progress_line(Progress(step=20, max_steps=200, loss=2.31, seconds=24.0))
    'step 20/200 (10%), loss 2.310, 0:24 elapsed, about 3:36 left'
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional

from transformers import TrainerCallback

__all__ = [
    "FALLBACK_LOGGER", "KERNEL_NOTE", "KernelFallbackNote", "Progress", "ProgressReport", "combined_line",
    "format_duration", "note_kernel_fallbacks", "progress_line", "report_steps", "seconds_left", "token_accuracies",
]  # fmt: skip

#: The logger transformers (5.24 and 5.25) warns on, and the words every fallback warning contains.
FALLBACK_LOGGER = "transformers.integrations.hub_kernels"
FALLBACK_TEXT = "is falling back to its reference PyTorch implementation"
KERNEL_NOTE = (
    "The CUDA kernels (mamba-ssm, causal-conv1d) are not installed or not usable here, so transformers runs its "
    "PyTorch reference code: on CPU this is expected; on GPU install `.[cuda]`."
)


class KernelFallbackNote(logging.Filter):
    """Turns the first kernel fallback warning into :data:`KERNEL_NOTE` and drops the others.

    With ``note``, the first is dropped too and ``note(KERNEL_NOTE)`` is called instead (a worker process hands it
    to the process that prints, so that two workers still make one line). Other records pass unchanged.
    """

    def __init__(self, note: Optional[Callable[[str], None]] = None) -> None:
        super().__init__()
        self.note, self.noted = note, False

    def filter(self, record: logging.LogRecord) -> bool:
        if FALLBACK_TEXT not in record.getMessage():
            return True
        first, self.noted = not self.noted, True
        if not first:
            return False
        if self.note is not None:
            self.note(KERNEL_NOTE)
            return False
        record.msg, record.args = KERNEL_NOTE, ()
        return True


def note_kernel_fallbacks(note: Optional[Callable[[str], None]] = None) -> KernelFallbackNote:
    """Install (a second call replaces the first) the filter that collapses transformers' kernel
    fallback warnings into one line. Returns it."""
    logger = logging.getLogger(FALLBACK_LOGGER)
    for old in [f for f in logger.filters if isinstance(f, KernelFallbackNote)]:
        logger.removeFilter(old)
    installed = KernelFallbackNote(note)
    logger.addFilter(installed)
    return installed


@dataclass(frozen=True)
class Progress:
    """One run at one step: ``loss`` is the mean training loss since the previous report, ``seconds`` the time
    since training began (at ``start_step``: 0, or the step a resumed run started from), ``accuracy`` the
    teacher-forced token accuracy per eval length of an evaluation at this step, if there was one."""

    step: int
    max_steps: int
    loss: Optional[float]
    seconds: float
    start_step: int = 0
    accuracy: Mapping[int, float] = field(default_factory=dict)


def token_accuracies(metrics: Mapping[str, float]) -> dict[int, float]:
    """Teacher-forced token accuracy per eval length, from the Trainer's metrics of the synthetic tasks' eval sets
    (named ``L{length}``).

    >>> token_accuracies({"eval_L100_token_accuracy": 0.5, "eval_L100_exact_match": 0.0, "loss": 2.0})
    {100: 0.5}
    """
    prefix, suffix = "eval_L", "_token_accuracy"
    return {
        int(key[len(prefix) : -len(suffix)]): float(value)
        for key, value in metrics.items()
        if key.startswith(prefix) and key.endswith(suffix) and key[len(prefix) : -len(suffix)].isdigit()
    }


def report_steps(max_steps: int, parts: int = 10) -> set[int]:
    """Step 1 and the steps that end each of ``parts`` equal parts of ``max_steps``.

    >>> sorted(report_steps(25, 5))
    [1, 5, 10, 15, 20, 25]
    """
    return {1} | {math.ceil(k * max_steps / parts) for k in range(1, parts + 1)}


class ProgressReport(TrainerCallback):
    """Calls ``report(Progress)`` after the first step and about every 10% of the steps (on the main process), once
    the Trainer has logged, and evaluated if it evaluates at that step.

    It asks the Trainer to log at those steps, so the loss reported is the Trainer's own mean since its previous log.
    """

    def __init__(self, report: Callable[[Progress], None], parts: int = 10) -> None:
        self.report, self.parts = report, parts
        self.steps: set[int] = set()
        self.started, self.start_step = time.perf_counter(), 0
        self.pending: Optional[tuple[int, int, float]] = None  # step, max_steps, loss
        self.accuracy: dict[int, float] = {}

    def on_train_begin(self, args, state, control, **kwargs):
        self.steps, self.started = report_steps(state.max_steps, self.parts), time.perf_counter()
        self.start_step = state.global_step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step in self.steps:
            control.should_log = True  # the same step on every process: the loss is gathered across them

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_local_process_zero and state.global_step in self.steps and "loss" in (logs or {}):
            self.pending, self.accuracy = (state.global_step, state.max_steps, float(logs["loss"])), {}

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if self.pending is not None and self.pending[0] == state.global_step:
            self.accuracy.update(token_accuracies(metrics or {}))

    def on_step_begin(self, args, state, control, **kwargs):
        self._flush()

    def on_train_end(self, args, state, control, **kwargs):
        self._flush()

    def _flush(self) -> None:
        if self.pending is None:
            return
        (step, max_steps, loss), self.pending = self.pending, None
        seconds = time.perf_counter() - self.started
        self.report(Progress(step, max_steps, loss, seconds, self.start_step, dict(sorted(self.accuracy.items()))))


def format_duration(seconds: float) -> str:
    """``m:ss`` (``h:mm:ss`` from an hour).

    >>> format_duration(216.4), format_duration(3725)
    ('3:36', '1:02:05')
    """
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def seconds_left(progress: Progress) -> Optional[float]:
    """The training time left at the run's mean rate so far; ``None`` after one step (the first step also pays for
    warming up, and the estimate from it alone came out 2-3× too long)."""
    done = progress.step - progress.start_step
    return (
        None
        if done < 2 and progress.step < progress.max_steps
        else progress.seconds / done * (progress.max_steps - progress.step)
    )


def _left(seconds: Optional[float], what: str = "left") -> str:
    return "time left: estimating" if seconds is None else f"about {format_duration(seconds)} {what}"


def progress_line(progress: Progress) -> str:
    """One run: step, share done, loss, elapsed and left, and the accuracy per length if it was evaluated.

    >>> progress_line(Progress(100, 200, 1.5, 60.0, accuracy={50: 0.91, 100: 0.42}))
    'step 100/200 (50%), loss 1.500, 1:00 elapsed, about 1:00 left; token accuracy at L=50: 0.910, L=100: 0.420'
    """
    loss = "" if progress.loss is None else f", loss {progress.loss:.3f}"
    line = (
        f"step {progress.step}/{progress.max_steps} ({100 * progress.step // progress.max_steps}%){loss}, "
        f"{format_duration(progress.seconds)} elapsed, {_left(seconds_left(progress))}"
    )
    if progress.accuracy:
        line += "; token accuracy at " + ", ".join(f"L={n}: {a:.3f}" for n, a in progress.accuracy.items())
    return line


def combined_line(runs: Mapping[str, Optional[Progress]], elapsed: float) -> str:
    """Runs side by side: each one's step and loss, the time since the start, and the training time left for the
    slowest (a run not started yet shows as waiting).

    >>> combined_line({"default": Progress(20, 200, 2.31, 24.0), "mimetic": Progress(20, 200, 2.05, 30.0)}, 32.0)
    '[0:32] default: step 20/200, loss 2.310 | mimetic: step 20/200, loss 2.050 | about 4:30 of training left'
    >>> combined_line({"default": Progress(1, 200, 2.77, 2.0), "mimetic": None}, 9.0)
    '[0:09] default: step 1/200, loss 2.770 | mimetic: starting | time left: estimating'
    """
    parts, left = [], []
    for name, progress in runs.items():
        if progress is None:
            parts.append(f"{name}: starting")
            left.append(None)
            continue
        loss = "" if progress.loss is None else f", loss {progress.loss:.3f}"
        parts.append(f"{name}: step {progress.step}/{progress.max_steps}{loss}")
        left.append(seconds_left(progress))
    slowest = None if None in left else max(left)
    return f"[{format_duration(elapsed)}] " + " | ".join(parts) + f" | {_left(slowest, 'of training left')}"
