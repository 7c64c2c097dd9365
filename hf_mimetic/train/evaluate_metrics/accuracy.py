"""Accuracy as an ``evaluate`` metric: the fraction of predictions equal to their references.

The same number, inputs and output key (``accuracy``) as the Hub's ``evaluate.load("accuracy")``, computed with
numpy instead of scikit-learn, loaded without network access: ``evaluate.load(hf_mimetic.evaluate_metrics.ACCURACY)``.
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = "Accuracy: the fraction of predictions that equal their references, optionally weighted per sample."


class Accuracy(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description="predictions and references: lists of integer labels; sample_weight: optional weights",
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references, normalize: bool = True, sample_weight=None) -> dict[str, float]:
        correct = np.asarray(predictions) == np.asarray(references)
        weights = np.ones(len(correct)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        total = float(np.dot(correct, weights))
        return {"accuracy": total / float(weights.sum()) if normalize else total}
