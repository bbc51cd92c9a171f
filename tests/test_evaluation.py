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


def test_class_scores_take_the_argmax_and_keep_an_empty_set_finite_in_counts():
    probabilities = [[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.1, 0.2, 0.7], [0.4, 0.45, 0.15]]
    result = evaluation.class_scores(probabilities, [0, 1, 1, 0], 3)
    np.testing.assert_array_equal(result.counts, [[1, 1, 0], [0, 1, 1], [0, 0, 0]])
    assert result.accuracy == 0.5
    summary = result.summary(("under", "correct", "over"))
    assert summary["n_pairs"] == 4 and summary["recall"] == {"under": 0.5, "correct": 0.5, "over": 0.0}
    empty = evaluation.class_scores(np.zeros((0, 3)), [], 3)
    assert np.isnan(empty.accuracy) and empty.counts.sum() == 0
