"""What the training scripts share: data loading, column detection, the model and its recipe, the metric, the
output-directory policy, and the run.

``scripts/train_image_classification.py`` and ``scripts/train_language_model.py`` train from scratch with the HF
Trainer, in the style of transformers' ``run_image_classification.py`` and ``run_clm.py``; ``scripts/train_synthetic.py``
shares the model, recipe, output and checkpoint handling. Each script defines its own argument dataclasses
(subclassing :class:`DataSourceArguments`) and preprocessing; the rest is here:

- :func:`load_splits`: ``--dataset_name`` (Hub), ``--dataset_path`` (``save_to_disk``) or local files, as a
  ``DatasetDict`` with ``train``, ``validation`` (carved from train when the dataset has none) and maybe ``test``;
- :func:`find_column`: the image/label/text column by name, with a clear error listing the columns found;
- :func:`check_output_dir`: refuse an ``--output_dir`` that holds an earlier run unless resuming or overwriting;
- :func:`build_model`: ``from_config`` with or without mimetic init (every :data:`MimeticArguments` flag); a resumed
  run takes the recipe its checkpoint was trained with;
- :func:`load_metric`: an ``evaluate`` metric by Hub name or local script (the default ships with the package);
- :class:`MimeticTrainer` and :func:`train_and_evaluate`: train (resuming if asked), save, evaluate every split,
  write ``all_results.json`` and a model card that records the init, push to the Hub if asked.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from datasets import Dataset, DatasetDict, load_dataset, load_from_disk
from transformers import PretrainedConfig, PreTrainedModel, Trainer, TrainingArguments
from transformers.trainer_utils import get_last_checkpoint

from ..catalog import KINDS
from .evaluate_metrics import ACCURACY

logger = logging.getLogger(__name__)

#: Split names taken as the validation set, in order. Without one, a dataset's ``test`` split is the validation set
#: (CIFAR-10/100 and SVHN only have train and test; the thesis reports test accuracy).
VALIDATION_SPLITS = ("validation", "valid", "val")


@dataclass
class DataSourceArguments:
    """Where the data comes from: exactly one of ``--dataset_name``, ``--dataset_path`` or the script's local files."""

    dataset_name: Optional[str] = field(default=None, metadata={"help": "a dataset on the Hub, e.g. uoft-cs/cifar10"})
    dataset_config_name: Optional[str] = field(
        default=None, metadata={"help": "its configuration, e.g. cropped_digits"}
    )
    dataset_path: Optional[str] = field(default=None, metadata={"help": "a dataset saved with save_to_disk"})
    validation_split_percentage: float = field(
        default=5,
        metadata={"help": "percent of train held out for validation when the dataset has no validation or test split"},
    )
    max_train_samples: Optional[int] = field(default=None, metadata={"help": "use only this many training examples"})
    max_eval_samples: Optional[int] = field(
        default=None, metadata={"help": "use only this many examples per eval split"}
    )
    metric: str = field(
        default=ACCURACY,
        metadata={
            "help": "evaluate metric: a Hub name (e.g. accuracy) or a local script; default: the bundled accuracy"
        },
    )

    #: The script's flags for local files, for error messages.
    local_flags = "local files"

    def local_source(self) -> Optional[tuple[str, dict[str, str], dict[str, Any]]]:
        """``(builder, data_files, builder kwargs)`` for local files, or ``None`` if none were given."""
        return None

    def __post_init__(self) -> None:
        given = [self.dataset_name is not None, self.dataset_path is not None, self.local_source() is not None]
        if sum(given) != 1:
            raise ValueError(f"give exactly one data source: --dataset_name, --dataset_path or {self.local_flags}")
        if not 0 < self.validation_split_percentage < 100:
            raise ValueError(f"validation_split_percentage must be in (0, 100), got {self.validation_split_percentage}")


def load_splits(args: DataSourceArguments, seed: int) -> DatasetDict:
    """``train``, ``validation`` and, if the source has one besides validation, ``test``.

    The validation split carved from train (when needed) is the same for every ``seed``; ``seed`` only picks the
    ``--max_train_samples`` subset.
    """
    if args.dataset_name is not None:
        raw = load_dataset(args.dataset_name, args.dataset_config_name)
    elif args.dataset_path is not None:
        raw = load_from_disk(args.dataset_path)
    else:
        builder, data_files, kwargs = args.local_source()
        raw = load_dataset(builder, data_files=data_files, **kwargs)
    if isinstance(raw, Dataset):
        raw = DatasetDict(train=raw)
    if "train" not in raw:
        raise ValueError(f"the dataset has no 'train' split; its splits: {sorted(raw)}")
    if len(raw["train"]) == 0:
        raise ValueError("the training data is empty")
    splits = {"train": raw["train"]}
    validation = next((name for name in VALIDATION_SPLITS if name in raw), None)
    if validation is not None:
        splits["validation"] = raw[validation]
        if "test" in raw:
            splits["test"] = raw["test"]
    elif "test" in raw:
        splits["validation"] = raw["test"]
    else:
        held_out = math.ceil(len(raw["train"]) * args.validation_split_percentage / 100)  # as train_test_split
        if held_out < 1 or held_out >= len(raw["train"]):
            raise ValueError(
                f"cannot hold out {args.validation_split_percentage}% of {len(raw['train'])} training examples for "
                "validation; give a validation split (e.g. --validation_file or --validation_dir) or more data"
            )
        # Fixed seed: the held-out set must not change with --seed, or seeds would be scored on different data.
        carved = raw["train"].train_test_split(test_size=args.validation_split_percentage / 100, seed=0)
        splits = {"train": carved["train"], "validation": carved["test"]}
    if args.max_train_samples is not None:
        splits["train"] = (
            splits["train"].shuffle(seed=seed).select(range(min(args.max_train_samples, len(splits["train"]))))
        )
    if args.max_eval_samples is not None:
        for name in ("validation", "test"):
            if name in splits:
                splits[name] = splits[name].select(range(min(args.max_eval_samples, len(splits[name]))))
    return DatasetDict(splits)


def find_column(columns: Sequence[str], candidates: Sequence[str], override: Optional[str], role: str) -> str:
    """The column playing ``role`` (e.g. "image"): ``override`` if given, else the first of ``candidates`` present."""
    if override is not None:
        if override not in columns:
            raise ValueError(
                f"--{role}_column {override!r} is not a column of the dataset; its columns: {list(columns)}"
            )
        return override
    for name in candidates:
        if name in columns:
            return name
    raise ValueError(
        f"no {role} column in the dataset: looked for {list(candidates)}, found {list(columns)}; "
        f"name it with --{role}_column"
    )


def check_output_dir(args: TrainingArguments, overwrite: bool) -> None:
    """Refuse to train into an ``output_dir`` that already holds files, unless the run resumes
    (``--resume_from_checkpoint``) or ``overwrite`` (``--overwrite_output_dir``): the Trainer's checkpoint rotation
    would delete the earlier run's checkpoints and the final save would replace its model."""
    if overwrite or args.resume_from_checkpoint is not None or not os.path.isdir(args.output_dir):
        return
    held = sorted(os.listdir(args.output_dir))
    if held:
        shown = ", ".join(held[:4]) + (", ..." if len(held) > 4 else "")
        raise ValueError(
            f"--output_dir {args.output_dir} already holds an earlier run ({shown}). Pass --resume_from_checkpoint last "
            "to continue it, --overwrite_output_dir to train into it anyway, or choose another --output_dir."
        )


def run_recipe(mimetic_init: bool, overrides: dict[str, Any], checkpoint: Optional[str]) -> tuple[bool, Optional[dict]]:
    """``(mimetic_init, mimetic_config)`` for a run: the flags' or, when resuming, the checkpoint's.

    A checkpoint's weights replace the init anyway, but its recipe must survive: the config and model card record it,
    and options such as a frozen position table act during training. Flags that contradict it are an error.
    """
    if not mimetic_init and overrides:
        raise ValueError(f"mimetic options {sorted(overrides)} were given without --mimetic_init")
    if checkpoint is None:
        return mimetic_init, (overrides if mimetic_init else None)
    with open(os.path.join(checkpoint, "config.json"), encoding="utf-8") as handle:
        saved = json.load(handle)
    saved_init, saved_recipe = bool(saved.get("mimetic_init", False)), saved.get("mimetic_config")
    if mimetic_init and not saved_init:
        raise ValueError(f"--mimetic_init was given, but {checkpoint} was trained with the default initialization")
    conflicts = {k: (v, (saved_recipe or {}).get(k)) for k, v in overrides.items() if (saved_recipe or {}).get(k) != v}
    if conflicts:
        detail = ", ".join(f"{k}: flag {flag!r}, checkpoint {was!r}" for k, (flag, was) in conflicts.items())
        raise ValueError(f"mimetic options differ from the checkpoint {checkpoint} being resumed ({detail})")
    if saved_init and not mimetic_init:
        logger.warning("resuming %s, trained with mimetic init: its recipe is kept (config and model card)", checkpoint)
    return saved_init, saved_recipe


def build_model(
    auto_class: type, config: PretrainedConfig, mimetic_init: bool, mimetic_args: Any, checkpoint: Optional[str] = None
) -> PreTrainedModel:
    """``auto_class.from_config(config)``, with mimetic init and the flags' overrides if ``mimetic_init``; a run that
    resumes ``checkpoint`` takes its recipe (:func:`run_recipe`)."""
    mimetic_init, recipe = run_recipe(mimetic_init, mimetic_args.overrides(), checkpoint)
    if not mimetic_init:
        return auto_class.from_config(config)
    return auto_class.from_config(config, mimetic_init=True, mimetic_config=recipe)


def load_metric(name_or_path: str):
    """``evaluate.load(name_or_path)``, with a hint for machines that cannot reach the Hub."""
    import evaluate

    try:
        # In memory: every process of a distributed run computes the metric on the gathered predictions, and
        # in-memory metrics cannot collide on evaluate's cache files.
        return evaluate.load(name_or_path, keep_in_memory=True)
    except (FileNotFoundError, ConnectionError, OSError) as error:
        raise ValueError(
            f"could not load the evaluate metric {name_or_path!r} ({error}); without the Hub, pass a local metric "
            f"script, e.g. the bundled accuracy: --metric {ACCURACY}"
        ) from error


def init_description(config: PretrainedConfig) -> str:
    """A model-card section saying how the weights were initialised (the recipe is also in config.json)."""
    if not getattr(config, "mimetic_init", False):
        return (
            "\n## Initialization\n\nTrained from scratch with transformers' default initialization (no mimetic init).\n"
        )
    kinds = (config.mimetic_config or {}).get("initialized", {})
    parts = "; ".join(KINDS[kind].description for kind in kinds if kind in KINDS)
    recipe = json.dumps(config.mimetic_config, indent=2)
    return (
        "\n## Initialization\n\nTrained from scratch with mimetic initialization (hf_mimetic; Trockman & Kolter, "
        f"thesis *Mimetic Initialization for Deep Neural Networks*, CMU-CS-25-114): {parts}. The recipe "
        f"(`config.mimetic_config`):\n\n```json\n{recipe}\n```\n"
    )


class MimeticTrainer(Trainer):
    """A Trainer whose model card (written by ``create_model_card`` and by ``push_to_hub``) records the init, and
    whose resume (and best-model reload) restores every weight of models that save in their original key format."""

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Optional[PreTrainedModel] = None) -> None:
        model = self.model if model is None else model
        if not self._loads_plain_weights(model):
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        self._load_weights(resume_from_checkpoint, model)

    def _load_best_model(self) -> None:
        if not self._loads_plain_weights(self.model):
            return super()._load_best_model()
        self._load_weights(self.state.best_model_checkpoint, self.model)

    def _loads_plain_weights(self, model: Any) -> bool:
        return isinstance(model, PreTrainedModel) and not (self.is_deepspeed_enabled or self.is_fsdp_enabled)

    @staticmethod
    def _load_weights(folder: str, model: PreTrainedModel) -> None:
        """Load ``folder``'s weights through ``from_pretrained``, which renames keys saved in the original format.

        transformers 5 saves ViT as ``encoder.layer.N.attention.attention.query`` (its original format) but names the
        module ``layers.N.attention.q_proj``; the Trainer's own loader (``load_state_dict(strict=False)``) then loads
        no layer at all and resumes from the initial weights (huggingface/transformers#43701).
        """
        loaded = type(model).from_pretrained(folder)
        model.load_state_dict(loaded.state_dict(), strict=True)

    def create_model_card(self, *args: Any, **kwargs: Any) -> None:
        config = self.model.config
        if getattr(config, "mimetic_init", False):
            kwargs["tags"] = [*(kwargs.get("tags") or []), "mimetic-init"]
        # transformers takes the empty _name_or_path of a model built from a config for a base model ("a fine-tuned
        # version of []"); a folder there makes it write "trained from scratch".
        name_or_path, config._name_or_path = config._name_or_path, self.args.output_dir
        try:
            super().create_model_card(*args, **kwargs)
        finally:
            config._name_or_path = name_or_path
        if self.is_world_process_zero():
            with open(os.path.join(self.args.output_dir, "README.md"), "a", encoding="utf-8") as card:
                card.write(init_description(self.model.config))


def resolve_checkpoint(value: Optional[str], output_dir: str) -> Optional[str]:
    """``--resume_from_checkpoint``: a checkpoint folder, or ``last`` for the newest ``checkpoint-*`` in output_dir."""
    if value != "last":
        if value is not None and not os.path.isdir(value):
            raise ValueError(f"--resume_from_checkpoint {value}: no such checkpoint folder (or pass last)")
        return value
    last = get_last_checkpoint(output_dir) if os.path.isdir(output_dir) else None
    if last is None:
        raise ValueError(f"--resume_from_checkpoint last: no checkpoint-* folder in {output_dir}")
    return last


def train_and_evaluate(
    trainer: MimeticTrainer,
    splits: DatasetDict,
    data_args: DataSourceArguments,
    card: dict[str, Any],
    derived_metrics: Callable[[dict[str, float], str], dict[str, float]] = lambda metrics, prefix: {},
) -> dict[str, float]:
    """Train (resuming from ``args.resume_from_checkpoint``), save the model, evaluate the ``validation`` (metric
    prefix ``eval``) and ``test`` splits of ``splits``, write metrics (``all_results.json``) and the model card, and
    push to the Hub if ``args.push_to_hub``. Returns all metrics.

    ``derived_metrics(metrics, prefix)`` adds metrics computed from an evaluation's (e.g. perplexity from the loss);
    ``card`` holds the model-card fields of ``Trainer.create_model_card`` (the Hub dataset, if any, is added here).
    """
    args: TrainingArguments = trainer.args
    eval_splits = {"eval": splits["validation"], **({"test": splits["test"]} if "test" in splits else {})}
    if data_args.dataset_name is not None:
        card = {**card, "dataset": data_args.dataset_name}
    train_output = trainer.train(
        resume_from_checkpoint=resolve_checkpoint(args.resume_from_checkpoint, args.output_dir)
    )
    trainer.save_model()  # weights, config.json (with the mimetic recipe) and the tokenizer, if any
    trainer.log_metrics("train", train_output.metrics)
    trainer.save_metrics("train", train_output.metrics)
    trainer.save_state()
    results = dict(train_output.metrics)
    for prefix, dataset in eval_splits.items():
        metrics = trainer.evaluate(dataset, metric_key_prefix=prefix)
        metrics.update(derived_metrics(metrics, prefix))
        trainer.log_metrics(prefix, metrics)
        trainer.save_metrics(prefix, metrics)
        results.update(metrics)
    if args.push_to_hub:
        trainer.push_to_hub(**card)
    else:
        trainer.create_model_card(**card)
    return results
