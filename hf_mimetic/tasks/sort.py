"""Sorting: ``x1 .. xn SEP sorted(x) EOS``, the ``x`` drawn without replacement (so ``n <= vocab_size``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Task, TaskConfig, check_int, format_prompt_answer, register


class Sort(Task):
    name = "sort"

    def validate_length(self, config: TaskConfig, length: int) -> None:
        v = config.vocab_size
        check_int("length", length, 1, v, why=f" (sort draws tokens without replacement, so length <= vocab_size={v};"
                                              f" increase vocab_size to at least {length})")  # fmt: skip

    def sample(self, config: TaskConfig, length: int, rng: np.random.Generator) -> dict[str, Any]:
        x = rng.choice(config.vocab_size, size=length, replace=False).tolist()
        return format_prompt_answer(x, sorted(x), config)


register(Sort())
