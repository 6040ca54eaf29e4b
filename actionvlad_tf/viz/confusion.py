"""Confusion-matrix figures: one model's matrix, and the difference of two (paper appendix C, Fig. 9).

Figures are drawn on a bare `matplotlib.figure.Figure` with the Agg canvas, so nothing depends on
pyplot's global state or on a display, and saved atomically as PNG.
"""

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from actionvlad_tf.atomic import atomic_output

MAX_LABELLED_CLASSES = 60  # beyond this the tick labels overlap into a black band


def row_normalize(confusion):
    """Counts -> per-true-class fractions (each row sums to 1; rows without videos stay 0)."""
    confusion = np.asarray(confusion, dtype=np.float64)
    if confusion.ndim != 2 or confusion.shape[0] != confusion.shape[1]:
        raise ValueError(f"a confusion matrix must be square, got shape {confusion.shape}")
    support = confusion.sum(axis=1, keepdims=True)
    return np.divide(confusion, support, out=np.zeros_like(confusion), where=support > 0)


def _draw(matrix, class_names, path, cmap, vmin, vmax, title, colorbar_label):
    num_classes = matrix.shape[0]
    if class_names is not None and len(class_names) != num_classes:
        raise ValueError(f"{len(class_names)} class names for a {num_classes}-class matrix")
    side = min(4.0 + 0.22 * num_classes, 20.0)
    figure = Figure(figsize=(side + 1.5, side))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label=colorbar_label)
    if class_names is not None and num_classes <= MAX_LABELLED_CLASSES:
        ticks = np.arange(num_classes)
        font = 8 if num_classes <= 30 else 6
        axes.set_xticks(ticks, [str(name) for name in class_names], rotation=90, fontsize=font)
        axes.set_yticks(ticks, [str(name) for name in class_names], fontsize=font)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    if title:
        axes.set_title(title)
    figure.tight_layout()
    with atomic_output(path) as temporary:
        figure.savefig(temporary, format="png", dpi=100)


def plot_confusion(confusion, class_names, path, title=None):
    """Saves the row-normalised confusion matrix (rows = true class) as a PNG.

    Class names label the axes for up to MAX_LABELLED_CLASSES classes (HMDB51 yes, UCF101 no).
    """
    _draw(row_normalize(confusion), class_names, path, "Blues", 0.0, 1.0, title, "fraction of true class")


def plot_confusion_difference(a, b, class_names, path, title=None):
    """Saves row_normalize(a) − row_normalize(b) as a PNG: red = positive, blue = negative (Fig. 9).

    With a = ActionVLAD and b = two-stream, improvements show as red on the diagonal and blue off it.
    The colour scale is symmetric about zero, so white means no change.
    """
    if np.shape(a) != np.shape(b):
        raise ValueError(f"confusion matrices differ in shape: {np.shape(a)} vs {np.shape(b)}")
    difference = row_normalize(a) - row_normalize(b)
    limit = max(float(np.abs(difference).max()), 1e-6)
    _draw(difference, class_names, path, "bwr", -limit, limit, title, "change in fraction of true class")
