"""Synthetic sequence tasks for training and evaluating causal LMs (thesis §3.3.1), one module per task.

* :mod:`.copy` — ``copy`` and ``stack_copy``;  :mod:`.sort` — ``sort``;  :mod:`.mqar` — ``mqar`` (native and zoology
  formats, :mod:`.zoology`). Every task is a :class:`~.base.Task` in the registry :data:`TASKS`.
* :mod:`.base` — :class:`TaskConfig`, seeding, the example layout; :mod:`.data` — ``datasets`` and the collator;
  :mod:`.metrics` — teacher-forced and greedy evaluation.

Example:
    >>> cfg = TaskConfig(task="copy", vocab_size=10, min_len=1, max_len=8, seed=0)
    >>> ex = make_example(cfg, length=3, index=0)
    >>> ex["input_ids"][3] == cfg.sep_token_id, ex["labels"][:4]
    (True, [-100, -100, -100, -100])
"""

from . import copy, mqar, sort  # noqa: F401  (registers the tasks)
from .base import (
    IGNORE_INDEX,
    MQAR_FORMATS,
    SPLITS,
    TASKS,
    Task,
    TaskConfig,
    example_rng,
    format_prompt_answer,
    make_example,
    make_train_example,
    register,
    sample_example,
)
from .data import TaskCollator, dataset_features, make_eval_dataset, make_train_dataset
from .mqar import format_mqar, num_queries
from .zoology import (
    ZOOLOGY_FILLER_ID,
    format_zoology_mqar,
    from_zoology,
    to_zoology,
    zoology_gap_probabilities,
    zoology_multiquery_ar,
)

__all__ = [
    "IGNORE_INDEX", "MQAR_FORMATS", "SPLITS", "TASKS", "ZOOLOGY_FILLER_ID", "Task", "TaskCollator", "TaskConfig",
    "dataset_features", "example_rng", "format_mqar", "format_prompt_answer", "format_zoology_mqar", "from_zoology",
    "make_eval_dataset", "make_example", "make_train_dataset", "make_train_example", "num_queries", "register",
    "sample_example", "to_zoology", "zoology_gap_probabilities", "zoology_multiquery_ar",
]  # fmt: skip
