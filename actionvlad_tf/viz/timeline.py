"""The sliding-window timeline of a video as a PNG: class probabilities over time."""

import numpy as np

from actionvlad_tf.viz.common import new_figure, save_png


def plot_timeline(windows, path, fps=None, top_k=5, title=None):
    """Plots the probabilities of the `top_k` classes that peak highest over the windows.

    Args:
        windows: [(start, end, scores)] as `export.predictor.classify_windows` yields (0-based frames,
            end exclusive; scores with `probabilities` [C], `top5_indices`, `top5_classes`).
        path: the PNG to write (atomically).
        fps: frames per second; the x axis is then seconds, else frame numbers.
        top_k: classes drawn (at most 5: their names come from the windows' top-5).
    Returns the path.
    """
    if not windows:
        raise ValueError("no window to plot")
    probabilities = np.stack([scores["probabilities"] for _, _, scores in windows])  # [W, C]
    names = {}
    for _, _, scores in windows:
        names.update(zip(np.asarray(scores["top5_indices"]).tolist(), scores["top5_classes"]))
    classes = np.argsort(-probabilities.max(axis=0))[: min(top_k, 5)]
    centres = np.array([(start + end) / 2.0 for start, end, _ in windows])
    x = centres / fps if fps else centres + 0.5  # 1-based frame numbers
    figure = new_figure(8, 3.5)
    axes = figure.add_subplot(1, 1, 1)
    for c in classes:
        axes.plot(x, probabilities[:, c], marker="." if len(x) < 50 else None, label=names.get(int(c), str(c)))
    axes.set_xlabel("window centre (s)" if fps else "window centre (frame)")
    axes.set_ylabel("probability")
    axes.set_ylim(0, max(1e-3, float(probabilities[:, classes].max())) * 1.05)
    axes.legend(fontsize=8, loc="upper right")
    if title:
        axes.set_title(title, fontsize=9)
    figure.tight_layout()
    return save_png(figure, path)
