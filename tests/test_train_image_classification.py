"""End to end: scripts/train_image_classification.py for a few steps on images made here (imagefolder, save_to_disk).

The Hub path (--dataset_name) is the same code as --dataset_path with another loader; the metric is the bundled
evaluate accuracy script (the default), so nothing is downloaded.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_resume_loses_nothing
from datasets import ClassLabel, Dataset, DatasetDict, Features, Image
from PIL import Image as PILImage
from transformers import AutoModelForImageClassification

from hf_mimetic.inspect import structure

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import train_image_classification  # noqa: E402

TINY = ["--image_size", "8", "--patch_size", "4", "--hidden_size", "32", "--num_hidden_layers", "2",
        "--num_attention_heads", "2", "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "8",
        "--disable_tqdm", "true", "--use_cpu", "true", "--seed", "0"]  # fmt: skip
FEW_STEPS = ["--max_steps", "2", "--save_strategy", "no", "--eval_strategy", "no"]


def random_images(count: int, seed: int, size: int = 12) -> list[PILImage.Image]:
    rng = np.random.default_rng(seed)
    return [PILImage.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(count)]


def write_imagefolder(root: Path, classes=("cat", "dog"), per_class: int = 4, seed: int = 0) -> Path:
    for index, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for number, image in enumerate(random_images(per_class, seed + index)):
            image.save(root / name / f"{number}.png")
    return root


def save_cifar100_like(path: Path, columns: tuple[str, str] = ("img", "fine_label")) -> Path:
    """train/validation/test with CIFAR-100's column names (and its unused coarse label)."""
    image_column, label_column = columns
    features = Features(
        {
            image_column: Image(),
            label_column: ClassLabel(names=["a", "b", "c"]),
            "coarse_label": ClassLabel(names=["x"]),
        }
    )
    splits = {
        split: Dataset.from_dict(
            {image_column: random_images(6, seed), label_column: [0, 1, 2] * 2, "coarse_label": [0] * 6},
            features=features,
        )
        for seed, split in enumerate(("train", "validation", "test"))
    }
    DatasetDict(splits).save_to_disk(str(path))
    return path


def test_imagefolder_run_records_mimetic_init(tmp_path):
    train_dir, validation_dir = write_imagefolder(tmp_path / "train"), write_imagefolder(tmp_path / "val", seed=5)
    output = tmp_path / "out"
    results = train_image_classification.main(
        [
            *TINY,
            *FEW_STEPS,
            "--train_dir",
            str(train_dir),
            "--validation_dir",
            str(validation_dir),
            "--output_dir",
            str(output),
            "--mimetic_init",
            "--position_scale",
            "2",
        ]  # fmt: skip
    )
    assert 0.0 <= results["eval_accuracy"] <= 1.0 and "test_accuracy" not in results
    assert json.loads((output / "all_results.json").read_text())["eval_accuracy"] == results["eval_accuracy"]
    config = json.loads((output / "config.json").read_text())
    assert config["mimetic_init"] is True
    assert config["mimetic_config"]["preset"] == "vision" and config["mimetic_config"]["position_scale"] == 2
    assert config["id2label"] == {"0": "cat", "1": "dog"}
    card = (output / "README.md").read_text()
    assert "mimetic-init" in card and '"position_scale": 2' in card and "trained from scratch" in card
    # The structure survives two steps: positive QK and negative VO diagonals in every layer.
    for layer in structure(AutoModelForImageClassification.from_pretrained(output)):
        assert layer["qk_diag"] > 0.1 and layer["vo_diag"] < -0.1


def test_saved_dataset_with_cifar100_columns_reports_validation_and_test(tmp_path):
    dataset = save_cifar100_like(tmp_path / "data")
    output = tmp_path / "out"
    results = train_image_classification.main(
        [*TINY, *FEW_STEPS, "--dataset_path", str(dataset), "--output_dir", str(output)]
        + ["--label_smoothing_factor", "0.1"]  # the Trainer's; accepted like every TrainingArguments flag
    )
    assert {"eval_accuracy", "test_accuracy"} <= results.keys()
    config = json.loads((output / "config.json").read_text())
    assert "mimetic_config" not in config and len(config["id2label"]) == 3  # fine_label, not coarse_label
    assert "trained from scratch" in (output / "README.md").read_text()


def test_resume_from_checkpoint_loses_nothing(tmp_path):
    """With the full augmentation on: the resumed run must replay the same random crops, RandAugment and erasing.
    Resumes with ``--resume_from_checkpoint last`` (the language-model test passes the folder)."""
    dataset = save_cifar100_like(tmp_path / "data")
    argv = [*TINY, "--dataset_path", str(dataset), "--mimetic_init", "--horizontal_flip", "true"]
    assert_resume_loses_nothing(train_image_classification.main, argv, tmp_path, by_name_last=True)


def test_missing_image_or_label_column_is_a_clear_error(tmp_path):
    dataset = save_cifar100_like(tmp_path / "data", columns=("picture", "y"))
    argv = [*TINY, *FEW_STEPS, "--dataset_path", str(dataset), "--output_dir", str(tmp_path / "out")]
    with pytest.raises(
        ValueError,
        match=r"no image column in the dataset: looked for .*'img'.* found \['picture', 'y', 'coarse_label'\]",
    ):
        train_image_classification.main(argv)
    with pytest.raises(ValueError, match=r"no label column in the dataset: .*name it with --label_column"):
        train_image_classification.main([*argv, "--image_column", "picture"])
    with pytest.raises(ValueError, match=r"--label_column 'target' is not a column of the dataset"):
        train_image_classification.main([*argv, "--image_column", "picture", "--label_column", "target"])


def test_bad_settings_are_rejected(tmp_path):
    dataset = str(save_cifar100_like(tmp_path / "data"))
    base = [*FEW_STEPS, "--output_dir", str(tmp_path / "out"), "--dataset_path", dataset]
    with pytest.raises(ValueError, match=r"mimetic options \['qk_beta'\] were given without --mimetic_init"):
        train_image_classification.main([*TINY, *base, "--qk_beta", "0.5"])
    with pytest.raises(ValueError, match="patch_size 3 must divide image_size 8"):
        train_image_classification.main([*TINY, *base, "--patch_size", "3"])
    with pytest.raises(ValueError, match="give exactly one data source"):
        train_image_classification.main([*TINY, *base, "--train_dir", str(tmp_path)])


def test_digit_datasets_are_not_flipped():
    flips = lambda **source: train_image_classification.ImageDataArguments(**source).flips()  # noqa: E731
    assert flips(dataset_name="uoft-cs/cifar10")
    assert not flips(dataset_name="ufldl-stanford/svhn", dataset_config_name="cropped_digits")
    assert flips(dataset_name="ufldl-stanford/svhn", horizontal_flip=True)


def test_help_lists_the_script_and_mimetic_flags(capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_image_classification.main(["--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    assert all(flag in help_text for flag in ("--train_dir", "--random_erasing", "--position_scale"))
