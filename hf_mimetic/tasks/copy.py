"""Copy and stack copy (thesis §3.3.1; Jelassi et al. 2024, "Repeat after me").

* ``copy``        ``x1 .. xn SEP x1 .. xn EOS``
* ``stack_copy``  ``x1 .. xn SEP xn .. x1 EOS``

The loss covers the pasted part *and* the EOS (the model must know where to stop).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Task, TaskConfig, format_prompt_answer, register


class Copy(Task):
    name = "copy"

    def answer(self, prompt: list[int]) -> list[int]:
        return prompt

    def sample(self, config: TaskConfig, length: int, rng: np.random.Generator) -> dict[str, Any]:
        x = rng.integers(0, config.vocab_size, size=length).tolist()
        return format_prompt_answer(x, self.answer(x), config)


class StackCopy(Copy):
    name = "stack_copy"

    def answer(self, prompt: list[int]) -> list[int]:
        return prompt[::-1]


register(Copy())
register(StackCopy())
