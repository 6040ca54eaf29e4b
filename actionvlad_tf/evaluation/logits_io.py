"""Per-video scores on disk: logits `.h5` in the release layout and the Charades submission text.

The release dumps `stream0/logits` as float32 [N_videos, C], gzip level 9, rows in list order
(§6.2); `fuse.py`, `eval.py` and the Charades scorer all read that layout. Every file here is written
atomically (a temporary file in the same directory, then `os.replace`), so a reader never sees half a
file and an interrupted run leaves the previous result in place.
"""

import re

import h5py
import numpy as np

from actionvlad_tf.atomic import atomic_output

LOGITS_DATASET = "stream0/logits"
IDT_DATASET = "idt"  # release §6.4: HMDB iDT scores live in dataset `idt`


def write_logits(path, logits, dataset=LOGITS_DATASET, compression_level=9):
    """Writes [N, C] scores as float32 `dataset` (gzip) in a new `.h5`, atomically (§6.2)."""
    logits = np.asarray(logits)
    if logits.ndim != 2:
        raise ValueError(f"logits for {path} must be [videos, classes], got shape {logits.shape}")
    with atomic_output(path) as temporary:
        try:
            with h5py.File(temporary, "w") as h5:
                h5.create_dataset(
                    dataset, data=logits.astype(np.float32), compression="gzip", compression_opts=compression_level
                )
        except RuntimeError as error:  # HDF5 reports a failed write (full disk) as RuntimeError
            raise OSError(f"{path}: writing the logits failed ({error})") from error


def read_logits(path, expected_rows=None, list_file=None, dataset=LOGITS_DATASET):
    """Reads [N, C] float32 scores from `dataset` of an `.h5` file.

    Args:
        path: the `.h5` file.
        expected_rows: the number of videos in the list the rows belong to; a different row count is
            an error (rows are matched to videos by position, §6.2).
        list_file: that list's path, named in the error message.
        dataset: dataset name (`stream0/logits`; `idt` for the release's iDT scores).
    """
    with h5py.File(path, "r") as h5:
        if dataset not in h5:
            names = []
            h5.visititems(lambda name, item: names.append(name) if isinstance(item, h5py.Dataset) else None)
            raise ValueError(f"{path}: no dataset {dataset!r}; it holds {names}")
        logits = h5[dataset][()]
    if logits.ndim != 2:
        raise ValueError(f"{path}: {dataset} must be [videos, classes], got shape {logits.shape}")
    if expected_rows is not None and logits.shape[0] != expected_rows:
        against = f"list {list_file}" if list_file else "the list"
        raise ValueError(
            f"{path}: {dataset} has {logits.shape[0]} rows but {against} has {expected_rows} "
            "videos; rows must be the list's videos in list order"
        )
    bad = np.flatnonzero(~np.isfinite(logits).all(axis=1))
    if bad.size:
        raise ValueError(f"{path}: {dataset} holds NaN or inf in {bad.size} rows (first rows {bad[:5].tolist()})")
    return logits.astype(np.float32)


_CHARADES_PATH = re.compile(r"^[^/]+/([^/]+)\.mp4$")


def charades_video_id(list_path):
    """Charades id of a list path: `Y/YSKX3.mp4` -> `YSKX3` (the release cuts `X/` and `.mp4`, §6.5)."""
    match = _CHARADES_PATH.match(list_path)
    if not match:
        raise ValueError(f"Charades list path {list_path!r} is not '<X>/<ID>.mp4'")
    return match.group(1)


def write_charades_submission(path, video_ids, scores):
    """Writes the official submission text, one `id s1 ... sC` line per video, atomically (§6.5).

    Each score is written with the shortest text that reads back to the same value of the array's
    dtype, so the file ranks videos, ties included, exactly as the array does.
    """
    scores = np.asarray(scores)
    if scores.ndim != 2 or len(video_ids) != scores.shape[0]:
        raise ValueError(f"{len(video_ids)} ids and scores of shape {scores.shape} do not pair up")
    with atomic_output(path) as temporary:
        with open(temporary, "w", encoding="utf-8") as handle:
            for video_id, row in zip(video_ids, scores):
                if not video_id or any(char.isspace() for char in video_id):
                    raise ValueError(f"video id {video_id!r} is empty or holds whitespace")
                handle.write(" ".join([video_id, *map(str, row)]) + "\n")


def read_charades_submission(path, num_classes=None):
    """Reads `id s1 ... sC` lines (space- or tab-separated) into (ids, float64 [N, C]).

    Blank lines are skipped; a line with the wrong number of fields, a non-number, NaN, or an id
    already seen is an error naming the file and line. `num_classes` defaults to the first line's.
    """
    video_ids, rows, seen = [], [], {}
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                continue
            where = f"{path}, line {line_number}"
            if num_classes is None:
                num_classes = len(fields) - 1
            if len(fields) != num_classes + 1:
                raise ValueError(f"{where}: {len(fields) - 1} scores, expected {num_classes}")
            if fields[0] in seen:
                raise ValueError(f"{where}: video {fields[0]!r} repeats line {seen[fields[0]]}")
            try:
                values = [float(value) for value in fields[1:]]
            except ValueError as error:
                raise ValueError(f"{where}: {error}") from None
            if np.isnan(values).any():
                raise ValueError(f"{where}: NaN score")
            seen[fields[0]] = line_number
            video_ids.append(fields[0])
            rows.append(values)
    if not rows:
        raise ValueError(f"{path}: no predictions")
    return video_ids, np.array(rows, dtype=np.float64)


def scores_for_videos(video_ids, source_ids, source_scores, fill=0.0):
    """Rows of `source_scores` re-ordered to `video_ids`; videos absent from `source_ids` get `fill`.

    The release does this for Charades iDT scores (§6.4): a video missing from the iDT file gets an
    all-zero row, which `fusion.fuse_idt` keeps at zero. Returns (scores [N, C], missing ids).
    """
    source_scores = np.asarray(source_scores, dtype=np.float64)
    row_of = {video_id: row for row, video_id in enumerate(source_ids)}
    if len(row_of) != len(source_ids):
        raise ValueError("source ids repeat")
    scores = np.full((len(video_ids), source_scores.shape[1]), fill, dtype=np.float64)
    present = [i for i, video_id in enumerate(video_ids) if video_id in row_of]
    scores[present] = source_scores[[row_of[video_ids[i]] for i in present]]
    return scores, [video_id for video_id in video_ids if video_id not in row_of]
