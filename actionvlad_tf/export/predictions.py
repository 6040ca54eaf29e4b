"""Classifying many videos into one file: `.csv` or `.jsonl`, one video (or, with windows, one
window) per row, resumable.

A `.jsonl` line is {"video", "top_classes", "top_probabilities"} and, with windows, "windows":
[{"start", "end", "top_classes", "top_probabilities"}] (0-based frames, end exclusive). A `.csv`
row is `video,start,end,top1,p1,…,topk,pk` (start and end empty for a whole video). Each video's
rows are appended by one `write` system call, which a killed process does not cut, so the file
holds whole videos and at most a partial last line (a crash of the machine, or a full disk); a
re-run drops that line and skips the videos in the file, so a killed run re-run gives the file of
a clean run.
"""

import csv
import io
import json
import os

from actionvlad_tf.export.predictor import classify_windows, video_inputs
from actionvlad_tf.export.video_batch import DEFAULT_WORKERS, run_videos
from actionvlad_tf.prep.extraction import DEFAULT_FLOW_BOUND
from actionvlad_tf.prep.video_inputs import DEFAULT_FRAMES_PER_VIDEO

FORMATS = (".csv", ".jsonl")


def output_format(path):
    """ ".csv" or ".jsonl" from the file name; another suffix is an error naming it."""
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix not in FORMATS:
        raise ValueError(f"{path}: predictions go to a {' or '.join(FORMATS)} file")
    return suffix


def _row_video(line, suffix):
    if suffix == ".jsonl":
        return json.loads(line)["video"]
    return next(csv.reader([line]))[0]


def resume(path):
    """The videos already in an existing output, after dropping a partial last line; empty for a
    new file."""
    if not os.path.exists(path):
        return set()
    suffix = output_format(path)
    with open(path, "rb") as handle:
        text = handle.read()
    complete = text[: text.rfind(b"\n") + 1]
    if len(complete) < len(text):
        with open(path, "r+b") as handle:
            handle.truncate(len(complete))
    lines = complete.decode("utf-8").splitlines()
    return {_row_video(line, suffix) for line in lines[1 if suffix == ".csv" else 0 :]}


def _top(scores, top_k):
    indices = scores["top5_indices"][:top_k]
    return list(scores["top5_classes"][:top_k]), [round(float(scores["probabilities"][i]), 6) for i in indices]


def format_rows(name, scores, windows, suffix, top_k):
    """The text of one video's rows: `scores` of the whole video or `windows` [(start, end, scores)]."""
    if suffix == ".jsonl":
        record = {"video": name}
        if windows is None:
            record.update(zip(("top_classes", "top_probabilities"), _top(scores, top_k)))
        else:
            record["windows"] = [
                dict(zip(("start", "end", "top_classes", "top_probabilities"), (start, end, *_top(s, top_k))))
                for start, end, s in windows
            ]
        return json.dumps(record) + "\n"
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    for start, end, s in [("", "", scores)] if windows is None else windows:
        classes, probabilities = _top(s, top_k)
        writer.writerow([name, start, end, *[v for pair in zip(classes, probabilities) for v in pair]])
    return text.getvalue()


def csv_header(top_k):
    return ",".join(["video", "start", "end", *[f"{c}{i}" for i in range(1, top_k + 1) for c in ("top", "p")]]) + "\n"


def predict_videos(
    classifier,
    jobs,
    output,
    top_k=5,
    frames_per_video=DEFAULT_FRAMES_PER_VIDEO,
    flow_method="tvl1",
    flow_bound=DEFAULT_FLOW_BOUND,
    window=None,
    stride=None,
    workers=DEFAULT_WORKERS,
    progress=True,
):
    """Classifies `jobs` (`video_batch.find_inputs`) into `output` (module docstring) and returns
    the `video_batch.RunSummary`. With `window` (and `stride`, default `window`), each video's
    windows are scored (`predictor.classify_windows`, in the worker threads); otherwise its
    sampled frames are decoded in the workers and the model runs on this thread."""
    suffix = output_format(output)
    top_k = min(top_k, 5)
    done = resume(output)
    frames = classifier.frames_per_video or frames_per_video

    def prepare(job):
        if window is None:
            return video_inputs(
                job.source, classifier.modalities, frames, flow_method, where=job.source, flow_bound=flow_bound
            )
        return list(
            classify_windows(
                classifier,
                job.source,
                window,
                stride or window,
                frames,
                flow_method,
                where=job.source,
                progress=False,
                flow_bound=flow_bound,
            )
        )

    handle = os.open(output, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        if suffix == ".csv" and os.fstat(handle).st_size == 0:
            os.write(handle, csv_header(top_k).encode("utf-8"))

        def consume(job, prepared):
            scores, windows = (classifier(prepared), None) if window is None else (None, prepared)
            os.write(handle, format_rows(job.name, scores, windows, suffix, top_k).encode("utf-8"))

        return run_videos(jobs, prepare, consume, done, workers, progress, description="classifying")
    finally:
        os.close(handle)
