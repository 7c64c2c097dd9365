"""The training side, apart from the init library: what the scripts, the studies and the Space share.

* :mod:`.arguments` — every mimetic option as a flag, and the output-directory policy;
* :mod:`.common` — data sources, columns, the model and its recipe, the metric, the Trainer and the run;
* :mod:`.synthetic` — training on the synthetic tasks (:mod:`hf_mimetic.tasks`).
"""

from .arguments import MimeticArguments, OutputArguments
from .common import (
    DataSourceArguments,
    MimeticTrainer,
    build_model,
    check_output_dir,
    find_column,
    load_metric,
    load_splits,
    resolve_checkpoint,
    train_and_evaluate,
)

__all__ = [
    "DataSourceArguments", "MimeticArguments", "MimeticTrainer", "OutputArguments", "build_model", "check_output_dir",
    "find_column", "load_metric", "load_splits", "resolve_checkpoint", "train_and_evaluate",
]  # fmt: skip
