"""Tests of actionvlad_tf.viz.confusion and viz.report.write_results (results folder of eval.py)."""

import json
import os

import matplotlib.image
import numpy as np
import pytest

from actionvlad_tf.evaluation import metrics
from actionvlad_tf.viz import confusion, report


def _pixels(path):
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and min(image.shape[:2]) > 100
    return image[..., :3]


def test_row_normalize():
    np.testing.assert_allclose(confusion.row_normalize([[1, 3], [0, 0]]), [[0.25, 0.75], [0.0, 0.0]])
    with pytest.raises(ValueError, match="square"):
        confusion.row_normalize(np.zeros((2, 3)))


def test_difference_plot_is_red_for_gains_and_blue_for_losses(tmp_path):
    better = np.array([[10, 0], [0, 10]])
    worse = np.array([[0, 10], [10, 0]])
    path = tmp_path / "fig9.png"
    confusion.plot_confusion_difference(better, worse, ["hit", "golf"], path)
    image = _pixels(path)
    red = (image[..., 0] > 0.6) & (image[..., 1] < 0.2) & (image[..., 2] < 0.2)
    blue = (image[..., 2] > 0.6) & (image[..., 0] < 0.2) & (image[..., 1] < 0.2)
    # The matrix cells: top-left (diagonal, gain) red, top-right (off-diagonal, loss) blue.
    red_rows, red_cols = np.nonzero(red)
    blue_rows, blue_cols = np.nonzero(blue)
    assert red.sum() > 1000 and blue.sum() > 1000
    top_red = red_cols[red_rows < np.median(red_rows)]
    top_blue = blue_cols[blue_rows < np.median(blue_rows)]
    assert np.median(top_red) < np.median(top_blue)  # in the upper row, the gain is left of the loss
    with pytest.raises(ValueError, match="differ in shape"):
        confusion.plot_confusion_difference(better, np.zeros((3, 3)), None, path)


def test_write_results(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, size=50)
    labels[:4] = [0, 1, 2, 3]  # class 4 may be absent: its accuracy must come out as null, not NaN
    labels[labels == 4] = 3
    results = metrics.evaluate_logits(rng.normal(size=(50, 5)), labels, [f"class {c}" for c in range(5)])
    paths = report.write_results(results, tmp_path / "eval")
    assert sorted(os.listdir(tmp_path / "eval")) == ["confusion.npy", "confusion.png", "results.json"]
    written = json.loads(paths["results.json"].read_text())
    assert written["top1"] == results["top1"] and "confusion" not in written
    assert written["per_class_accuracy"]["class 4"] is None
    np.testing.assert_array_equal(np.load(paths["confusion.npy"]), results["confusion"])
    _pixels(paths["confusion.png"])


def test_many_classes_plot_without_names(tmp_path):
    path = tmp_path / "ucf.png"
    confusion.plot_confusion(np.eye(101, dtype=int) * 3, [str(c) for c in range(101)], path)
    _pixels(path)
