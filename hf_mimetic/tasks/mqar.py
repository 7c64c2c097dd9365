"""Multi-query associative recall (thesis §3.3.1; Arora et al. 2023).

Native format: ``[BOS] k1 v1 .. kn vn SEP q1 a1 .. qm am``, every key occurring once (so there is no overwriting),
keys from ``[0, V/2)`` and values from ``[V/2, V)``; the loss covers each answer ``a``. With
``mqar_format="zoology"``, the format of HazyResearch/zoology's ``multiquery_ar`` (:mod:`.zoology`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .base import IGNORE_INDEX, Task, TaskConfig, as_example, check_int, register
from .zoology import sample_zoology, zoology_seq_len


def format_mqar(keys: Sequence[int], values: Sequence[int], query_order: Sequence[int],
                config: TaskConfig) -> dict[str, Any]:
    """Native MQAR: ``[BOS] k1 v1 .. kn vn SEP q1 a1 .. qm am``; loss on each ``a``.

    ``query_order`` lists the indices of the queried pairs, in query order.

    Example:
        >>> cfg = TaskConfig(task="mqar", vocab_size=10, max_len=2)
        >>> format_mqar([1, 3], [7, 5], [1, 0], cfg)["input_ids"]
        [1, 7, 3, 5, 11, 3, 5, 1, 7]
    """
    if len(keys) != len(values) or len(set(keys)) != len(keys):
        raise ValueError(f"keys must be distinct and as many as values, got keys={list(keys)}, values={list(values)}")
    bos = [config.bos_token_id] if config.use_bos else []
    context = [*bos, *(t for kv in zip(keys, values) for t in kv), config.sep_token_id]
    ids, labels = list(context), [IGNORE_INDEX] * len(context)
    for j in query_order:
        ids += [keys[j], values[j]]
        labels += [IGNORE_INDEX, values[j]]
    return as_example(ids, labels, len(keys))


def num_queries(config: TaskConfig, length: int) -> int:
    """Number of MQAR queries in an example with ``length`` key-value pairs."""
    return length if config.mqar_num_queries is None else config.mqar_num_queries


class MQAR(Task):
    name = "mqar"
    greedy = False  # queries and answers interleave: there is no single answer block to decode

    def validate_options(self, config: TaskConfig) -> None:
        if config.mqar_num_queries is not None:
            check_int(
                "mqar_num_queries", config.mqar_num_queries, 1, config.min_len,
                why=" (every example needs that many distinct keys, so at most min_len)",
            )  # fmt: skip
            if config.mqar_format == "zoology":
                raise ValueError("mqar_num_queries must be None with mqar_format='zoology' (zoology queries every key)")
        if isinstance(config.power_a, bool) or not isinstance(config.power_a, (int, float)) or not config.power_a > 0:
            raise ValueError(f"power_a={config.power_a!r} is out of range: valid range is > 0 (1.0 = uniform gaps)")
        if config.mqar_format == "zoology" and config.use_bos:
            raise ValueError("use_bos/bos_token_id must be unset with mqar_format='zoology' (zoology has no BOS)")
        if config.mqar_seq_len is not None:
            check_int("mqar_seq_len", config.mqar_seq_len, 4 * config.max_len, config.vocab_size - 1,
                      why=" (zoology needs 4 * num_kv_pairs <= input_seq_len < vocab_size)")  # fmt: skip
            if config.mqar_seq_len % 2:
                raise ValueError(f"mqar_seq_len={config.mqar_seq_len} must be even (zoology rule)")

    def validate_length(self, config: TaskConfig, length: int) -> None:
        v = config.vocab_size
        if config.mqar_format == "native":
            low = 1 if config.mqar_num_queries is None else config.mqar_num_queries
            check_int("length", length, low, v // 2,
                      why=f" (MQAR keys are distinct tokens of [0, {v // 2}), values of [{v // 2}, {v});"
                          f" increase vocab_size to at least {2 * length})")  # fmt: skip
        else:
            seq_len = zoology_seq_len(config, length)
            high = seq_len // 4 if config.mqar_seq_len is not None else (v - 1) // 4
            check_int("length", length, 1, high,
                      why=f" (zoology needs 4 * num_kv_pairs <= input_seq_len={seq_len} < vocab_size={v})")

    def sequence_length(self, config: TaskConfig, length: int) -> int:
        if config.mqar_format == "zoology":
            return zoology_seq_len(config, length) + 1
        return int(config.use_bos) + 2 * length + 1 + 2 * num_queries(config, length)

    def sample(self, config: TaskConfig, length: int, rng: np.random.Generator) -> dict[str, Any]:
        if config.mqar_format == "zoology":
            return sample_zoology(config, length, rng)
        v = config.vocab_size
        keys = rng.choice(v // 2, size=length, replace=False).tolist()
        values = (v // 2 + rng.choice(v - v // 2, size=length, replace=False)).tolist()
        order = rng.permutation(length)[: num_queries(config, length)].tolist()
        return format_mqar(keys, values, order, config)


register(MQAR())
