"""The format of HazyResearch/zoology's ``multiquery_ar``: making it, and converting to and from it.

Zoology's rules: keys in ``[1, V/2)``, values in ``[V/2, V)``, filler 0; the context is ``k1 v1 .. kn vn``; query
``j`` is key ``k_j`` placed at offset ``2 * gap_j`` after the context, with power-law gaps; zoology never shows the
value after a query key, so ``input_ids`` holds filler at the answer positions and only ``labels`` carries the value.
Zoology returns ``inputs = seq[:-1]`` and pre-shifted ``labels = labels[1:]``; this library keeps aligned labels
(:func:`to_zoology` and :func:`from_zoology` convert losslessly).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .base import IGNORE_INDEX, TaskConfig, as_example, check_int, make_example

ZOOLOGY_FILLER_ID = 0
"""Token zoology uses for filler (and never as a key or value)."""


def zoology_gap_probabilities(space: int, power_a: float) -> np.ndarray:
    """Zoology's power law over query gaps ``g = 0 .. space-1``: ``p ∝ (g + 1) ** (power_a - 1)``."""
    p = power_a * np.arange(1, space + 1, dtype=np.float64) ** (power_a - 1)
    return p / p.sum()


def format_zoology_mqar(keys: Sequence[int], values: Sequence[int], gaps: Sequence[int],
                        input_seq_len: int) -> dict[str, Any]:
    """Full zoology MQAR sequence (``input_seq_len + 1`` tokens), aligned labels, filler 0.

    The answer ``v_j`` is the label of the token right after query key ``k_j`` (whose input is filler). Filler
    randomisation (``random_non_queries``) is a separate step.

    Example:
        >>> ex = format_zoology_mqar([2, 4], [8, 7], [1, 0], input_seq_len=8)
        >>> ex["input_ids"], ex["labels"][5], ex["labels"][7]
        ([2, 8, 4, 7, 4, 0, 2, 0, 0], 7, 8)
    """
    n = len(keys)
    context = 2 * n
    space = (input_seq_len - context) // 2
    if len(values) != n or len(gaps) != n or len(set(gaps)) != n or len(set(keys)) != n:
        raise ValueError("keys, values and gaps must have the same length; keys and gaps must be distinct")
    if any(not 0 <= g < space for g in gaps):
        raise ValueError(f"gaps must lie in [0, {space}) for input_seq_len={input_seq_len}, got {list(gaps)}")
    ids = [ZOOLOGY_FILLER_ID] * (input_seq_len + 1)
    labels = [IGNORE_INDEX] * (input_seq_len + 1)
    ids[0:context:2], ids[1:context:2] = list(keys), list(values)
    for k, v, g in zip(keys, values, gaps):
        ids[context + 2 * g] = k
        labels[context + 2 * g + 1] = v
    return as_example(ids, labels, n)


def sample_zoology(config: TaskConfig, n: int, rng: np.random.Generator) -> dict[str, Any]:
    """One zoology-format MQAR example with ``n`` key-value pairs."""
    v, seq_len = config.vocab_size, zoology_seq_len(config, n)
    keys = 1 + rng.choice(v // 2 - 1, size=n, replace=False)  # zoology keys: [1, V/2)
    values = v // 2 + rng.choice(v - v // 2, size=n, replace=False)  # values: [V/2, V)
    space = (seq_len - 2 * n) // 2
    gaps = rng.choice(space, size=n, replace=False, p=zoology_gap_probabilities(space, config.power_a))
    ex = format_zoology_mqar(keys.tolist(), values.tolist(), gaps.tolist(), seq_len)
    if config.random_non_queries:
        # Zoology randomises the zeros of `inputs = seq[:-1]` only, so the last token of the full sequence stays 0;
        # keys and values are never 0.
        noise = rng.integers(0, v, size=seq_len)
        ids = ex["input_ids"]
        ex["input_ids"] = [int(noise[i]) if t == ZOOLOGY_FILLER_ID else t for i, t in enumerate(ids[:-1])] + ids[-1:]
    return ex


def zoology_seq_len(config: TaskConfig, length: int) -> int:
    """Zoology ``input_seq_len`` used for ``length`` key-value pairs."""
    return 4 * length if config.mqar_seq_len is None else config.mqar_seq_len


def _as_long_2d(x: Any) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).long()
    return t.unsqueeze(0) if t.dim() == 1 else t


def to_zoology(input_ids: Any, labels: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Aligned ``(input_ids, labels)`` → zoology's ``(inputs, labels)`` = ``(ids[:, :-1], labels[:, 1:])``.

    In zoology's format ``labels[t]`` is the target of the prediction made at ``t``.

    Example:
        >>> ex = format_zoology_mqar([2, 4], [8, 7], [1, 0], input_seq_len=8)
        >>> inputs, labels = to_zoology(ex["input_ids"], ex["labels"])
        >>> inputs.tolist(), labels.tolist()
        ([[2, 8, 4, 7, 4, 0, 2, 0]], [[-100, -100, -100, -100, 7, -100, 8, -100]])
    """
    ids, lab = _as_long_2d(input_ids), _as_long_2d(labels)
    if ids.shape != lab.shape:
        raise ValueError(
            f"input_ids and labels must have the same shape, got {tuple(ids.shape)} and {tuple(lab.shape)}"
        )
    return ids[:, :-1], lab[:, 1:]


def from_zoology(inputs: Any, labels: Any,
                 filler_token_id: int = ZOOLOGY_FILLER_ID) -> tuple[torch.Tensor, torch.Tensor]:
    """Zoology ``(inputs, labels)`` (shape ``(B, L)``) → aligned ``(input_ids, labels)`` of shape ``(B, L + 1)``.

    Lossless: a filler token is appended to the inputs (the last prediction's target needs a position) and ``-100``
    is prepended to the labels, so ``to_zoology(*from_zoology(x, y)) == (x, y)`` and every metric matches zoology's.

    Example:
        >>> ids, lab = from_zoology([[2, 8, 4, 7, 4, 0, 2, 0]], [[-100, -100, -100, -100, 7, -100, 8, -100]])
        >>> ids.tolist(), lab[0, 5].item(), lab[0, 7].item()
        ([[2, 8, 4, 7, 4, 0, 2, 0, 0]], 7, 8)
    """
    x, y = _as_long_2d(inputs), _as_long_2d(labels)
    if x.shape != y.shape:
        raise ValueError(f"inputs and labels must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    filler = torch.full((x.shape[0], 1), filler_token_id, dtype=torch.long)
    ignore = torch.full((y.shape[0], 1), IGNORE_INDEX, dtype=torch.long)
    return torch.cat([x, filler], dim=1), torch.cat([ignore, y], dim=1)


def zoology_multiquery_ar(vocab_size: int, num_examples: int, input_seq_len: int, num_kv_pairs: int = 8,
                          power_a: float = 0.01, random_non_queries: bool = True,
                          seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Make MQAR data in zoology's ``multiquery_ar`` format: ``(inputs, labels)``, both ``(B, L)``.

    Same rules and constraints as zoology (not the same random stream): keys in ``[1, V/2)``, values in
    ``[V/2, V)``, filler 0, power-law query gaps, labels pre-shifted (``labels[t]`` is the value to predict after the
    query key at ``t``).

    Example:
        >>> x, y = zoology_multiquery_ar(vocab_size=64, num_examples=2, input_seq_len=16, num_kv_pairs=2)
        >>> x.shape, y.shape
        (torch.Size([2, 16]), torch.Size([2, 16]))
    """
    config = TaskConfig(task="mqar", mqar_format="zoology", vocab_size=vocab_size,
                        min_len=num_kv_pairs, max_len=num_kv_pairs, mqar_seq_len=input_seq_len,
                        power_a=power_a, random_non_queries=random_non_queries, seed=seed)
    check_int("num_examples", num_examples, 1)
    rows = [make_example(config, num_kv_pairs, i) for i in range(num_examples)]
    return to_zoology([r["input_ids"] for r in rows], [r["labels"] for r in rows])
