"""Summary statistics and classification metrics (M21 Table 2, Figs 11-12) as small pure functions."""

from dataclasses import dataclass

import numpy as np


def confusion_matrix(truth, predicted, n_classes):
    """Counts[i, j] = pairs of true class i predicted as class j."""
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(truth, int), np.asarray(predicted, int)), 1)
    return counts


def row_normalise(counts):
    """Each true class's row as fractions (recall on the diagonal); empty rows stay 0."""
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros(counts.shape, float), where=totals > 0)


def precision_recall_f1(counts):
    """Per-class precision, recall, F1 and support from a confusion matrix."""
    diagonal = np.diag(counts).astype(float)
    predicted = counts.sum(axis=0).astype(float)
    support = counts.sum(axis=1)
    precision = np.divide(diagonal, predicted, out=np.zeros_like(diagonal), where=predicted > 0)
    recall = np.divide(diagonal, support, out=np.zeros_like(diagonal), where=support > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(diagonal), where=total > 0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support}


def table(scores, classes):
    """M21 Table 2 as a DataFrame: precision, recall, F1 and support per class."""
    import pandas as pd

    return pd.DataFrame({key: np.asarray(value) for key, value in scores.items()}, index=list(classes))


@dataclass(frozen=True)
class ClassScores:
    """One test set's verdicts against its labels: M21 Table 2's columns and Fig 11's matrix."""

    probabilities: np.ndarray  # (n, classes)
    truth: np.ndarray  # (n,) labels
    counts: np.ndarray  # confusion counts, true class by row
    scores: dict  # precision, recall, f1, support per class
    accuracy: float  # nan for an empty set

    def summary(self, classes):
        """The JSON beside the figure: accuracy, counts and every score keyed by class name."""
        return {
            "accuracy": self.accuracy,
            "n_pairs": int(self.truth.size),
            "confusion_counts": self.counts.tolist(),
            **{key: dict(zip(classes, np.asarray(value, float).tolist())) for key, value in self.scores.items()},
        }


def class_scores(probabilities, truth, n_classes):
    """`ClassScores` of class `probabilities` (n, n_classes) whose true classes are `truth`; argmax decides."""
    probabilities = np.asarray(probabilities, float).reshape(-1, n_classes)
    truth = np.asarray(truth, int)
    predicted = probabilities.argmax(1) if truth.size else np.zeros(0, int)
    counts = confusion_matrix(truth, predicted, n_classes)
    accuracy = float((truth == predicted).mean()) if truth.size else float("nan")
    return ClassScores(probabilities, truth, counts, precision_recall_f1(counts), accuracy)


def describe(values):
    """Robust summary of a column for the JSON beside a figure."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return {"n": 0}
    return {
        "n": int(values.size),
        "mean": float(values.mean()),
        "sd": float(values.std()),
        "median": float(np.median(values)),
        "p05": float(np.percentile(values, 5)),
        "p95": float(np.percentile(values, 95)),
    }


def angle_error(angle, truth):
    """|phi - phi_true| on the 180-degree circle of an ellipse's orientation."""
    difference = np.abs(np.asarray(angle, float) - np.asarray(truth, float)) % 180.0
    return np.minimum(difference, 180.0 - difference)


# A model is right by its truth when all of these hold: a pixelised source absorbs a wrong
# centre or q while theta_E stays near the truth, so theta_E alone does not say it.
CORRECT_BY_TRUTH = {"einstein_radius": 0.05, "centre": 0.1, "axis_ratio": 0.1}  # fraction, arcsec, absolute


def correct_by_truth(theta, q, centre_y, centre_x, truth_theta, truth_q, truth_y, truth_x, tolerances=CORRECT_BY_TRUTH):
    """Whether each fitted model lies within `tolerances` of its truth in theta_E, centre and q (arrays)."""
    theta, truth_theta = np.asarray(theta, float), np.asarray(truth_theta, float)
    centre_error = np.hypot(np.asarray(centre_y, float) - truth_y, np.asarray(centre_x, float) - truth_x)
    return (
        (np.abs(theta / truth_theta - 1.0) <= tolerances["einstein_radius"])
        & (centre_error <= tolerances["centre"])
        & (np.abs(np.asarray(q, float) - truth_q) <= tolerances["axis_ratio"])
    )
