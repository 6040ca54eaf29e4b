"""Classification metrics: top-k, mean class accuracy, confusion, and Charades mAP / wAP (release §6).

Single-label metrics (HMDB51, UCF101) take scores [N, C] (logits or probabilities: only their order
matters) and integer labels [N]; accuracies are reported in percent, as the release's README does.
The Charades metrics reproduce the official `Charades_v1_classify.m` (§6.5) bit for bit, ties and
missing videos included.
"""

import collections
import csv
import pathlib

import numpy as np

from actionvlad_tf.specs import CHARADES_NUM_CLASSES  # noqa: F401  (re-exported)


def _as_scores(scores, name="scores"):
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[0] == 0 or scores.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty [videos, classes] array, got shape {scores.shape}")
    return scores


def _check_single_label(scores, labels):
    """Validates and converts (scores [N, C], labels [N]) for the single-label metrics."""
    scores = _as_scores(scores)
    if not np.isfinite(scores).all():
        rows = np.flatnonzero(~np.isfinite(scores).all(axis=1))
        raise ValueError(f"scores hold NaN or inf in {rows.size} rows (first rows: {rows[:5].tolist()})")
    labels = np.asarray(labels)
    if labels.shape != (scores.shape[0],):
        raise ValueError(f"labels must have shape ({scores.shape[0]},) to match the scores, got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    bad = np.flatnonzero((labels < 0) | (labels >= scores.shape[1]))
    if bad.size:
        raise ValueError(
            f"{bad.size} labels are outside [0, {scores.shape[1]}) (first rows {bad[:5].tolist()}, values "
            f"{labels[bad[:5]].tolist()}); label -1 marks an unlabelled test list, which has no accuracy"
        )
    return scores, labels.astype(np.int64)


def label_ranks(scores, labels):
    """0-based rank of each video's true class when its scores are sorted in descending order.

    Ties are broken by class index (lower first), so rank 0 is exactly `argmax`, the release's top-1
    prediction (§6.1, §6.3). `tf.nn.in_top_k`, behind the release's Recall@5, counts every class tied
    at the boundary as inside; the two differ only on exactly tied scores.
    """
    scores, labels = _check_single_label(scores, labels)
    true_score = scores[np.arange(labels.size), labels][:, None]
    class_index = np.arange(scores.shape[1])[None, :]
    ahead = (scores > true_score) | ((scores == true_score) & (class_index < labels[:, None]))
    return ahead.sum(axis=1)


def top_k_accuracy(scores, labels, k=1):
    """Percentage of videos whose true class is among the k highest scores (k=1: argmax accuracy)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return 100.0 * float(np.mean(label_ranks(scores, labels) < k))


def confusion_matrix(labels, predictions, num_classes):
    """Counts [C, C]: row = true class, column = predicted class."""
    labels = np.asarray(labels, dtype=np.int64)
    predictions = np.asarray(predictions, dtype=np.int64)
    if labels.shape != predictions.shape or labels.ndim != 1:
        raise ValueError(f"labels {labels.shape} and predictions {predictions.shape} must be equal 1-D shapes")
    for name, values in (("labels", labels), ("predictions", predictions)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"{name} must lie in [0, {num_classes}), got [{values.min()}, {values.max()}]")
    flat = np.bincount(labels * num_classes + predictions, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def per_class_accuracy(confusion):
    """Per-class accuracy (recall) in percent from a confusion matrix; NaN for classes with no videos."""
    confusion = np.asarray(confusion, dtype=np.float64)
    support = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 100.0 * np.diag(confusion) / support


def mean_class_accuracy(scores, labels):
    """Mean over classes of per-class accuracy, in percent; classes absent from `labels` are left out."""
    scores, labels = _check_single_label(scores, labels)
    confusion = confusion_matrix(labels, scores.argmax(axis=1), scores.shape[1])
    return float(np.nanmean(per_class_accuracy(confusion)))


def evaluate_logits(logits, labels, class_names=None):
    """All single-label figures for one stream's (or one fusion's) scores, as `eval.py` reports them.

    Args:
        logits: [N, C] scores, rows in list order.
        labels: [N] integer class ids.
        class_names: optional C names in label order (e.g. HMDB51 `actions.txt`); default "0".."C-1".

    Returns:
        dict with `num_videos`, `num_classes`, `top1`, `top5`, `mean_class_accuracy` (percent),
        `per_class_accuracy` ({name: percent, or None for a class with no test video}), `class_names`
        and `confusion` ([C, C] int64 counts, rows = true class).
    """
    scores, labels = _check_single_label(logits, labels)
    num_classes = scores.shape[1]
    if class_names is None:
        class_names = [str(c) for c in range(num_classes)]
    class_names = [str(name) for name in class_names]
    if len(class_names) != num_classes:
        raise ValueError(f"{len(class_names)} class names for {num_classes} score columns")
    confusion = confusion_matrix(labels, scores.argmax(axis=1), num_classes)
    per_class = per_class_accuracy(confusion)
    ranks = label_ranks(scores, labels)
    return {
        "num_videos": int(labels.size),
        "num_classes": int(num_classes),
        "top1": 100.0 * float(np.mean(ranks < 1)),
        "top5": 100.0 * float(np.mean(ranks < 5)),
        "mean_class_accuracy": float(np.nanmean(per_class)),
        "per_class_accuracy": {
            name: (None if np.isnan(acc) else float(acc)) for name, acc in zip(class_names, per_class)
        },
        "class_names": class_names,
        "confusion": confusion,
    }


def read_charades_ground_truth(csv_path, num_classes=CHARADES_NUM_CLASSES):
    """Reads `Charades_v1_test.csv` (or `_train.csv`) as the official script does.

    The `actions` column is `cXXX start end;cXXX start end;...`; the class of each interval counts once
    per video, whatever its times. A video with an empty `actions` field keeps an all-zero row.

    Returns:
        (video_ids, labels): ids in csv order and a bool [V, num_classes] matrix.
    """
    csv_path = pathlib.Path(csv_path)
    with open(csv_path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"id", "actions"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{csv_path}: header lacks the column(s) {sorted(missing)}")
        video_ids, positives, seen = [], [], {}
        for row in reader:
            where = f"{csv_path}, line {reader.line_num}"
            video_id = row["id"]
            if not video_id:
                raise ValueError(f"{where}: empty video id")
            if video_id in seen:
                raise ValueError(f"{where}: video {video_id!r} repeats line {seen[video_id]}")
            seen[video_id] = reader.line_num
            for interval in filter(None, row["actions"].split(";")):
                fields = interval.split()
                if len(fields) != 3 or not fields[0].startswith("c") or not fields[0][1:].isdigit():
                    raise ValueError(f"{where}: action {interval!r} is not 'cXXX start end'")
                class_id = int(fields[0][1:])
                if class_id >= num_classes:
                    raise ValueError(f"{where}: class {fields[0]} is outside the {num_classes} classes")
                positives.append((len(video_ids), class_id))
            video_ids.append(video_id)
    labels = np.zeros((len(video_ids), num_classes), dtype=bool)
    if positives:
        rows, cols = np.array(positives).T
        labels[rows, cols] = True
    return video_ids, labels


def average_precision_per_class(scores, labels):
    """THUMOS-style AP of each column, as `THUMOSeventclspr` in `Charades_v1_classify.m` (§6.5).

    Per class, videos are ranked by descending score with MATLAB's `sort(-conf)`, which is stable: tied
    videos keep their row order. AP = Σ over positives of precision at their rank / n_pos. A class with
    no positive video gets NaN (0/0), as in MATLAB. Scores may be ±inf (−inf = no prediction), not NaN.

    Args:
        scores: [V, C] float. labels: [V, C] bool (or 0/1).

    Returns:
        [C] float64 AP in [0, 1].
    """
    scores = _as_scores(scores)
    if np.isnan(scores).any():
        raise ValueError("scores hold NaN; use -inf for videos without a prediction")
    labels = np.asarray(labels).astype(bool)
    if labels.shape != scores.shape:
        raise ValueError(f"labels {labels.shape} and scores {scores.shape} must have the same shape")
    order = np.argsort(-scores, axis=0, kind="stable")
    hits = np.take_along_axis(labels, order, axis=0)
    precision = np.cumsum(hits, axis=0) / np.arange(1, scores.shape[0] + 1)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        return (precision * hits).sum(axis=0) / labels.sum(axis=0)


def charades_map(scores, labels, ignore_classes_without_positives=False):
    """mAP and wAP (percent) as `Charades_v1_classify.m` from aligned scores and labels [V, C].

    mAP = mean_c AP_c; wAP = Σ_c AP_c · n_pos,c / Σ_c n_pos,c. As in the official script (MATLAB `mean`
    and `sum` propagate NaN), a class with no positive video makes both NaN; set
    `ignore_classes_without_positives` to average over the classes that have positives instead (useful
    on small subsets; never needed on the full Charades v1 test set, where all 157 classes occur).

    Returns:
        dict with `mAP`, `wAP` (percent) and `ap_per_class` ([C] percent, NaN where no positives).
    """
    labels = np.asarray(labels).astype(bool)
    ap = average_precision_per_class(scores, labels)
    n_pos = labels.sum(axis=0)
    kept = n_pos > 0 if ignore_classes_without_positives else np.ones_like(n_pos, dtype=bool)
    if not kept.any():
        raise ValueError("no class has a positive video")
    mean_ap = float(np.mean(ap[kept]))
    weighted_ap = float(np.sum(ap[kept] * n_pos[kept]) / np.sum(n_pos[kept]))
    return {"mAP": 100.0 * mean_ap, "wAP": 100.0 * weighted_ap, "ap_per_class": 100.0 * ap}


def charades_evaluate(scores, video_ids, csv_path, ignore_classes_without_positives=False):
    """Charades whole-video mAP / wAP of per-video scores against the official annotations csv.

    Follows `Charades_v1_classify.m`: rows are the csv's videos in csv order (which sets the tie order);
    a csv video without a prediction scores −∞ in every class; a video whose `actions` field is empty
    also scores −∞ (the official loader never records its id, so its prediction is never looked up).
    Unlike the official script, which silently ignores them, ids absent from the csv and repeated ids are
    errors: they mean the scores belong to another list.

    Args:
        scores: [N, C] per-video scores (logits, or fused scores), any row order.
        video_ids: N Charades ids (`YSKX3`, see `logits_io.charades_video_id`).
        csv_path: `Charades_v1_test.csv`.

    Returns:
        dict with `mAP`, `wAP` (percent), `ap_per_class` ([C] percent), `num_videos` (csv rows),
        `missing_videos` (csv ids that had no prediction).
    """
    scores = _as_scores(scores)
    video_ids = [str(video_id) for video_id in video_ids]
    if len(video_ids) != scores.shape[0]:
        raise ValueError(f"{len(video_ids)} video ids for {scores.shape[0]} score rows")
    gt_ids, labels = read_charades_ground_truth(csv_path, num_classes=scores.shape[1])
    row_of = {video_id: row for row, video_id in enumerate(gt_ids)}
    unknown = sorted(set(video_ids) - set(row_of))
    if unknown:
        raise ValueError(f"{len(unknown)} predicted videos are not in {csv_path}: {unknown[:5]}")
    repeated = sorted(v for v, count in collections.Counter(video_ids).items() if count > 1)
    if repeated:
        raise ValueError(f"video ids repeat in the predictions: {repeated[:5]}")
    aligned = np.full(labels.shape, -np.inf)
    aligned[[row_of[v] for v in video_ids]] = scores
    aligned[~labels.any(axis=1)] = -np.inf
    result = charades_map(aligned, labels, ignore_classes_without_positives)
    result["num_videos"] = len(gt_ids)
    result["missing_videos"] = sorted(set(gt_ids) - set(video_ids))
    return result
