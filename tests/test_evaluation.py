import numpy as np
from sklearn import metrics

from hybridlens.analysis import evaluation


def test_metrics_match_scikit_learn():
    rng = np.random.default_rng(4)
    truth = rng.integers(0, 3, 500)
    predicted = np.where(rng.random(500) < 0.8, truth, rng.integers(0, 3, 500))
    counts = evaluation.confusion_matrix(truth, predicted, 3)
    np.testing.assert_array_equal(counts, metrics.confusion_matrix(truth, predicted, labels=[0, 1, 2]))
    ours = evaluation.precision_recall_f1(counts)
    p, r, f, s = metrics.precision_recall_fscore_support(truth, predicted, labels=[0, 1, 2], zero_division=0)
    for key, theirs in zip(("precision", "recall", "f1", "support"), (p, r, f, s)):
        np.testing.assert_allclose(ours[key], theirs)
    np.testing.assert_allclose(
        evaluation.row_normalise(counts), metrics.confusion_matrix(truth, predicted, labels=[0, 1, 2], normalize="true")
    )


def test_absent_class_gives_zeros_not_nans():
    counts = evaluation.confusion_matrix([0, 0, 1], [0, 1, 1], 3)
    out = evaluation.precision_recall_f1(counts)
    assert out["support"][2] == 0 and out["recall"][2] == 0 and np.isfinite(out["f1"]).all()
    assert np.isfinite(evaluation.row_normalise(counts)).all()
