"""Train an image classifier from scratch (ViT, DeiT, ConvMixer, ConvNeXt), with or without mimetic initialization.

    python scripts/train_image_classification.py --output_dir runs/cifar10 --mimetic_init
    accelerate launch --config_file configs/accelerate/single_gpu.yaml scripts/train_image_classification.py \
        --dataset_name uoft-cs/cifar100 --output_dir runs/cifar100 --mimetic_init --bf16

Defaults are the thesis's CIFAR pipeline (§3.2.4): ViT-Tiny (width 192, depth 12, 3 heads, patch 2, 32 px), RandAugment
+ random crop + flip + random erasing (Cutout), AdamW lr 3e-3, weight decay 0.01, batch 512, 100 epochs, warmup and
cosine decay (``--lr_scheduler_type linear`` gives the triangular schedule); ``--model_type`` picks the architecture
(``convmixer``: the thesis's ConvMixer, ``--kernel_size``; ``convnext``: two stages); label smoothing with the Trainer's
``--label_smoothing_factor``. Data: ``--dataset_name`` (Hub; image and
label columns found by name, e.g. CIFAR-100's ``img``/``fine_label``), ``--dataset_path`` (``save_to_disk``) or
``--train_dir/--validation_dir`` (imagefolder). Every mimetic option is a flag (``--qk false``, ``--position_scale 2``);
unset ones keep the model type's preset. Validation (and test) accuracy go to <output_dir>/all_results.json; the
model and its image processor to <output_dir>, so that ``pipeline("image-classification", model=<output_dir>)`` works.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any, Optional

import torch
from datasets import Image
from torchvision.transforms import v2
from transformers import AutoConfig, HfArgumentParser, TrainingArguments, ViTImageProcessor, set_seed

import hf_mimetic  # noqa: F401  (teaches from_config the mimetic_init flag)
from hf_mimetic import transfer_filter_covariance
from hf_mimetic.catalog import family
from hf_mimetic.loading import load_saved
from hf_mimetic.train.sizes import IMAGE_CONFIGS, ImageSizes, image_types
from hf_mimetic.train import (
    DataSourceArguments,
    MimeticArguments,
    MimeticTrainer,
    OutputArguments,
    build_model,
    check_output_dir,
    find_column,
    load_metric,
    load_splits,
    resolve_checkpoint,
    train_and_evaluate,
)

DEFAULT_DATASET = "uoft-cs/cifar10"
IMAGE_COLUMNS = ("image", "img", "pixel_values")
LABEL_COLUMNS = ("label", "labels", "fine_label", "class", "target")
#: Datasets of digits: a horizontal flip changes the class, so it is off by default for these.
DIGIT_DATASETS = ("svhn", "mnist", "digits")
# The ViT image processor's default; the thesis does not give its normalisation.
MEAN, STD = [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]

# The thesis's recipe (§3.2.4); warmup is our choice (the thesis does not give it). Any flag overrides these.
THESIS_DEFAULTS = dict(
    learning_rate=3e-3, weight_decay=0.01, per_device_train_batch_size=512, per_device_eval_batch_size=512,
    num_train_epochs=100, lr_scheduler_type="cosine", warmup_steps=0.05, eval_strategy="epoch", save_strategy="epoch",
    save_total_limit=2, logging_steps=50, remove_unused_columns=False, report_to="none",
)  # fmt: skip


@dataclass
class ModelArguments:
    """The model. Defaults: the thesis's CIFAR ViT-Tiny."""

    model_type: str = field(default="vit", metadata={"help": f"one of {image_types()}"})
    image_size: int = field(default=32, metadata={"help": "input resolution (images are resized to it)"})
    patch_size: int = field(default=2)
    hidden_size: int = field(default=192, metadata={"help": "width d (ConvNeXt: of its first stage)"})
    num_hidden_layers: int = field(default=12, metadata={"help": "depth (blocks)"})
    num_attention_heads: int = field(default=3, metadata={"help": "attention models"})
    intermediate_size: Optional[int] = field(default=None, metadata={"help": "MLP width (default: 4 × hidden_size)"})
    kernel_size: int = field(default=9, metadata={"help": "ConvMixer's depthwise filter size"})
    mimetic_init: bool = field(default=False, metadata={"help": "initialise with hf_mimetic's mimetic init"})
    filter_covariance_from: Optional[str] = field(
        default=None,
        metadata={"help": "covariance transfer (thesis §3.1.1): draw the depthwise filters from the covariances of this "
                          "trained model's (a folder or Hub id)"},
    )  # fmt: skip

    def __post_init__(self) -> None:
        if self.model_type not in image_types():
            raise ValueError(f"model_type must be one of {image_types()}, got {self.model_type!r}")
        for name in ("image_size", "patch_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "kernel_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.image_size % self.patch_size:
            raise ValueError(f"patch_size {self.patch_size} must divide image_size {self.image_size}")
        self.config(num_labels=2)  # raises for sizes the model type cannot build

    def config(self, num_labels: int, **labels: Any):
        """The transformers config of ``model_type`` for these sizes."""
        sizes = ImageSizes(
            image_size=self.image_size, patch_size=self.patch_size, hidden_size=self.hidden_size,
            num_layers=self.num_hidden_layers, num_labels=num_labels, num_heads=self.num_attention_heads,
            intermediate_size=self.intermediate_size, kernel_size=self.kernel_size,
        )  # fmt: skip
        kwargs = IMAGE_CONFIGS[self.model_type](sizes)
        return AutoConfig.for_model(self.model_type, **kwargs, num_labels=num_labels, **labels)


@dataclass
class ImageDataArguments(DataSourceArguments):
    """The images, their columns and the augmentation."""

    dataset_name: Optional[str] = field(
        default=None,
        metadata={"help": f"a dataset on the Hub (default, when no other source is given: {DEFAULT_DATASET})"},
    )
    train_dir: Optional[str] = field(default=None, metadata={"help": "imagefolder of training images (class/xxx.png)"})
    validation_dir: Optional[str] = field(default=None, metadata={"help": "imagefolder of validation images"})
    image_column: Optional[str] = field(default=None, metadata={"help": f"default: the first of {IMAGE_COLUMNS}"})
    label_column: Optional[str] = field(default=None, metadata={"help": f"default: the first of {LABEL_COLUMNS}"})
    no_augment: bool = field(default=False, metadata={"help": "train without augmentation (resize and normalise only)"})
    horizontal_flip: Optional[bool] = field(default=None, metadata={"help": f"default: on, off for {DIGIT_DATASETS}"})
    rand_augment_ops: int = field(default=2, metadata={"help": "RandAugment: transforms per image (0: off)"})
    rand_augment_magnitude: int = field(default=9, metadata={"help": "RandAugment magnitude, 0..30"})
    random_erasing: float = field(default=0.25, metadata={"help": "probability of erasing a random box (Cutout)"})

    local_flags = "--train_dir (and --validation_dir)"

    def __post_init__(self) -> None:
        if self.dataset_name is None and self.dataset_path is None and self.train_dir is None:
            self.dataset_name = DEFAULT_DATASET
        for flag, folder in (("--train_dir", self.train_dir), ("--validation_dir", self.validation_dir)):
            if folder is not None and not os.path.isdir(folder):
                raise ValueError(f"{flag} {folder}: no such folder (an imagefolder: one sub-folder of images per class)")
            if folder is not None and not any(files for _, _, files in os.walk(folder)):
                raise ValueError(f"{flag} {folder} holds no files (an imagefolder: one sub-folder of images per class)")
        if self.validation_dir is not None and self.train_dir is None:
            raise ValueError("--validation_dir needs --train_dir")
        if not 0 <= self.random_erasing <= 1:
            raise ValueError(f"random_erasing must be a probability in [0, 1], got {self.random_erasing}")
        super().__post_init__()

    def local_source(self) -> Optional[tuple[str, dict[str, str], dict[str, Any]]]:
        """The imagefolder builder over ``--train_dir`` (and ``--validation_dir``); class = parent folder name."""
        if self.train_dir is None:
            return None
        files = {"train": os.path.join(self.train_dir, "**")}
        if self.validation_dir is not None:
            files["validation"] = os.path.join(self.validation_dir, "**")
        return "imagefolder", files, {}

    def flips(self) -> bool:
        """``--horizontal_flip``, or by default: on unless the source's name says digits."""
        if self.horizontal_flip is not None:
            return self.horizontal_flip
        source = (self.dataset_name or self.dataset_path or self.train_dir or "").lower()
        return not any(name in source for name in DIGIT_DATASETS)


def image_transforms(args: ImageDataArguments, size: int) -> tuple[v2.Compose, v2.Compose]:
    """(train, eval) transforms from a PIL image to a normalised float tensor of shape (3, size, size)."""
    to_tensor = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)]
    resize = v2.Resize((size, size), antialias=True)
    evaluation = v2.Compose([resize, *to_tensor])
    if args.no_augment:
        return evaluation, evaluation
    augment = [resize, v2.RandomCrop(size, padding=size // 8, padding_mode="reflect")]
    if args.flips():
        augment.append(v2.RandomHorizontalFlip())
    if args.rand_augment_ops:
        augment.append(v2.RandAugment(num_ops=args.rand_augment_ops, magnitude=args.rand_augment_magnitude))
    # value 0 is the mean grey after normalisation: the box is blanked as in Cutout.
    train = v2.Compose([*augment, *to_tensor, v2.RandomErasing(p=args.random_erasing, value=0)])
    return train, evaluation


def collate(examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Stack transformed examples into a ViT batch."""
    return {
        "pixel_values": torch.stack([example["pixel_values"] for example in examples]),
        "labels": torch.tensor([example["labels"] for example in examples]),
    }


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = HfArgumentParser((ModelArguments, ImageDataArguments, MimeticArguments, OutputArguments, TrainingArguments))
    parser.set_defaults(**THESIS_DEFAULTS)
    model_args, data_args, mimetic_args, output_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    check_output_dir(training_args, output_args.overwrite_output_dir)
    checkpoint = resolve_checkpoint(training_args.resume_from_checkpoint, training_args.output_dir)

    splits = load_splits(data_args, seed=training_args.seed)
    columns = splits["train"].column_names
    image_column = find_column(columns, IMAGE_COLUMNS, data_args.image_column, "image")
    if data_args.train_dir is not None and data_args.label_column is None and not set(LABEL_COLUMNS) & set(columns):
        raise ValueError(
            f"--train_dir {data_args.train_dir} gave no labels: an imagefolder needs one sub-folder per class, and at "
            "least two classes (the class of an image is the name of its folder)"
        )
    label_column = find_column(columns, LABEL_COLUMNS, data_args.label_column, "label")
    if isinstance(splits["train"].features[label_column], Image):
        raise ValueError(f"--label_column {label_column!r} holds images, not labels; the dataset's columns: {columns}")
    names = getattr(splits["train"].features[label_column], "names", None)
    # Labels that are not a ClassLabel (strings, sparse integers) are numbered in sorted order.
    label_ids = None if names else {value: i for i, value in enumerate(sorted(splits["train"].unique(label_column)))}
    names = names or [str(value) for value in label_ids]

    train_transform, eval_transform = image_transforms(data_args, model_args.image_size)

    def transform_with(transform):
        def apply(batch: dict[str, list]) -> dict[str, list]:
            return {
                "pixel_values": [transform(image.convert("RGB")) for image in batch[image_column]],
                "labels": batch[label_column] if label_ids is None else [label_ids[v] for v in batch[label_column]],
            }

        return apply

    splits["train"].set_transform(transform_with(train_transform))
    for name in ("validation", "test"):
        if name in splits:
            splits[name].set_transform(transform_with(eval_transform))

    config = model_args.config(len(names), id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)})
    set_seed(training_args.seed)  # the init depends only on --seed
    auto = family(model_args.model_type).auto()
    model = build_model(auto, config, model_args.mimetic_init, mimetic_args, checkpoint)
    if model_args.filter_covariance_from is not None and checkpoint is None:
        transfer_filter_covariance(load_saved(model_args.filter_covariance_from), model)

    metric = load_metric(data_args.metric)

    def compute_metrics(eval_prediction) -> dict[str, float]:
        return metric.compute(predictions=eval_prediction.predictions.argmax(-1), references=eval_prediction.label_ids)

    # Saved with the model, so that pipeline("image-classification", model=output_dir) preprocesses like evaluation.
    size = model_args.image_size
    processor = ViTImageProcessor(size={"height": size, "width": size}, image_mean=MEAN, image_std=STD)
    trainer = MimeticTrainer(
        model=model, args=training_args, train_dataset=splits["train"], eval_dataset=splits["validation"],
        data_collator=collate, compute_metrics=compute_metrics, processing_class=processor,
    )  # fmt: skip
    card = {"tasks": "image-classification", "tags": ["image-classification", model_args.model_type]}
    return train_and_evaluate(trainer, splits, data_args, card)


if __name__ == "__main__":
    main(sys.argv[1:])
