"""Classifying many videos into one file: `.csv` or `.jsonl`, one video (or, with windows, one
window) per row, resumable.

A `.jsonl` line is {"video", "top_classes", "top_probabilities"} and, with windows, "windows":
[{"start", "end", "top_classes", "top_probabilities"}] (0-based frames, end exclusive). A `.csv`
row is `video,start,end,top1,p1,…,topk,pk` (start and end empty for a whole video). Rows are
appended and flushed video by video; a re-run skips the videos already in the file. The last
video of an existing file is done again (a run killed while writing it may have left part of its
rows), so a killed run re-run gives the file of a clean run.
"""
import csv
import io
import json
import os

from actionvlad_tf.export.predictor import classify_windows, video_inputs
from actionvlad_tf.export.video_batch import DEFAULT_WORKERS, run_videos
from actionvlad_tf.prep.video_inputs import DEFAULT_FRAMES_PER_VIDEO

FORMATS = (".csv", ".jsonl")


def output_format(path):
    """".csv" or ".jsonl" from the file name; another suffix is an error naming it."""
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix not in FORMATS:
        raise ValueError(f"{path}: predictions go to a {' or '.join(FORMATS)} file")
    return suffix


def _row_video(line, suffix):
    if suffix == ".jsonl":
        return json.loads(line)["video"]
    return next(csv.reader([line]))[0]


def resume(path):
    """The videos already complete in an existing output (all but the last one named, which is
    removed with any partial line after it, to be done again); empty for a new file."""
    if not os.path.exists(path):
        return set()
    suffix = output_format(path)
    with open(path, encoding="utf-8", newline="") as handle:
        lines = handle.read().split("\n")
    complete = lines[:-1]  # the text after the last newline is a partial row
    if suffix == ".csv":
        complete = complete[1:]  # header
    videos = [_row_video(line, suffix) for line in complete]
    keep = len(videos)
    while keep and videos[keep - 1] == videos[-1]:
        keep -= 1
    header = lines[:1] if suffix == ".csv" and len(lines) > 1 else []
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write("".join(line + "\n" for line in header + complete[:keep]))
    return set(videos[:keep])


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
            record["windows"] = [dict(zip(("start", "end", "top_classes", "top_probabilities"),
                                          (start, end, *_top(s, top_k)))) for start, end, s in windows]
        return json.dumps(record) + "\n"
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    for start, end, s in ([("", "", scores)] if windows is None else windows):
        classes, probabilities = _top(s, top_k)
        writer.writerow([name, start, end, *[v for pair in zip(classes, probabilities) for v in pair]])
    return text.getvalue()


def csv_header(top_k):
    return ",".join(["video", "start", "end", *[f"{c}{i}" for i in range(1, top_k + 1) for c in ("top", "p")]]) + "\n"


def predict_videos(classifier, jobs, output, top_k=5, frames_per_video=DEFAULT_FRAMES_PER_VIDEO,
                   flow_method="tvl1", flow_bound=None, window=None, stride=None, workers=DEFAULT_WORKERS,
                   progress=True):
    """Classifies `jobs` (`video_batch.find_inputs`) into `output` (module docstring) and returns
    the `video_batch.RunSummary`. With `window` (and `stride`, default `window`), each video's
    windows are scored (`predictor.classify_windows`, in the worker threads); otherwise its
    sampled frames are decoded in the workers and the model runs on this thread."""
    suffix = output_format(output)
    top_k = min(top_k, 5)
    done = resume(output)
    options = {} if flow_bound is None else {"flow_bound": flow_bound}
    frames = classifier.frames_per_video or frames_per_video

    def prepare(job):
        if window is None:
            return video_inputs(job.source, classifier.modalities, frames, flow_method, where=job.source, **options)
        return list(classify_windows(classifier, job.source, window, stride or window, frames, flow_method,
                                     where=job.source, progress=False, **options))

    with open(output, "a", encoding="utf-8", newline="") as handle:
        if suffix == ".csv" and handle.tell() == 0:
            handle.write(csv_header(top_k))

        def consume(job, prepared):
            scores, windows = (classifier(prepared), None) if window is None else (None, prepared)
            handle.write(format_rows(job.name, scores, windows, suffix, top_k))
            handle.flush()

        return run_videos(jobs, prepare, consume, done, workers, progress, description="classifying")
