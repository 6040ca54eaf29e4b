"""Late fusion of per-video scores: RGB + flow, N streams, iDT, and a fusion-weight search.

The release fuses RAW LOGITS, fused = (1 − w)·RGB + w·flow with w = 0.667 (`combine_streams.py`,
§6.3); that reproduces its README (66.73 / 66.54 / 66.34 on HMDB51). The paper and the maintainer
speak of averaging softmax probabilities, which scores about 2.3 points lower on the released logits;
`normalize="softmax"` gives that variant and `normalize="l2"` a row-wise L2 one.
"""

import numpy as np

from actionvlad_tf.evaluation.metrics import top_k_accuracy
from actionvlad_tf.specs import FLOW_WEIGHT  # noqa: F401  (re-exported; release `--temporal_ratio 0.667`, §6.3)

NORMALIZATIONS = ("none", "softmax", "l2")
IDT_WEIGHT = 0.25  # release combine_streams `--idt_wt 0.25` for HMDB51 (§6.4); Charades uses 0.5


def l2_normalize_rows(scores, epsilon=1e-12):
    """x / sqrt(max(Σx², ε)) per row, as `tf.nn.l2_normalize`: an all-zero row stays zero, not NaN."""
    scores = np.asarray(scores, dtype=np.float64)
    return scores / np.sqrt(np.maximum(np.sum(scores * scores, axis=-1, keepdims=True), epsilon))


def softmax_rows(scores):
    """Row-wise softmax, max-subtracted so large logits do not overflow."""
    scores = np.asarray(scores, dtype=np.float64)
    exp = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def normalize_scores(scores, normalize="none"):
    """Applies one of NORMALIZATIONS to [N, C] scores and returns float64."""
    if normalize == "none":
        return np.asarray(scores, dtype=np.float64)
    if normalize == "softmax":
        return softmax_rows(scores)
    if normalize == "l2":
        return l2_normalize_rows(scores)
    raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}")


def fuse_streams(streams, weights, normalize="none"):
    """Σ_i w_i · normalize(streams_i): weighted late fusion of any number of [N, C] score arrays.

    The weights are used as given (the release's 0.333 / 0.667 sum to one, but argmax does not care).
    """
    streams = [np.asarray(stream) for stream in streams]
    if not streams or len(streams) != len(weights):
        raise ValueError(f"need one weight per stream, got {len(streams)} streams and {len(weights)} weights")
    shapes = {stream.shape for stream in streams}
    if len(shapes) != 1 or streams[0].ndim != 2:
        raise ValueError(f"streams must be [videos, classes] arrays of one shape, got {sorted(shapes)}")
    return sum(float(w) * normalize_scores(stream, normalize) for w, stream in zip(weights, streams))


def late_fusion(rgb, flow, flow_weight=FLOW_WEIGHT, normalize="none"):
    """(1 − flow_weight)·RGB + flow_weight·flow, on raw logits by default (§6.3)."""
    if not 0.0 <= flow_weight <= 1.0:
        raise ValueError(f"flow_weight must lie in [0, 1], got {flow_weight}")
    return fuse_streams([rgb, flow], [1.0 - flow_weight, flow_weight], normalize)


def fuse_idt(scores, idt, idt_weight=IDT_WEIGHT):
    """(1 − w)·scores/‖scores‖ + w·idt/‖idt‖ with row-wise L2 norms (§6.4; Charades: w = 0.5).

    A row whose norm is zero (a video with no iDT scores: the release fills those with zeros) stays
    zero after normalisation, so that video keeps the ranking of its other term. The release divides
    by the zero norm and gets NaN; this is the one deliberate difference.
    """
    if not 0.0 <= idt_weight <= 1.0:
        raise ValueError(f"idt_weight must lie in [0, 1], got {idt_weight}")
    return fuse_streams([scores, idt], [1.0 - idt_weight, idt_weight], normalize="l2")


def search_flow_weight(rgb, flow, labels, grid=None, normalize="none"):
    """Picks the flow weight with the best top-1 accuracy on a validation set.

    Args:
        rgb, flow: [N, C] validation scores. labels: [N] class ids.
        grid: candidate flow weights; default 0, 0.01, ..., 1.
        normalize: as `late_fusion`.

    Returns:
        (best_weight, grid, accuracies): the first grid weight reaching the highest accuracy, the grid
        and the top-1 accuracy (percent) at each of its weights.
    """
    grid = np.round(np.linspace(0.0, 1.0, 101), 10) if grid is None else np.asarray(grid, dtype=np.float64)
    if grid.ndim != 1 or grid.size == 0:
        raise ValueError(f"grid must be a non-empty 1-D list of weights, got shape {grid.shape}")
    accuracies = np.array([top_k_accuracy(late_fusion(rgb, flow, w, normalize), labels) for w in grid])
    return float(grid[np.argmax(accuracies)]), grid, accuracies
