"""What a training run says while it runs: progress lines about every 10%, and transformers' kernel fallback
warnings collapsed into one line (hf_mimetic.train.progress)."""

from __future__ import annotations

import logging

import pytest
from transformers.utils import logging as hf_logging

from hf_mimetic.train.progress import (
    FALLBACK_LOGGER,
    KERNEL_NOTE,
    KernelFallbackNote,
    Progress,
    combined_line,
    note_kernel_fallbacks,
    progress_line,
    report_steps,
)

# transformers' wording (5.24 and 5.25), one per kernel.
FALLBACKS = [
    f"`{kernel}` is falling back to its reference PyTorch implementation because `{package}` is either not installed "
    "or doesn't support the device of the inputs. This is correct but much slower."
    for kernel, package in [("mamba_chunk_scan_combined", "mamba_ssm"), ("causal_conv1d_fn", "causal_conv1d"),
                            ("selective_state_update", "mamba_ssm"), ("causal_conv1d_update", "causal_conv1d")]
]  # fmt: skip


class Shown(logging.Handler):
    """What a handler on the logger gets to show (transformers' own handler writes to the stderr of its import)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def fallback_logger():
    """transformers' logger of the fallback warnings, with a handler that records what it shows (``.shown``) and
    no filter of ours left behind."""
    logger = hf_logging.get_logger(FALLBACK_LOGGER)

    def remove_ours() -> None:  # a script's main(), run in-process by another test, may have installed one
        for installed in [f for f in logger.filters if isinstance(f, KernelFallbackNote)]:
            logger.removeFilter(installed)

    remove_ours()
    logger.shown = Shown()
    logger.addHandler(logger.shown)
    yield logger
    logger.removeHandler(logger.shown)
    remove_ours()


def test_ten_fallback_warnings_become_one_note_and_other_warnings_pass(fallback_logger):
    note_kernel_fallbacks()
    note_kernel_fallbacks()  # installing twice still gives one filter
    for _ in range(3):
        for message in FALLBACKS:
            fallback_logger.warning(message)
    fallback_logger.warning("a warning a user needs")
    err = fallback_logger.shown.text
    assert err.count(KERNEL_NOTE) == 1, err
    assert "falling back" not in err
    assert "a warning a user needs" in err
    assert err.index(KERNEL_NOTE) < err.index("a warning a user needs")


def test_the_note_can_go_elsewhere_once(fallback_logger):
    notes: list[str] = []
    note_kernel_fallbacks(notes.append)
    for message in FALLBACKS * 3:
        fallback_logger.warning(message)
    assert notes == [KERNEL_NOTE]
    assert fallback_logger.shown.lines == []


def test_without_the_filter_transformers_warns_per_kernel(fallback_logger):
    """The baseline the filter fixes (and proof that the records above really reach the output)."""
    for message in FALLBACKS:
        fallback_logger.warning(message)
    assert fallback_logger.shown.text.count("falling back") == len(FALLBACKS)


def test_the_filter_leaves_other_records_alone():
    record = logging.LogRecord(FALLBACK_LOGGER, logging.WARNING, __file__, 1, "kernel %s loaded", ("x",), None)
    assert KernelFallbackNote().filter(record) and record.getMessage() == "kernel x loaded"


@pytest.mark.parametrize("max_steps", [1, 3, 10, 200, 1001])
def test_report_steps_are_the_first_and_each_tenth(max_steps):
    steps = sorted(report_steps(max_steps))
    assert steps[0] == 1 and steps[-1] == max_steps and len(steps) <= 11
    if max_steps >= 10:
        tenths = [s for s in steps if s != 1 or max_steps == 10]
        assert len(tenths) == 10 and all(abs(s - k * max_steps / 10) < 1 for k, s in enumerate(tenths, 1))


def test_lines_say_step_loss_elapsed_and_left():
    assert (
        progress_line(Progress(50, 200, 0.25, 90.0)) == "step 50/200 (25%), loss 0.250, 1:30 elapsed, about 4:30 left"
    )
    # A resumed run: the rate counts only the steps of this session.
    assert progress_line(Progress(150, 200, 0.25, 90.0, start_step=100)).endswith("about 1:30 left")
    assert (
        progress_line(Progress(1, 200, 3.0, 5.0)) == "step 1/200 (0%), loss 3.000, 0:05 elapsed, time left: estimating"
    )
    line = combined_line({"default": Progress(20, 200, 2.0, 40.0), "mimetic": Progress(30, 200, 1.0, 40.0)}, 45.0)
    # The time left is the slower run's: 180 steps at 2 s.
    assert (
        line
        == "[0:45] default: step 20/200, loss 2.000 | mimetic: step 30/200, loss 1.000 | about 6:00 of training left"
    )
