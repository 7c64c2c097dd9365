"""What every synthetic task shares: the config, the task interface and registry, seeding, and the layout of a
prompt → answer example.

Data tokens are the ids ``[0, vocab_size)``; by default the special tokens come right after them: ``PAD = V``,
``SEP = V + 1``, ``EOS = V + 2`` and (only when ``use_bos``) ``BOS = V + 3``. Any of them can be set explicitly.

Label convention
----------------
Examples follow the causal-LM convention of ``transformers``: ``labels`` is aligned with ``input_ids`` and the model
shifts internally (the logits at position ``t - 1`` are scored against ``labels[t]``). ``labels[t] == input_ids[t]``
on answer tokens and ``-100`` (:data:`IGNORE_INDEX`) everywhere else, so the loss covers only the answer. Every
example also carries ``prompt_length`` (index of the first answer token) and ``length`` (the task length ``n``).

Seeding
-------
Example ``i`` is drawn from its own generator seeded by ``(seed, split, n, i)`` (:func:`example_rng`), so it never
depends on how many examples were made before it: map-style datasets are reproducible element by element and two
splits never share a random stream.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

IGNORE_INDEX = -100
"""Label value ignored by the loss and the metrics (``torch.nn.CrossEntropyLoss`` default)."""

MQAR_FORMATS = ("native", "zoology")
SPLITS = ("train", "eval")
# Each split gets its own stream of example seeds; the ids are part of the seed, so never renumber them (that would
# change every generated data set).
_SPLIT_STREAMS = {"train": 0, "eval": 1}


def check_int(name: str, value: Any, low: int, high: int | None = None, why: str = "") -> None:
    """Raise ValueError unless ``low <= value <= high`` (``high=None``: no upper bound)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        # ValueError, not TypeError: callers catch one exception type for every bad config value.
        raise ValueError(f"{name} must be an int, got {value!r} ({type(value).__name__})")  # noqa: TRY004
    if value < low or (high is not None and value > high):
        valid = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{name}={value} is out of range: valid range is {valid}{why}")


class Task:
    """One synthetic task: how to validate its options and lengths, size its sequences, and draw an example.

    Subclasses set ``name`` and implement :meth:`sample`; they are registered in :data:`TASKS` by :func:`register`.
    """

    name: ClassVar[str]
    #: Whether greedy decoding is a meaningful default evaluation (it needs one contiguous answer block).
    greedy: ClassVar[bool] = True

    def validate_options(self, config: "TaskConfig") -> None:
        """Raise ValueError for options this task cannot use (called once, when the config is made)."""
        if config.mqar_format != "native":
            raise ValueError(f"mqar_format={config.mqar_format!r} needs task='mqar', got task={config.task!r}")

    def validate_length(self, config: "TaskConfig", length: int) -> None:
        check_int("length", length, 1)

    def sequence_length(self, config: "TaskConfig", length: int) -> int:
        """Tokens in an example of task length ``length``: ``[BOS] prompt SEP answer EOS``."""
        return int(config.use_bos) + 2 * length + 2

    def sample(self, config: "TaskConfig", length: int, rng: np.random.Generator) -> dict[str, Any]:
        raise NotImplementedError


#: Every task, by name (filled by the task modules).
TASKS: dict[str, Task] = {}


def register(task: Task) -> Task:
    TASKS[task.name] = task
    return task


@dataclass(frozen=True)
class TaskConfig:
    """Configuration of one synthetic task; validated on construction.

    Args:
        task: one of :data:`TASKS` (``"copy"``, ``"stack_copy"``, ``"mqar"``, ``"sort"``).
        vocab_size: number of data tokens; data ids are ``[0, vocab_size)``.
        min_len, max_len: range of the task length ``n`` for training examples (copy/sort: tokens in the prompt;
            MQAR: key-value pairs). Evaluation can use any feasible length (see :meth:`validate_length`), e.g. 2x
            or 4x max_len.
        seed: base seed (>= 0) of every example.
        pad_token_id, sep_token_id, eos_token_id: special ids; ``None`` places them after the data tokens
            (``V``, ``V+1``, ``V+2``).
        use_bos: prepend a BOS token (label ``-100``) to every example.
        bos_token_id: BOS id; ``None`` means ``V + 3``. Setting it implies ``use_bos``.
        mqar_num_queries: queries per MQAR example; ``None`` queries every key (as zoology does). Must be
            ``<= min_len``.
        mqar_format: ``"native"`` (SEP format) or ``"zoology"`` (zoology's ``multiquery_ar`` rules; SEP/EOS/BOS
            unused).
        mqar_seq_len: zoology ``input_seq_len`` (even, ``>= 4 * n``, ``< vocab_size``); ``None`` uses ``4 * n``,
            the densest sequence zoology allows.
        power_a: zoology power-law parameter of the query gaps (``1.0`` = uniform).
        random_non_queries: zoology: replace filler zeros in the inputs by random tokens.

    Example:
        >>> cfg = TaskConfig(task="sort", vocab_size=512, min_len=1, max_len=64)
        >>> cfg.sep_token_id, cfg.total_vocab_size
        (513, 515)
    """

    task: str = "copy"
    vocab_size: int = 512
    min_len: int = 1
    max_len: int = 64
    seed: int = 0
    pad_token_id: int | None = None
    sep_token_id: int | None = None
    eos_token_id: int | None = None
    use_bos: bool = False
    bos_token_id: int | None = None
    mqar_num_queries: int | None = None
    mqar_format: str = "native"
    mqar_seq_len: int | None = None
    power_a: float = 0.01
    random_non_queries: bool = True

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}: valid tasks are {list(TASKS)}")
        if self.mqar_format not in MQAR_FORMATS:
            raise ValueError(f"unknown mqar_format {self.mqar_format!r}: valid formats are {list(MQAR_FORMATS)}")
        check_int("vocab_size", self.vocab_size, 2)
        check_int("seed", self.seed, 0)
        check_int("min_len", self.min_len, 1)
        check_int("max_len", self.max_len, self.min_len, why=f" (max_len must be >= min_len={self.min_len})")
        self._resolve_special_tokens()
        self.spec.validate_options(self)
        # Every length in [min_len, max_len] must be feasible; the largest is the binding one.
        self.validate_length(self.max_len)

    def _resolve_special_tokens(self) -> None:
        v = self.vocab_size
        # The dataclass is frozen so configs can be shared and hashed safely; resolving the defaults once here is
        # the only mutation.
        defaults = {"pad_token_id": v, "sep_token_id": v + 1, "eos_token_id": v + 2}
        if self.bos_token_id is not None:
            object.__setattr__(self, "use_bos", True)
        elif self.use_bos:
            defaults["bos_token_id"] = v + 3
        for name, default in defaults.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, default)
        ids = self.special_token_ids
        for name, tok in ids.items():
            check_int(name, tok, v, why=f" (special tokens must not collide with data tokens [0, {v}))")
        if len(set(ids.values())) != len(ids):
            raise ValueError(f"special token ids must be distinct, got {ids}")

    @property
    def spec(self) -> Task:
        """The :class:`Task` this config is of."""
        return TASKS[self.task]

    @property
    def special_token_ids(self) -> dict[str, int]:
        """Names and ids of the special tokens in use (BOS only if ``use_bos``)."""
        ids = {"pad_token_id": self.pad_token_id, "sep_token_id": self.sep_token_id, "eos_token_id": self.eos_token_id}
        if self.use_bos:
            ids["bos_token_id"] = self.bos_token_id
        return ids  # type: ignore[return-value]

    @property
    def total_vocab_size(self) -> int:
        """Smallest model vocabulary that covers the data and the special tokens."""
        return max(self.vocab_size, *self.special_token_ids.values()) + 1

    def sequence_length(self, length: int) -> int:
        """Number of tokens in an example of task length ``length`` (for sizing models)."""
        return self.spec.sequence_length(self, length)

    def validate_length(self, length: int) -> None:
        """Raise ValueError unless this task can make an example of length ``length``.

        ``length`` may exceed ``max_len`` (evaluation at 2x or 4x the training length).
        """
        self.spec.validate_length(self, length)


# ---------------------------------------------------------------------- seeding
def example_rng(seed: int, split: str, length: int, index: int) -> np.random.Generator:
    """Independent generator for example ``index`` of ``split`` at task length ``length``.

    Seeding by the tuple (instead of drawing examples one after the other from one generator) makes example ``i``
    independent of the examples before it.

    Example:
        >>> a = int(example_rng(0, "eval", 8, 3).integers(1 << 30))
        >>> a == int(example_rng(0, "eval", 8, 3).integers(1 << 30))
        True
    """
    if split not in _SPLIT_STREAMS:
        raise ValueError(f"unknown split {split!r}: valid splits are {list(SPLITS)}")
    check_int("seed", seed, 0)
    check_int("index", index, 0)
    return np.random.default_rng([seed, _SPLIT_STREAMS[split], length, index])


def sample_example(config: TaskConfig, length: int, rng: np.random.Generator) -> dict[str, Any]:
    """Draw one example of task length ``length`` from ``rng``.

    Example:
        >>> cfg = TaskConfig(task="stack_copy", vocab_size=10)
        >>> ex = sample_example(cfg, 3, np.random.default_rng(0))
        >>> ex["input_ids"][4:7] == ex["input_ids"][2::-1]
        True
    """
    config.validate_length(length)
    return config.spec.sample(config, length, rng)


def make_example(config: TaskConfig, length: int, index: int, split: str = "eval") -> dict[str, Any]:
    """Example ``index`` of ``split`` at task length ``length``; a pure function of its arguments.

    Example:
        >>> cfg = TaskConfig(vocab_size=10)
        >>> make_example(cfg, 4, 7) == make_example(cfg, 4, 7)
        True
    """
    return sample_example(config, length, example_rng(config.seed, split, length, index))


def make_train_example(config: TaskConfig, index: int) -> dict[str, Any]:
    """Training example ``index``: length uniform in ``[min_len, max_len]``, then the example."""
    # Length 0 in the seed tuple marks "length drawn from the stream" (real lengths are >= 1).
    rng = example_rng(config.seed, "train", 0, index)
    length = int(rng.integers(config.min_len, config.max_len + 1))
    return sample_example(config, length, rng)


# ------------------------------------------------------------------- formatting
def as_example(input_ids: Sequence[int], labels: Sequence[int], length: int) -> dict[str, Any]:
    """An example dict: ids, labels, the index of the first label (``prompt_length``) and the task length."""
    labels = [int(t) for t in labels]
    prompt_length = next((i for i, t in enumerate(labels) if t != IGNORE_INDEX), len(labels))
    return {"input_ids": [int(t) for t in input_ids], "labels": labels, "prompt_length": prompt_length, "length": length}


def format_prompt_answer(prompt: Sequence[int], answer: Sequence[int], config: TaskConfig) -> dict[str, Any]:
    """Lay out ``[BOS] prompt SEP answer EOS`` with loss on ``answer`` and EOS.

    Example:
        >>> cfg = TaskConfig(vocab_size=10)
        >>> format_prompt_answer([4, 5], [4, 5], cfg)["labels"]
        [-100, -100, -100, 4, 5, 12]
    """
    bos = [config.bos_token_id] if config.use_bos else []
    head = [*bos, *prompt, config.sep_token_id]
    tail = [*answer, config.eos_token_id]
    return as_example(head + tail, [IGNORE_INDEX] * len(head) + tail, len(prompt))
