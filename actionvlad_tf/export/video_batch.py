"""Many videos through one model: which videos, decoding the next ones while the model runs, and
what a run that stops half way leaves to the next.

`find_inputs` lists a folder (video files and frame folders under it) or a list file. `run_videos`
calls `prepare(job)` (decoding, sampling, flow: numpy and OpenCV, which release the GIL) in worker
threads up to `workers` videos ahead and `consume(job, prepared)` (the model, the output file) on
the calling thread, in the jobs' order, so the output's row order does not depend on timing. At
most `workers` + 1 videos' sampled inputs are held at once. A video that cannot be read is named
and counted, and the run goes on; jobs whose names are in `done` (already in the output) are not
read again.
"""

import collections
import concurrent.futures
import dataclasses
import os
import time

import cv2
import tqdm

from actionvlad_tf.export.predictor import FRAME_TEMPLATES
from actionvlad_tf.prep.extraction import (
    VIDEO_EXTENSIONS,
    Job,
    VideoReadError,
    find_frame_folders,
    find_videos,
    read_video_list,
)

# What a bad video raises while it is decoded and sampled (too short for a flow stack: ValueError).
VIDEO_ERRORS = (VideoReadError, ValueError, OSError, cv2.error)
DEFAULT_WORKERS = 2


@dataclasses.dataclass
class RunSummary:
    """What a run did: videos processed now, already in the output, unreadable (name, reason)."""

    processed: int = 0
    already_done: int = 0
    failed: list = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    @property
    def videos_per_second(self):
        return self.processed / self.seconds if self.seconds > 0 else 0.0

    def report(self):
        """Lines for the user: counts, throughput, and each unreadable video with its reason."""
        lines = [
            f"{self.processed} videos in {self.seconds:.1f} s ({self.videos_per_second:.2f} videos/s); "
            f"{self.already_done} already in the output; {len(self.failed)} unreadable"
        ]
        lines += [f"  unreadable: {name}: {reason}" for name, reason in self.failed]
        return "\n".join(lines)


def find_inputs(source, video_root=None):
    """Jobs (source path, name) of the videos in `source`: a folder, searched recursively for video
    files (named by their path below it) and frame folders (`image_%05d.jpg` or `img_%05d.jpg`,
    named by their folder), or a list file of one video file or frame folder per line (see
    `prep.extraction.read_video_list`). A path that is neither is an error naming it."""
    if os.path.isfile(source) and not source.lower().endswith(VIDEO_EXTENSIONS):
        jobs = read_video_list(source, video_root)
    elif os.path.isdir(source):
        jobs, _ = find_videos(source)
        folders = {job.source: job for template in FRAME_TEMPLATES for job in find_frame_folders(source, template)}
        jobs = sorted(jobs + list(folders.values()), key=lambda job: job.name)
    else:
        raise FileNotFoundError(f"{source}: neither a folder of videos / frame folders nor a list file")
    sources = {}
    for job in jobs:  # names are the output's row keys
        if sources.setdefault(job.name, job.source) != job.source:
            raise ValueError(f"{sources[job.name]} and {job.source} are both named {job.name!r} in {source}")
    return jobs


def single_input(path):
    """The one job of a video file or frame folder, named by its base name."""
    return Job(os.fspath(path), os.path.basename(os.path.normpath(path)))


def run_videos(jobs, prepare, consume, done=(), workers=DEFAULT_WORKERS, progress=True, description="videos"):
    """Runs `consume(job, prepare(job))` for each job whose name is not in `done` (module
    docstring). `prepare` raising one of VIDEO_ERRORS marks the video unreadable. Returns a
    `RunSummary`; its clock starts when the first video is submitted."""
    done = set(done)
    todo = [job for job in jobs if job.name not in done]
    summary = RunSummary(already_done=len(jobs) - len(todo))

    def attempt(job):
        try:
            return prepare(job), None
        except VIDEO_ERRORS as error:
            return None, f"{type(error).__name__}: {error}"

    start = time.perf_counter()
    with (
        concurrent.futures.ThreadPoolExecutor(max(workers, 1)) as pool,
        tqdm.tqdm(total=len(todo), desc=description, unit="video", disable=not progress) as bar,
    ):
        pending = collections.deque()
        upcoming = iter(todo)
        try:
            for job in upcoming:
                pending.append((job, pool.submit(attempt, job)))
                if len(pending) > workers:
                    _finish(*pending.popleft(), consume, summary, bar)
            while pending:
                _finish(*pending.popleft(), consume, summary, bar)
        finally:
            for _, future in pending:
                future.cancel()
    summary.seconds = time.perf_counter() - start
    return summary


def _finish(job, future, consume, summary, bar):
    prepared, error = future.result()
    if error is None:
        consume(job, prepared)
        summary.processed += 1
    else:
        summary.failed.append((job.name, error))
        bar.write(f"unreadable {job.name}: {error}")
    bar.update()
