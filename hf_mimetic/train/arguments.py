"""Command-line flags shared by every training script: every mimetic option, and the output-directory policy.

:data:`MimeticArguments` is generated from the config classes (:mod:`hf_mimetic.config`), so a new option is a flag of
every script with no change here; unset flags keep the preset.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional

from ..catalog import KINDS
from ..config import PRESETS


def _mimetic_arguments_class() -> type:
    """A dataclass with ``preset``, ``layers`` and every option of every kind as an optional flag."""
    fields = [
        ("preset", Optional[str], field(default=None, metadata={"help": f"one of {tuple(PRESETS)} (default: the model family's)"})),
        ("layers", Optional[list[int]], field(default=None, metadata={"help": "layer indices to initialise (default: all)"})),
    ]  # fmt: skip
    for kind in KINDS.values():
        for option in dataclasses.fields(kind):
            check = option.metadata["check"]
            help_text = f"{option.metadata['help']}; {check.describe()} (default: the preset's)"
            fields.append((option.name, Optional[check.python_type], field(default=None, metadata={"help": help_text})))
    cls = dataclasses.make_dataclass("MimeticArguments", fields)
    cls.__doc__ = "Every mimetic option as a flag; only the flags you set override the model family's preset."
    cls.overrides = lambda self: {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
    return cls


MimeticArguments = _mimetic_arguments_class()


@dataclass
class OutputArguments:
    """What may happen to an existing ``--output_dir``."""

    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "train into an --output_dir that already holds files (its checkpoints may then be deleted "
                          "by the Trainer's checkpoint rotation); without it, such a folder is refused"},
    )  # fmt: skip
