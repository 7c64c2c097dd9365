"""The tasks as ``datasets``: fixed evaluation sets, an endless training stream, and the collator."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import datasets
import torch

from .base import IGNORE_INDEX, TaskConfig, check_int, make_example, make_train_example


def dataset_features() -> datasets.Features:
    """``datasets`` schema of the examples."""
    ints = datasets.List(datasets.Value("int32"))
    return datasets.Features({"input_ids": ints, "labels": ints,
                              "prompt_length": datasets.Value("int32"),
                              "length": datasets.Value("int32")})


def make_eval_dataset(config: TaskConfig, length: int, num_examples: int,
                      split: str = "eval") -> datasets.Dataset:
    """Map-style dataset of ``num_examples`` examples, all of task length exactly ``length``.

    Example:
        >>> cfg = TaskConfig(vocab_size=10, max_len=8)
        >>> ds = make_eval_dataset(cfg, length=16, num_examples=4)  # 2x the training length
        >>> len(ds), set(ds["length"])
        (4, {16})
    """
    config.validate_length(length)
    check_int("num_examples", num_examples, 1)
    rows = [make_example(config, length, i, split) for i in range(num_examples)]
    columns = {k: [r[k] for r in rows] for k in dataset_features()}
    return datasets.Dataset.from_dict(columns, features=dataset_features())


def _train_generator(config_dict: dict[str, Any], shard: list[int], num_shards: int,
                     num_examples: int | None) -> Iterator[dict[str, Any]]:
    config = TaskConfig(**config_dict)
    # Shard s yields the indices i = s (mod num_shards): together the shards give
    # every index exactly once, whatever the number of DataLoader workers.
    for s in shard:
        index = s
        while num_examples is None or index < num_examples:
            yield make_train_example(config, index)
            index += num_shards


def make_train_dataset(config: TaskConfig, num_examples: int | None = None,
                       num_shards: int = 1) -> datasets.IterableDataset:
    """Iterable training dataset with lengths uniform in ``[min_len, max_len]``.

    ``num_examples=None`` makes it infinite (give the Trainer ``max_steps``).
    ``num_shards > 1`` lets DataLoader workers split it; the order then interleaves
    the shards, but the set of examples is the same.

    Example:
        >>> cfg = TaskConfig(vocab_size=10, min_len=2, max_len=5)
        >>> [len(ex["input_ids"]) for ex in make_train_dataset(cfg).take(3)]  # doctest: +SKIP
        [8, 12, 6]
    """
    if num_examples is not None:
        check_int("num_examples", num_examples, 1)
    check_int("num_shards", num_shards, 1)
    return datasets.IterableDataset.from_generator(
        _train_generator,
        features=dataset_features(),
        gen_kwargs={"config_dict": dataclasses.asdict(config), "shard": list(range(num_shards)),
                    "num_shards": num_shards, "num_examples": num_examples},
    )




@dataclass
class TaskCollator:
    """Right-pad a list of examples into a batch of tensors (usable as ``data_collator``).

    ``input_ids`` is padded with ``pad_token_id``, ``labels`` with ``-100``. Extra
    keys (``prompt_length``, ``length``) are dropped, so they never reach ``forward``.
    ``attention_mask`` marks real tokens; Mamba ignores it, which is harmless with
    right padding because a causal model never looks ahead at the pads.

    Example:
        >>> batch = TaskCollator(pad_token_id=9)([{"input_ids": [1, 2], "labels": [-100, 2]},
        ...                                       {"input_ids": [3], "labels": [3]}])
        >>> batch["input_ids"].tolist(), batch["labels"].tolist()
        ([[1, 2], [3, 9]], [[-100, 2], [3, -100]])
    """

    pad_token_id: int
    label_pad_token_id: int = IGNORE_INDEX
    return_attention_mask: bool = True
    pad_to_multiple_of: int | None = None

    @classmethod
    def from_config(cls, config: TaskConfig, **kwargs: Any) -> TaskCollator:
        """Collator that pads with ``config.pad_token_id``."""
        return cls(pad_token_id=config.pad_token_id, **kwargs)  # type: ignore[arg-type]

    def __call__(self, features: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        if not features:
            raise ValueError("cannot collate an empty batch")
        ids = [list(map(int, f["input_ids"])) for f in features]
        labels = [list(map(int, f["labels"])) for f in features]
        for i, (a, b) in enumerate(zip(ids, labels)):
            if len(a) != len(b):
                raise ValueError(f"example {i}: input_ids has {len(a)} tokens but labels has {len(b)}")
        width = max(map(len, ids))
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        batch = {
            "input_ids": torch.tensor([a + [self.pad_token_id] * (width - len(a)) for a in ids]),
            "labels": torch.tensor([b + [self.label_pad_token_id] * (width - len(b)) for b in labels]),
        }
        if self.return_attention_mask:
            batch["attention_mask"] = torch.tensor([[1] * len(a) + [0] * (width - len(a)) for a in ids])
        return batch


