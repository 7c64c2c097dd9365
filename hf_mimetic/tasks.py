"""Synthetic sequence tasks for training and evaluating causal LMs.

Tasks (thesis §3.3.1; training pipeline of Jelassi et al. 2024, "Repeat after me"):

* ``copy``        ``x1 .. xn SEP x1 .. xn EOS``
* ``stack_copy``  ``x1 .. xn SEP xn .. x1 EOS``
* ``sort``        ``x1 .. xn SEP sorted(x) EOS`` with the ``x`` drawn without replacement
* ``mqar``        ``k1 v1 .. kn vn SEP q1 a1 .. qm am`` (multi-query associative recall;
  every key occurs once, so there is no overwriting), or, with
  ``mqar_format="zoology"``, the format of HazyResearch/zoology's ``multiquery_ar``.

Data tokens are the ids ``[0, vocab_size)``; by default the special tokens come
right after them: ``PAD = V``, ``SEP = V + 1``, ``EOS = V + 2`` and (only when
``use_bos``) ``BOS = V + 3``. Any of them can be set explicitly.

Label convention
----------------
Examples follow the causal-LM convention of ``transformers``: ``labels`` is aligned
with ``input_ids`` and the model shifts internally (the logits at position ``t - 1``
are scored against ``labels[t]``). ``labels[t] == input_ids[t]`` on answer tokens
and ``-100`` (:data:`IGNORE_INDEX`) everywhere else, so the loss covers only the
answer: for the copy-like tasks that is the pasted part *and* the EOS (the model
must know where to stop); for MQAR it is the answer value after each query.

The one exception is the zoology MQAR format: zoology never shows the value after a
query key, so there ``input_ids`` holds filler at the answer positions and only
``labels`` carries the value. Losses and all metrics in :mod:`hf_mimetic.metrics`
read targets from ``labels`` only, so this makes no difference to them.

Every example also carries ``prompt_length`` (index of the first answer token, i.e.
of the first label that is not ``-100``) and ``length`` (the task length ``n``:
number of tokens to copy/sort, or number of key-value pairs for MQAR).

Seeding
-------
Example ``i`` is drawn from its own generator seeded by ``(seed, split, n, i)``
(:func:`example_rng`), so it never depends on how many examples were made before
it: map-style datasets are reproducible element by element and two splits never
share a random stream.

Example:
    >>> cfg = TaskConfig(task="copy", vocab_size=10, min_len=1, max_len=8, seed=0)
    >>> ex = make_example(cfg, length=3, index=0)
    >>> ex["input_ids"][3] == cfg.sep_token_id, ex["labels"][:4]
    (True, [-100, -100, -100, -100])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import datasets
import numpy as np
import torch

IGNORE_INDEX = -100
"""Label value ignored by the loss and the metrics (``torch.nn.CrossEntropyLoss`` default)."""

TASKS = ("copy", "stack_copy", "mqar", "sort")
MQAR_FORMATS = ("native", "zoology")
SPLITS = ("train", "eval")

ZOOLOGY_FILLER_ID = 0
"""Token zoology uses for filler (and never as a key or value)."""

# Each split gets its own stream of example seeds; the ids are part of the seed,
# so never renumber them (that would change every generated data set).
_SPLIT_STREAMS = {"train": 0, "eval": 1}


def _check_int(name: str, value: Any, low: int, high: int | None = None, why: str = "") -> None:
    """Raise ValueError unless ``low <= value <= high`` (``high=None``: no upper bound)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        # ValueError, not TypeError: callers catch one exception type for every bad config value.
        raise ValueError(f"{name} must be an int, got {value!r} ({type(value).__name__})")  # noqa: TRY004
    if value < low or (high is not None and value > high):
        valid = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{name}={value} is out of range: valid range is {valid}{why}")


@dataclass(frozen=True)
class TaskConfig:
    """Configuration of one synthetic task; validated on construction.

    Args:
        task: one of ``"copy"``, ``"stack_copy"``, ``"mqar"``, ``"sort"``.
        vocab_size: number of data tokens; data ids are ``[0, vocab_size)``.
        min_len, max_len: range of the task length ``n`` for training examples
            (copy/sort: tokens in the prompt; MQAR: key-value pairs). Evaluation can
            use any feasible length (see :meth:`validate_length`), e.g. 2x or 4x max_len.
        seed: base seed (>= 0) of every example.
        pad_token_id, sep_token_id, eos_token_id: special ids; ``None`` places them
            after the data tokens (``V``, ``V+1``, ``V+2``).
        use_bos: prepend a BOS token (label ``-100``) to every example.
        bos_token_id: BOS id; ``None`` means ``V + 3``. Setting it implies ``use_bos``.
        mqar_num_queries: queries per MQAR example; ``None`` queries every key
            (as zoology does). Must be ``<= min_len``.
        mqar_format: ``"native"`` (SEP format above) or ``"zoology"`` (zoology's
            ``multiquery_ar`` rules; SEP/EOS/BOS unused).
        mqar_seq_len: zoology ``input_seq_len`` (even, ``>= 4 * n``, ``< vocab_size``);
            ``None`` uses ``4 * n``, the densest sequence zoology allows.
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
            raise ValueError(
                f"unknown mqar_format {self.mqar_format!r}: valid formats are {list(MQAR_FORMATS)}"
            )
        if self.mqar_format == "zoology" and self.task != "mqar":
            raise ValueError(f"mqar_format='zoology' needs task='mqar', got task={self.task!r}")
        _check_int("vocab_size", self.vocab_size, 2)
        _check_int("seed", self.seed, 0)
        _check_int("min_len", self.min_len, 1)
        _check_int("max_len", self.max_len, self.min_len, why=f" (max_len must be >= min_len={self.min_len})")
        self._resolve_special_tokens()
        if self.task == "mqar":
            self._validate_mqar_options()
        # Every length in [min_len, max_len] must be feasible; the largest is the binding one.
        self.validate_length(self.max_len)

    def _resolve_special_tokens(self) -> None:
        v = self.vocab_size
        # The dataclass is frozen so configs can be shared and hashed safely;
        # resolving the defaults once here is the only mutation.
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
            _check_int(name, tok, v, why=f" (special tokens must not collide with data tokens [0, {v}))")
        if len(set(ids.values())) != len(ids):
            raise ValueError(f"special token ids must be distinct, got {ids}")

    def _validate_mqar_options(self) -> None:
        if self.mqar_num_queries is not None:
            _check_int(
                "mqar_num_queries", self.mqar_num_queries, 1, self.min_len,
                why=" (every example needs that many distinct keys, so at most min_len)",
            )
            if self.mqar_format == "zoology":
                raise ValueError("mqar_num_queries must be None with mqar_format='zoology' (zoology queries every key)")
        if isinstance(self.power_a, bool) or not isinstance(self.power_a, (int, float)) or not self.power_a > 0:
            raise ValueError(f"power_a={self.power_a!r} is out of range: valid range is > 0 (1.0 = uniform gaps)")
        if self.mqar_format == "zoology" and self.use_bos:
            raise ValueError("use_bos/bos_token_id must be unset with mqar_format='zoology' (zoology has no BOS)")
        if self.mqar_seq_len is not None:
            _check_int("mqar_seq_len", self.mqar_seq_len, 4 * self.max_len, self.vocab_size - 1,
                       why=" (zoology needs 4 * num_kv_pairs <= input_seq_len < vocab_size)")
            if self.mqar_seq_len % 2:
                raise ValueError(f"mqar_seq_len={self.mqar_seq_len} must be even (zoology rule)")

    # ------------------------------------------------------------------ helpers
    @property
    def special_token_ids(self) -> dict[str, int]:
        """Names and ids of the special tokens in use (BOS only if ``use_bos``)."""
        ids = {"pad_token_id": self.pad_token_id, "sep_token_id": self.sep_token_id,
               "eos_token_id": self.eos_token_id}
        if self.use_bos:
            ids["bos_token_id"] = self.bos_token_id
        return ids  # type: ignore[return-value]

    @property
    def total_vocab_size(self) -> int:
        """Smallest model vocabulary that covers the data and the special tokens."""
        return max(self.vocab_size, *self.special_token_ids.values()) + 1

    def num_queries(self, length: int) -> int:
        """Number of MQAR queries in an example with ``length`` key-value pairs."""
        return length if self.mqar_num_queries is None else self.mqar_num_queries

    def zoology_seq_len(self, length: int) -> int:
        """Zoology ``input_seq_len`` used for ``length`` key-value pairs."""
        return 4 * length if self.mqar_seq_len is None else self.mqar_seq_len

    def sequence_length(self, length: int) -> int:
        """Number of tokens in an example of task length ``length`` (for sizing models)."""
        bos = int(self.use_bos)
        if self.task != "mqar":
            return bos + 2 * length + 2
        if self.mqar_format == "zoology":
            return self.zoology_seq_len(length) + 1
        return bos + 2 * length + 1 + 2 * self.num_queries(length)

    def validate_length(self, length: int) -> None:
        """Raise ValueError unless this task can make an example of length ``length``.

        ``length`` may exceed ``max_len`` (evaluation at 2x or 4x the training length).
        """
        v = self.vocab_size
        if self.task in ("copy", "stack_copy"):
            _check_int("length", length, 1)
        elif self.task == "sort":
            _check_int("length", length, 1, v,
                       why=f" (sort draws tokens without replacement, so length <= vocab_size={v};"
                           f" increase vocab_size to at least {length})")
        elif self.mqar_format == "native":
            lo = 1 if self.mqar_num_queries is None else self.mqar_num_queries
            _check_int("length", length, lo, v // 2,
                       why=f" (MQAR keys are distinct tokens of [0, {v // 2}), values of [{v // 2}, {v});"
                           f" increase vocab_size to at least {2 * length})")
        else:
            seq_len = self.zoology_seq_len(length)
            hi = seq_len // 4 if self.mqar_seq_len is not None else (v - 1) // 4
            _check_int("length", length, 1, hi,
                       why=f" (zoology needs 4 * num_kv_pairs <= input_seq_len={seq_len} < vocab_size={v})")


# ---------------------------------------------------------------------- seeding
def example_rng(seed: int, split: str, length: int, index: int) -> np.random.Generator:
    """Independent generator for example ``index`` of ``split`` at task length ``length``.

    Seeding by the tuple (instead of drawing examples one after the other from one
    generator) makes example ``i`` independent of the examples before it.

    Example:
        >>> a = int(example_rng(0, "eval", 8, 3).integers(1 << 30))
        >>> a == int(example_rng(0, "eval", 8, 3).integers(1 << 30))
        True
    """
    if split not in _SPLIT_STREAMS:
        raise ValueError(f"unknown split {split!r}: valid splits are {list(SPLITS)}")
    _check_int("seed", seed, 0)
    _check_int("index", index, 0)
    return np.random.default_rng([seed, _SPLIT_STREAMS[split], length, index])


# ------------------------------------------------------------------- formatting
def _example(input_ids: Sequence[int], labels: Sequence[int], length: int) -> dict[str, Any]:
    labels = [int(t) for t in labels]
    prompt_length = next((i for i, t in enumerate(labels) if t != IGNORE_INDEX), len(labels))
    return {"input_ids": [int(t) for t in input_ids], "labels": labels,
            "prompt_length": prompt_length, "length": length}


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
    return _example(head + tail, [IGNORE_INDEX] * len(head) + tail, len(prompt))


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
    return _example(ids, labels, len(keys))


def zoology_gap_probabilities(space: int, power_a: float) -> np.ndarray:
    """Zoology's power law over query gaps ``g = 0 .. space-1``: ``p ∝ (g + 1) ** (power_a - 1)``."""
    p = power_a * np.arange(1, space + 1, dtype=np.float64) ** (power_a - 1)
    return p / p.sum()


def format_zoology_mqar(keys: Sequence[int], values: Sequence[int], gaps: Sequence[int],
                        input_seq_len: int) -> dict[str, Any]:
    """Full zoology MQAR sequence (``input_seq_len + 1`` tokens), aligned labels, filler 0.

    Zoology's rules: the context is ``k1 v1 .. kn vn`` (``C = 2n`` tokens); query
    ``j`` is key ``k_j`` placed at offset ``2 * gaps[j]`` after the context; the
    answer ``v_j`` is the label of the token right after that key (whose input is
    filler). Zoology returns ``inputs = seq[:-1]`` and ``labels = labels[1:]``; see
    :func:`to_zoology`. Filler randomisation (``random_non_queries``) is a separate step.

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
    return _example(ids, labels, n)


# --------------------------------------------------------------------- sampling
def _sample_zoology(config: TaskConfig, n: int, rng: np.random.Generator) -> dict[str, Any]:
    v, seq_len = config.vocab_size, config.zoology_seq_len(n)
    keys = 1 + rng.choice(v // 2 - 1, size=n, replace=False)  # zoology keys: [1, V/2)
    values = v // 2 + rng.choice(v - v // 2, size=n, replace=False)  # values: [V/2, V)
    space = (seq_len - 2 * n) // 2
    gaps = rng.choice(space, size=n, replace=False, p=zoology_gap_probabilities(space, config.power_a))
    ex = format_zoology_mqar(keys.tolist(), values.tolist(), gaps.tolist(), seq_len)
    if config.random_non_queries:
        # Zoology randomises the zeros of `inputs = seq[:-1]` only, so the last
        # token of the full sequence stays 0; keys and values are never 0.
        noise = rng.integers(0, v, size=seq_len)
        ids = ex["input_ids"]
        ex["input_ids"] = [int(noise[i]) if t == ZOOLOGY_FILLER_ID else t
                           for i, t in enumerate(ids[:-1])] + ids[-1:]
    return ex


def sample_example(config: TaskConfig, length: int, rng: np.random.Generator) -> dict[str, Any]:
    """Draw one example of task length ``length`` from ``rng``.

    Example:
        >>> cfg = TaskConfig(task="stack_copy", vocab_size=10)
        >>> ex = sample_example(cfg, 3, np.random.default_rng(0))
        >>> ex["input_ids"][4:7] == ex["input_ids"][2::-1]
        True
    """
    config.validate_length(length)
    v, n = config.vocab_size, length
    if config.task in ("copy", "stack_copy"):
        x = rng.integers(0, v, size=n).tolist()
        return format_prompt_answer(x, x if config.task == "copy" else x[::-1], config)
    if config.task == "sort":
        x = rng.choice(v, size=n, replace=False).tolist()
        return format_prompt_answer(x, sorted(x), config)
    if config.mqar_format == "zoology":
        return _sample_zoology(config, n, rng)
    keys = rng.choice(v // 2, size=n, replace=False).tolist()
    values = (v // 2 + rng.choice(v - v // 2, size=n, replace=False)).tolist()
    order = rng.permutation(n)[: config.num_queries(n)].tolist()
    return format_mqar(keys, values, order, config)


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


# --------------------------------------------------------------------- datasets
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
    _check_int("num_examples", num_examples, 1)
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
        _check_int("num_examples", num_examples, 1)
    _check_int("num_shards", num_shards, 1)
    return datasets.IterableDataset.from_generator(
        _train_generator,
        features=dataset_features(),
        gen_kwargs={"config_dict": dataclasses.asdict(config), "shard": list(range(num_shards)),
                    "num_shards": num_shards, "num_examples": num_examples},
    )


# ---------------------------------------------------------------- zoology I/O
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

    Lossless: a filler token is appended to the inputs (the last prediction's
    target needs a position) and ``-100`` is prepended to the labels, so
    ``to_zoology(*from_zoology(x, y)) == (x, y)`` and every metric matches zoology's.

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

    Same rules and constraints as zoology (not the same random stream): keys in
    ``[1, V/2)``, values in ``[V/2, V)``, filler 0, power-law query gaps, labels
    pre-shifted (``labels[t]`` is the value to predict after the query key at ``t``).

    Example:
        >>> x, y = zoology_multiquery_ar(vocab_size=64, num_examples=2, input_seq_len=16, num_kv_pairs=2)
        >>> x.shape, y.shape
        (torch.Size([2, 16]), torch.Size([2, 16]))
    """
    config = TaskConfig(task="mqar", mqar_format="zoology", vocab_size=vocab_size,
                        min_len=num_kv_pairs, max_len=num_kv_pairs, mqar_seq_len=input_seq_len,
                        power_a=power_a, random_non_queries=random_non_queries, seed=seed)
    _check_int("num_examples", num_examples, 1)
    rows = [make_example(config, num_kv_pairs, i) for i in range(num_examples)]
    return to_zoology([r["input_ids"] for r in rows], [r["labels"] for r in rows])


# --------------------------------------------------------------------- collator
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


__all__ = [
    "IGNORE_INDEX",
    "MQAR_FORMATS",
    "SPLITS",
    "TASKS",
    "ZOOLOGY_FILLER_ID",
    "TaskCollator",
    "TaskConfig",
    "dataset_features",
    "example_rng",
    "format_mqar",
    "format_prompt_answer",
    "format_zoology_mqar",
    "from_zoology",
    "make_eval_dataset",
    "make_example",
    "make_train_dataset",
    "make_train_example",
    "sample_example",
    "to_zoology",
    "zoology_gap_probabilities",
    "zoology_multiquery_ar",
]
