"""Tests of actionvlad_tf.evaluation.metrics: single-label accuracies and the Charades mAP / wAP."""

import csv

import numpy as np
import pytest
import sklearn.metrics
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from actionvlad_tf.evaluation import metrics


def test_top_k_hand_example_with_a_tie():
    scores = np.array(
        [
            [1.0, 1.0, 0.0],  # class 0 and 1 tie: argmax says 0
            [0.0, 2.0, 3.0],
            [5.0, 4.0, 3.0],
        ]
    )
    labels = np.array([1, 2, 2])
    np.testing.assert_array_equal(metrics.label_ranks(scores, labels), [1, 0, 2])
    assert metrics.top_k_accuracy(scores, labels, 1) == pytest.approx(100 / 3)
    assert metrics.top_k_accuracy(scores, labels, 2) == pytest.approx(200 / 3)
    assert metrics.top_k_accuracy(scores, labels, 3) == 100.0


@settings(max_examples=50, deadline=None)
@given(
    hnp.arrays(np.int8, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=8), elements=st.integers(-2, 2)),
    st.data(),
)
def test_top1_is_argmax_accuracy_even_with_ties(scores, data):
    labels = np.array(
        data.draw(st.lists(st.integers(0, scores.shape[1] - 1), min_size=scores.shape[0], max_size=scores.shape[0]))
    )
    expected = 100.0 * np.mean(scores.argmax(axis=1) == labels)
    assert metrics.top_k_accuracy(scores, labels, 1) == pytest.approx(expected)


def test_top5_and_confusion_and_mean_class_agree_with_sklearn():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(200, 12))  # continuous: no ties
    labels = rng.integers(0, 12, size=200)
    expected_top5 = 100 * sklearn.metrics.top_k_accuracy_score(labels, scores, k=5, labels=np.arange(12))
    assert metrics.top_k_accuracy(scores, labels, 5) == pytest.approx(expected_top5)
    predictions = scores.argmax(axis=1)
    np.testing.assert_array_equal(
        metrics.confusion_matrix(labels, predictions, 12),
        sklearn.metrics.confusion_matrix(labels, predictions, labels=np.arange(12)),
    )
    assert metrics.mean_class_accuracy(scores, labels) == pytest.approx(
        100 * sklearn.metrics.balanced_accuracy_score(labels, predictions)
    )


def test_evaluate_logits_hand_example():
    scores = np.array([[3.0, 1.0, 0.0], [0.0, 1.0, 3.0], [0.0, 2.0, 1.0], [1.0, 0.0, 2.0]])
    labels = np.array([0, 1, 1, 0])
    result = metrics.evaluate_logits(scores, labels, ["run", "jump", "sit"])
    assert result["top1"] == 50.0
    assert result["top5"] == 100.0
    np.testing.assert_array_equal(result["confusion"], [[1, 0, 1], [0, 1, 1], [0, 0, 0]])
    assert result["per_class_accuracy"] == {"run": 50.0, "jump": 50.0, "sit": None}  # no "sit" video
    assert result["mean_class_accuracy"] == 50.0
    assert (result["num_videos"], result["num_classes"]) == (4, 3)


@pytest.mark.parametrize(
    "scores, labels, message",
    [
        (np.zeros((2, 3)), np.array([0, 3]), "outside"),
        (np.zeros((2, 3)), np.array([0, -1]), "unlabelled"),
        (np.zeros((2, 3)), np.array([0]), "shape"),
        (np.array([[0.0, np.nan, 1.0]]), np.array([0]), "NaN"),
        (np.zeros(3), np.array([0]), "videos, classes"),
    ],
)
def test_single_label_metrics_reject_bad_input(scores, labels, message):
    with pytest.raises(ValueError, match=message):
        metrics.top_k_accuracy(scores, labels)


# --- Charades ---------------------------------------------------------------------------------------

HAND_SCORES = np.array([[0.9, 0.1], [0.8, 0.4], [0.7, 0.4], [0.6, 0.2], [0.5, 0.3]])
HAND_LABELS = np.array([[1, 0], [0, 0], [1, 1], [0, 1], [1, 0]], dtype=bool)


def test_average_precision_hand_example_with_stable_tie_order():
    # Class 0: positives at ranks 1, 3, 5 -> (1 + 2/3 + 3/5) / 3 = 34/45.
    # Class 1: rows 1 (negative) and 2 (positive) tie at 0.4; MATLAB's stable sort keeps row 1 first,
    # so the positives sit at ranks 2 and 4 -> (1/2 + 2/4) / 2 = 1/2 (0.75 if the tie went the other way).
    ap = metrics.average_precision_per_class(HAND_SCORES, HAND_LABELS)
    np.testing.assert_allclose(ap, [34 / 45, 0.5])
    result = metrics.charades_map(HAND_SCORES, HAND_LABELS)
    assert result["mAP"] == pytest.approx(100 * (34 / 45 + 0.5) / 2)
    assert result["wAP"] == pytest.approx(100 * (34 / 45 * 3 + 0.5 * 2) / 5)


def test_average_precision_agrees_with_sklearn_without_ties():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(300, 20))
    labels = rng.random((300, 20)) < 0.15
    labels[0] = True  # every class has a positive
    expected = [sklearn.metrics.average_precision_score(labels[:, c], scores[:, c]) for c in range(20)]
    np.testing.assert_allclose(metrics.average_precision_per_class(scores, labels), expected, rtol=1e-12)


def test_class_without_positives_makes_map_nan_as_the_official_script():
    labels = HAND_LABELS.copy()
    labels[:, 1] = False
    result = metrics.charades_map(HAND_SCORES, labels)
    assert np.isnan(result["mAP"]) and np.isnan(result["wAP"])
    assert np.isnan(result["ap_per_class"][1])
    ignored = metrics.charades_map(HAND_SCORES, labels, ignore_classes_without_positives=True)
    assert ignored["mAP"] == pytest.approx(100 * 34 / 45)
    assert ignored["wAP"] == pytest.approx(100 * 34 / 45)


def _write_csv(path, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "subject", "actions"])
        writer.writerows(rows)
    return path


@pytest.fixture
def small_csv(tmp_path):
    return _write_csv(
        tmp_path / "test.csv",
        [
            ("AAA", "s", "c000 0.0 1.0;c000 2.0 3.0"),
            ("BBB", "s", "c001 1.5 4.0"),
            ("CCC", "s", "c000 0.0 5.0;c001 0.0 5.0"),
            ("DDD", "s", ""),  # no annotated action
            ("EEE", "s", "c001 0.0 1.0"),
        ],
    )


def test_ground_truth_reader(small_csv):
    ids, labels = metrics.read_charades_ground_truth(small_csv, num_classes=2)
    assert ids == ["AAA", "BBB", "CCC", "DDD", "EEE"]
    np.testing.assert_array_equal(labels, [[1, 0], [0, 1], [1, 1], [0, 0], [0, 1]])


def test_missing_videos_score_minus_infinity(small_csv):
    # EEE (a class-1 positive) has no prediction: it drops to the bottom of every ranking.
    ids = ["CCC", "AAA", "BBB", "DDD"]
    scores = np.array([[0.5, 0.9], [0.9, 0.1], [0.1, 0.2], [0.0, 0.0]])
    result = metrics.charades_evaluate(scores, ids, small_csv)
    # Class 0 (csv order AAA 0.9+, BBB 0.1, CCC 0.5+, DDD -inf, EEE -inf): positives at ranks 1, 2 -> 1.
    # Class 1 (AAA 0.1, BBB 0.2+, CCC 0.9+, DDD -inf, EEE -inf+): CCC, BBB, AAA, DDD, EEE ->
    # positives at 1, 2, 5 -> (1 + 1 + 3/5) / 3.
    np.testing.assert_allclose(result["ap_per_class"], [100.0, 100 * (2 + 3 / 5) / 3])
    assert result["missing_videos"] == ["EEE"]
    assert result["num_videos"] == 5


def test_prediction_for_a_video_without_actions_is_ignored(small_csv):
    ids = ["AAA", "BBB", "CCC", "DDD", "EEE"]
    scores = np.array([[0.2, 0.1], [0.1, 0.3], [0.3, 0.2], [0.0, 0.0], [0.0, 0.4]])
    baseline = metrics.charades_evaluate(scores, ids, small_csv)
    scores[3] = [9.0, 9.0]  # DDD has no actions: the official script never looks its scores up
    assert metrics.charades_evaluate(scores, ids, small_csv)["mAP"] == baseline["mAP"] == 100.0


@pytest.mark.parametrize(
    "ids, message",
    [
        (["AAA", "AAA"], "repeat"),
        (["AAA", "ZZZ"], "not in"),
    ],
)
def test_charades_evaluate_rejects_foreign_or_repeated_ids(small_csv, ids, message):
    with pytest.raises(ValueError, match=message):
        metrics.charades_evaluate(np.zeros((2, 2)), ids, small_csv)


@pytest.mark.parametrize(
    "actions, message",
    [
        ("c000 1.0", "cXXX start end"),
        ("x000 1.0 2.0", "cXXX start end"),
        ("c157 1.0 2.0", "outside"),
    ],
)
def test_ground_truth_reader_names_file_and_line(tmp_path, actions, message):
    path = _write_csv(tmp_path / "bad.csv", [("AAA", "s", "c001 0 1"), ("BBB", "s", actions)])
    with pytest.raises(ValueError, match=rf"bad\.csv, line 3: .*{message}"):
        metrics.read_charades_ground_truth(path)


def test_real_charades_csv(shared_data):
    csv_path = shared_data / "charades" / "Charades_v1_test.csv"
    ids, labels = metrics.read_charades_ground_truth(csv_path)
    assert len(ids) == 1863 and labels.shape == (1863, 157)
    assert ids[0] == "YSKX3" and np.flatnonzero(labels[0]).tolist() == [75, 76, 77, 79, 80]
    assert (~labels.any(axis=1)).sum() == 49  # videos with an empty `actions` field
    assert labels.any(axis=0).all()  # every class has a positive, so mAP is never NaN here
    assert labels.sum() == 16285
    perfect = metrics.charades_evaluate(labels.astype(float), ids, csv_path)
    assert perfect["mAP"] == perfect["wAP"] == 100.0
    assert perfect["missing_videos"] == []
