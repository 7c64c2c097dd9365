"""Metric scripts for ``evaluate.load`` that ship with the package, so the training scripts evaluate offline.

``evaluate.load("accuracy")`` fetches the metric's script from the Hub; ``evaluate.load(ACCURACY)`` loads the copy
here, which computes the same number (the fraction of predictions equal to their references).
"""

from pathlib import Path

#: Path of the bundled accuracy metric, for ``evaluate.load`` and the scripts' ``--metric``.
ACCURACY = str(Path(__file__).with_name("accuracy.py"))
