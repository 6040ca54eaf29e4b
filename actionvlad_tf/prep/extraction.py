"""Frames and optical flow from videos, in the release's on-disk layout (release §3.1).

* Frames: `<out>/<video>/image_%05d.jpg`, 1-indexed, one per decoded frame.
* Flow: `<out>/<video>/flow_x_%05d.jpg` and `flow_y_%05d.jpg`, 1-indexed, n−1 per direction, the
  flow from frame i to frame i+1 in file i, quantised as TSN's dense_flow (what the release used):
  clip to ±bound (20 px), map linearly to [0, 255], so that 128 is no motion.

Decoding is sequential (`cv2.VideoCapture.read` until it fails), never by seeking or by trusting
`CAP_PROP_FRAME_COUNT`: some real `.mp4` files are raw MPEG-4 streams whose header frame count is
garbage and whose seeks land on the wrong frame. The number of frames is the number decoded.

Each video is written into `<out>/<parent>/.<leaf>.partial/` and renamed to `<out>/<video>/` when
complete, so a folder that exists is finished: a re-run skips it and redoes any partial folder left
by a killed run. `run_jobs` runs a per-video function over processes with a progress bar and
returns a summary of what was done, skipped (already there), failed (with the reason) and ignored.

In-memory variants (`read_video_frames`, `compute_flow_images`) serve single-video prediction.
"""

import concurrent.futures
import dataclasses
import functools
import multiprocessing
import os
import shutil

import cv2
import numpy as np
import tqdm

from actionvlad_tf import tvl1
from actionvlad_tf.atomic import ensure_writable_dir, naming_os_errors
from actionvlad_tf.data.frames import FLOW_TEMPLATE, RGB_TEMPLATE, file_names, flow_templates

VIDEO_EXTENSIONS = (
    ".avi",
    ".mp4",
    ".mkv",
    ".webm",
    ".mov",
    ".m4v",
    ".mpg",
    ".mpeg",
    ".flv",
    ".wmv",
    ".3gp",
    ".ogv",
    ".ts",
)
FLOW_METHODS = ("tvl1", "tvl1_fast", "tvl1_tf", "tvl1_tf_fast", "dis", "farneback")
TF_FLOW_METHODS = ("tvl1_tf", "tvl1_tf_fast")
# Frame pairs per call of the TensorFlow TV-L1 ("tvl1_tf", "tvl1_tf_fast"). On the demo's 96×128
# frames, one thread of a 2-core AMD EPYC (AVX2), tvl1_tf_fast: 4 → 135, 8 → 130, 16 → 118 pairs/s
# (1180 pairs of 20 videos, one run each); a video's 59 pairs pad to 60 rather than 64.
TF_FLOW_BATCH = 4
# XLA for "tvl1_tf": 3.3× the plain graph on a CPU (docs/performance.md), once it has compiled
# (tens of seconds per frame size).
TF_FLOW_XLA = True
DEFAULT_FLOW_BOUND = 20.0  # TSN dense_flow's default bound, in pixels per frame
DEFAULT_JPEG_QUALITY = 95  # OpenCV's default, what dense_flow's cv::imencode wrote
PARTIAL_SUFFIX = ".partial"


class VideoReadError(RuntimeError):
    """A video (or frame folder) that cannot be read; the message names the file."""


# ----------------------------------------------------------------------------- decoding, resizing


def parse_resize(spec):
    """A resize spec → None, an int (short side) or a (width, height) tuple.

    Accepts None / "" / 0 (keep the size), an int or "256" (short side, aspect kept), and
    "340x256" or (340, 256) (fixed width × height, as TSN's 340×256 dumps).
    """
    if spec is None or spec == "" or spec == 0:
        return None
    if isinstance(spec, (tuple, list)):
        width, height = (int(v) for v in spec)
    elif isinstance(spec, int):
        width, height = spec, None
    else:
        text = str(spec).lower().strip()
        try:
            if "x" in text:
                width, height = (int(v) for v in text.split("x"))
            else:
                width, height = int(text), None
        except ValueError:
            raise ValueError(f"resize {spec!r}: expected a short side like 256 or WxH like 340x256") from None
    if width <= 0 or (height is not None and height <= 0):
        raise ValueError(f"resize {spec!r}: sizes must be positive")
    return width if height is None else (width, height)


def resized_shape(height, width, resize):
    """(height, width) after `resize` (see `parse_resize`); the short side is rounded to nearest."""
    if resize is None:
        return height, width
    if isinstance(resize, tuple):
        return resize[1], resize[0]
    scale = resize / min(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize_frame(frame, resize):
    """Bilinear resize (cv::resize default, as dense_flow) of one frame to `parse_resize`'s spec."""
    height, width = frame.shape[:2]
    new_height, new_width = resized_shape(height, width, resize)
    if (new_height, new_width) == (height, width):
        return frame
    return cv2.resize(frame, (new_width, new_height), interpolation=cv2.INTER_LINEAR)


def iter_video_frames(path, resize=None):
    """Yields the frames of a video as BGR uint8 [H, W, 3], decoded sequentially (never seeking).

    Raises VideoReadError naming the file if it cannot be opened or yields no frame.
    """
    if not os.path.isfile(path):
        raise VideoReadError(f"{path}: no such video file")
    capture = cv2.VideoCapture(path)
    try:
        if not capture.isOpened():
            raise VideoReadError(f"{path}: cannot open as a video (not a video, or a codec this OpenCV build lacks)")
        resize, count = parse_resize(resize), 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            count += 1
            yield resize_frame(frame, resize)
        if count == 0:
            raise VideoReadError(f"{path}: no frame could be decoded (empty or corrupt video)")
    finally:
        capture.release()


def header_frame_count(path):
    """The container's claimed frame count (CAP_PROP_FRAME_COUNT), or None where it is absurd.

    Only for notes: it is off by one on HMDB51 .avi files and garbage on raw MPEG-4 streams.
    """
    capture = cv2.VideoCapture(path)
    count = capture.get(cv2.CAP_PROP_FRAME_COUNT) if capture.isOpened() else 0
    capture.release()
    return int(count) if 0 < count < 1e8 else None


def read_video_frames(path, resize=None):
    """All frames of a video in memory: uint8 [N, H, W, 3] RGB, decoded sequentially."""
    return np.stack([cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in iter_video_frames(path, resize)])


# ----------------------------------------------------------------------------- optical flow

# Dual TV-L1 with a coarse, short schedule (4 scales of factor 0.5, 2 warps, 2 outer × 3 inner
# iterations instead of OpenCV's 5 of 0.8, 5 warps, 10 × 30): about 15× faster than "tvl1", within
# 0.1 px of a 3 px translation, and, unlike DIS and Farneback, its flow keeps the outline of a small
# moving object (docs/demo.md). (1 warp and 3 scales is faster still but finds 1.2 px of 3.)
TVL1_FAST = dict(nscales=4, scaleStep=0.5, warps=2, outerIterations=2, innnerIterations=3)


def _one_pair(estimate_batch):
    """A batch estimator (previous [B, H, W], next [B, H, W]) as a one-pair one."""
    return lambda previous, following, flow=None: estimate_batch(previous[None], following[None])[0]


def _farneback(previous, following, flow=None):
    return cv2.calcOpticalFlowFarneback(previous, following, None, 0.5, 3, 15, 3, 5, 1.2, 0)


# method → () → a function (previous_gray, next_gray, flow) → flow float32 [H, W, 2].
_FLOW_ESTIMATORS = {
    "tvl1": lambda: cv2.optflow.DualTVL1OpticalFlow_create().calc,
    "tvl1_fast": lambda: cv2.optflow.DualTVL1OpticalFlow_create(**TVL1_FAST).calc,  # "innner": OpenCV's spelling
    "tvl1_tf": lambda: _one_pair(make_batch_flow_estimator("tvl1_tf")),
    "tvl1_tf_fast": lambda: _one_pair(make_batch_flow_estimator("tvl1_tf_fast")),
    "dis": lambda: cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc,
    "farneback": lambda: _farneback,
}


def make_flow_estimator(method="tvl1"):
    """A function (previous_gray, next_gray) → flow float32 [H, W, 2] (dx, dy in pixels).

    * "tvl1": OpenCV's Dual TV-L1 (opencv-contrib `cv2.optflow`) with its default parameters, the
      CPU twin of dense_flow's GPU TV-L1 that made the release's flow (release §3.1).
    * "tvl1_fast": the same algorithm with a coarse, short schedule (`TVL1_FAST`): about 15× faster,
      and its flow still shows the outline of what moves (the demo's flow).
    * "tvl1_tf": the same algorithm in TensorFlow (`actionvlad_tf.tvl1`), batched over the pairs
      of a video (see `make_batch_flow_estimator`), on the GPU where there is one.
    * "tvl1_tf_fast": "tvl1_fast"'s schedule in TensorFlow (within 0.1 px of OpenCV's on the demo's
      frames; about 2× its pairs per second on 2 CPU cores, docs/performance.md).
    * "dis": DIS optical flow, MEDIUM preset: about 10–80× faster, smoother, less accurate; small
      objects become blobs.
    * "farneback": Farneback's polynomial expansion (pyramid 0.5 × 3, window 15, 3 iterations).
    """
    if method not in _FLOW_ESTIMATORS:
        raise ValueError(f"flow method {method!r}: expected one of {FLOW_METHODS}")
    return _FLOW_ESTIMATORS[method]()


# OpenCV's DualTVL1OpticalFlow_create keywords → actionvlad_tf.tvl1.TVL1Params fields.
_TVL1_PARAM_NAMES = dict(
    nscales="nscales",
    scaleStep="scale_step",
    warps="warps",
    outerIterations="outer_iterations",
    innnerIterations="inner_iterations",
)
_TF_TVL1_PARAMS = {
    "tvl1_tf": tvl1.TVL1Params(),
    "tvl1_tf_fast": tvl1.TVL1Params(**{_TVL1_PARAM_NAMES[k]: v for k, v in TVL1_FAST.items()}),
}


@functools.lru_cache(maxsize=None)
def _tf_tvl1(jit_compile, method="tvl1_tf"):
    return tvl1.TVL1(params=_TF_TVL1_PARAMS[method], jit_compile=jit_compile)


def make_batch_flow_estimator(method="tvl1"):
    """A function (previous [B, H, W], next [B, H, W]) uint8 → flow float32 [B, H, W, 2].

    The TensorFlow methods (`TF_FLOW_METHODS`) compute the B pairs in one call, padded to a multiple
    of `TF_FLOW_BATCH` pairs by repeating the last (a pair's flow does not depend on its batch), so
    that a frame size is compiled once; the OpenCV methods compute one pair after another.
    """
    if method not in TF_FLOW_METHODS:
        estimate = make_flow_estimator(method)
        return lambda previous, following: np.stack([estimate(p, f, None) for p, f in zip(previous, following)])
    model = _tf_tvl1(TF_FLOW_XLA, method)

    def estimate_batch(previous, following):
        count = len(previous)
        padded = -count % TF_FLOW_BATCH if count > 1 else 0
        take = np.concatenate([np.arange(count), np.full(padded, count - 1)]).astype(np.int64)
        flows = [
            model(previous[take[k : k + TF_FLOW_BATCH]], following[take[k : k + TF_FLOW_BATCH]]).numpy()
            for k in range(0, len(take), TF_FLOW_BATCH)
        ]
        return np.concatenate(flows)[:count]

    return estimate_batch


def quantize_flow(flow, bound=DEFAULT_FLOW_BOUND):
    """Flow in pixels → uint8 as dense_flow's `convertFlowToImage` with bounds ±bound.

    q = cvRound(255·(v + bound) / (2·bound)), 0 below −bound and 255 above +bound. cvRound rounds
    half to even, as `np.rint`, so no motion (127.5) becomes 128.
    """
    scaled = 255.0 * (np.asarray(flow, np.float64) + bound) / (2.0 * bound)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def dequantize_flow(images, bound=DEFAULT_FLOW_BOUND):
    """uint8 flow images → pixels, the inverse of `quantize_flow` up to its step 2·bound/255.

    Note that 128 maps to +bound/255 (0.078 px at bound 20), not to exactly 0.
    """
    return np.asarray(images, np.float32) * np.float32(2.0 * bound / 255.0) - np.float32(bound)


def iter_flow_images(gray_frames, method="tvl1", bound=DEFAULT_FLOW_BOUND):
    """Yields (flow_x, flow_y) uint8 [H, W] for each consecutive pair of grayscale frames.

    The TensorFlow methods take `TF_FLOW_BATCH` pairs at a time; the others one pair at a time.
    """
    estimate = make_batch_flow_estimator(method)
    batch = TF_FLOW_BATCH if method in TF_FLOW_METHODS else 1
    frames = []
    for frame in gray_frames:
        if frames and frame.shape != frames[-1].shape:
            raise VideoReadError(f"frame size changes from {frames[-1].shape} to {frame.shape}")
        frames.append(frame)
        if len(frames) == batch + 1:
            yield from _quantized_pairs(estimate, frames, bound)
            frames = frames[-1:]
    if len(frames) > 1:
        yield from _quantized_pairs(estimate, frames, bound)


def _quantized_pairs(estimate, frames, bound):
    stack = np.stack(frames)
    quantized = quantize_flow(estimate(stack[:-1], stack[1:]), bound)
    for pair in quantized:
        yield pair[..., 0], pair[..., 1]


def compute_flow_images(frames_rgb, method="tvl1", bound=DEFAULT_FLOW_BOUND):
    """Flow images of a video in memory, as `extract_flow` writes them.

    Args:
        frames_rgb: uint8 [N, H, W, 3] RGB frames (N ≥ 2), e.g. from `read_video_frames`.
        method: one of `FLOW_METHODS` ("tvl1", "tvl1_fast", "tvl1_tf", "tvl1_tf_fast", "dis", "farneback"; see
            `make_flow_estimator`).
        bound: clipping bound in pixels (dense_flow's 20).

    Returns:
        (flow_x, flow_y), each uint8 [N−1, H, W]; 128 is no motion.
    """
    frames_rgb = np.asarray(frames_rgb)
    if frames_rgb.ndim != 4 or frames_rgb.shape[-1] != 3 or frames_rgb.dtype != np.uint8:
        raise ValueError(f"frames_rgb must be uint8 [N, H, W, 3], got {frames_rgb.dtype} {list(frames_rgb.shape)}")
    if len(frames_rgb) < 2:
        raise ValueError(f"flow needs at least 2 frames, got {len(frames_rgb)}")
    gray = (cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames_rgb)
    pairs = list(iter_flow_images(gray, method, bound))
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


# ----------------------------------------------------------------------------- frame folders


def count_frames(folder, template=RGB_TEMPLATE):
    """Number n of frames `template % 1 … template % n` in `folder`; a gap is an error.

    Raises VideoReadError naming the folder if it is missing or its numbering has a hole.
    """
    try:
        names = set(os.listdir(folder))
    except FileNotFoundError:
        raise VideoReadError(f"{folder}: frame folder does not exist") from None
    count = 0
    while template % (count + 1) in names:
        count += 1
    beyond = [template % k for k in range(count + 2, len(names) + 2) if template % k in names]
    if beyond:
        raise VideoReadError(
            f"{folder}: {template % (count + 1)} is missing but {beyond[0]} exists "
            f"(frames must be numbered 1 … n without gaps)"
        )
    return count


def frame_files(folder, template=RGB_TEMPLATE):
    """Paths of the frames 1 … n of a folder (see `count_frames`)."""
    return [os.path.join(folder, template % k) for k in range(1, count_frames(folder, template) + 1)]


def iter_folder_frames(folder, template=RGB_TEMPLATE, resize=None):
    """Yields the BGR frames of a frame folder in order; an unreadable image names its file."""
    paths = frame_files(folder, template)
    if not paths:
        raise VideoReadError(f"{folder}: no frame named like {template % 1}")
    resize = parse_resize(resize)
    for path in paths:
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            raise VideoReadError(f"{path}: cannot decode image (corrupt or not an image)")
        yield resize_frame(image, resize)


def write_image(path, image, quality=DEFAULT_JPEG_QUALITY):
    """Writes an image, encoding by the file's extension (JPEG at `quality`)."""
    extension = os.path.splitext(path)[1]
    ok, data = cv2.imencode(extension, image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise VideoReadError(f"{path}: OpenCV cannot encode images as {extension!r}")
    with naming_os_errors(path), open(path, "wb") as f:
        f.write(data.tobytes())


def write_video_frames(video, folder, template=RGB_TEMPLATE, resize=None, quality=DEFAULT_JPEG_QUALITY):
    """Writes every frame of `video` into `folder` as `template % 1 …`; returns a note or None.

    The note says when the container's frame count differs from the decoded one by more than one
    (the decoded count is kept: it is what the files are; the release lists count files too).
    """
    count = 0
    for count, frame in enumerate(iter_video_frames(video, resize), start=1):
        write_image(os.path.join(folder, template % count), frame, quality)
    claimed = header_frame_count(video)
    if claimed is not None and abs(claimed - count) > 1:
        return f"decoded {count} frames, the container claims {claimed}"
    return None


def write_flow(
    source,
    folder,
    source_kind="video",
    method="tvl1",
    bound=DEFAULT_FLOW_BOUND,
    flow_template=FLOW_TEMPLATE,
    frame_template=RGB_TEMPLATE,
    resize=None,
    quality=DEFAULT_JPEG_QUALITY,
):
    """Writes the n−1 flow_x / flow_y images of a video file or frame folder into `folder`.

    Frames are converted to grayscale with cv::cvtColor(BGR2GRAY), as dense_flow does.
    """
    if source_kind == "video":
        frames = iter_video_frames(source, resize)
    elif source_kind == "frames":
        frames = iter_folder_frames(source, frame_template, resize)
    else:
        raise ValueError(f"source_kind {source_kind!r}: expected 'video' or 'frames'")
    template_x, template_y = flow_templates(flow_template)
    gray = (cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in frames)
    count = 0
    for count, (flow_x, flow_y) in enumerate(iter_flow_images(gray, method, bound), start=1):
        write_image(os.path.join(folder, template_x % count), flow_x, quality)
        write_image(os.path.join(folder, template_y % count), flow_y, quality)
    if count == 0:
        raise VideoReadError(f"{source}: a single frame, flow needs at least 2")
    return None


# ----------------------------------------------------------------------------- finding inputs


@dataclasses.dataclass(frozen=True)
class Job:
    """One video to process: its source (video file or frame folder) and output folder name."""

    source: str
    name: str


def _video_name(relative_path, keep_extension):
    name = relative_path.replace(os.sep, "/")
    return name if keep_extension else os.path.splitext(name)[0]


def read_video_list(path, video_root=None, keep_extension=True):
    """Jobs from a list file: one video per line, `path` or `path<TAB>name` (or `path name`).

    Paths are relative to `video_root` (default: the list file's folder); the output name is the
    given name, else the path as written. Blank lines and `#` comments are passed over. A line with
    more than two space-separated fields and no tab is an error naming file and line.
    """
    root = os.path.dirname(os.path.abspath(path)) if video_root is None else video_root
    jobs = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            text = line.rstrip("\r\n")
            if not text.strip() or text.lstrip().startswith("#"):
                continue
            fields = text.split("\t") if "\t" in text else text.split()
            if len(fields) > 2:
                raise ValueError(
                    f"{path}:{number}: expected 'video [name]', got {len(fields)} "
                    "fields (separate by a tab where paths contain spaces)"
                )
            video = fields[0].strip()
            name = fields[1].strip() if len(fields) == 2 else _video_name(video, keep_extension)
            jobs.append(Job(os.path.join(root, video), os.path.normpath(name).replace(os.sep, "/")))
    return jobs


def find_videos(videos, video_root=None, extensions=VIDEO_EXTENSIONS, keep_extension=True):
    """Jobs for a folder of videos (searched recursively) or a list file (`read_video_list`).

    In a folder, the output name is the path below it (extension kept by default: UCF101's
    `Class/v_x.avi/`, release §3.1). Returns (jobs, ignored): `ignored` names the files passed over
    because their extension is not a video extension (hidden files and folders aside).
    """
    if os.path.isfile(videos):
        jobs, ignored = read_video_list(videos, video_root, keep_extension), []
    elif os.path.isdir(videos):
        jobs, ignored = [], []
        for directory, subdirectories, files in os.walk(videos):
            subdirectories[:] = sorted(d for d in subdirectories if not d.startswith("."))
            for file in sorted(f for f in files if not f.startswith(".")):
                path = os.path.join(directory, file)
                relative = os.path.relpath(path, videos)
                if file.lower().endswith(tuple(extensions)):
                    jobs.append(Job(path, _video_name(relative, keep_extension)))
                else:
                    ignored.append(relative)
    else:
        raise FileNotFoundError(f"{videos}: neither a folder of videos nor a video list file")
    check_unique_names(jobs)
    return jobs, ignored


def find_frame_folders(frames_root, template=RGB_TEMPLATE):
    """Jobs for every folder under `frames_root` holding `template % 1` (hidden folders aside)."""
    if not os.path.isdir(frames_root):
        raise FileNotFoundError(f"{frames_root}: frame folder root does not exist")
    jobs = []
    for directory, subdirectories, files in os.walk(frames_root):
        subdirectories[:] = sorted(d for d in subdirectories if not d.startswith("."))
        if template % 1 in files:
            name = os.path.relpath(directory, frames_root).replace(os.sep, "/")
            jobs.append(Job(directory, name))
    return jobs


def check_unique_names(jobs):
    """Two inputs writing the same output folder is an error naming both."""
    seen = {}
    for job in jobs:
        if job.name in seen:
            raise ValueError(f"{seen[job.name]} and {job.source} would both write {job.name!r}")
        seen[job.name] = job.source
        if job.name.startswith("../") or job.name in ("", ".", "..") or os.path.isabs(job.name):
            raise ValueError(f"{job.source}: output name {job.name!r} leaves the output folder")


# ----------------------------------------------------------------------------- atomic jobs


def partial_folder(output_dir, name):
    """`<out>/<parent>/.<leaf>.partial`: beside the final folder, so the rename is atomic."""
    parent, leaf = os.path.split(os.path.join(output_dir, name))
    return os.path.join(parent, f".{leaf}{PARTIAL_SUFFIX}")


def run_atomic(work, job, output_dir):
    """Runs `work(source, folder)` into a fresh partial folder and renames it when complete.

    Returns ("skipped", None) if the final folder exists, else ("done", note). A failing `work`
    leaves nothing behind; a killed one leaves a partial folder that the next run replaces.
    """
    final = os.path.join(output_dir, job.name)
    if os.path.isdir(final):
        return "skipped", None
    partial = partial_folder(output_dir, job.name)
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    try:
        note = work(job.source, partial)
        os.replace(partial, final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return "done", note


def _run_one(work, output_dir, job):
    try:
        status, note = run_atomic(work, job, output_dir)
        return job, status, note
    except Exception as error:  # reported per video in the summary, never dropped
        return job, "failed", f"{type(error).__name__}: {error}"


def _worker_context():
    """A fork server that has imported this module, else spawn (Windows).

    Not plain fork: a child forked from a process that has used OpenCV inherits its thread pool
    with the locks held and deadlocks on its first parallel OpenCV call. The fork server imports
    the package once (a few seconds), then forks clean workers cheaply.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def _single_threaded_worker():
    # One OpenCV thread per process: N processes × N threads would oversubscribe the cores.
    cv2.setNumThreads(1)


def worker_pool(num_workers):
    """A `ProcessPoolExecutor` of `num_workers` processes with one OpenCV thread each, started
    from a fork server (`_worker_context`)."""
    return concurrent.futures.ProcessPoolExecutor(
        num_workers, mp_context=_worker_context(), initializer=_single_threaded_worker
    )


@dataclasses.dataclass
class ExtractionSummary:
    """What a run did: names done and skipped, (name, reason) failed, (name, note) notes, and the
    input files ignored (not videos by extension)."""

    done: list = dataclasses.field(default_factory=list)
    skipped: list = dataclasses.field(default_factory=list)
    failed: list = dataclasses.field(default_factory=list)
    notes: list = dataclasses.field(default_factory=list)
    ignored: list = dataclasses.field(default_factory=list)

    @property
    def ok(self):
        return not self.failed

    def report(self):
        """A human-readable summary: counts, then every failure, note and ignored file."""
        lines = [
            f"done {len(self.done)}, skipped (already complete) {len(self.skipped)}, "
            f"failed {len(self.failed)}, ignored (not a video extension) {len(self.ignored)}"
        ]
        lines += [f"FAILED {name}: {reason}" for name, reason in sorted(self.failed)]
        lines += [f"note {name}: {note}" for name, note in sorted(self.notes)]
        lines += [f"ignored {path}" for path in self.ignored]
        return "\n".join(lines)


def run_jobs(jobs, work, output_dir, num_workers=1, description="videos", progress=True, runner=None):
    """Runs `work(source, folder)` atomically for every job (see `run_atomic`).

    Finished folders are skipped without starting a worker. With num_workers > 1 the jobs run in
    that many processes, each with one OpenCV thread (see `_worker_context`). A `runner` instead
    runs them elsewhere: a callable (run_one, pending jobs, output_dir) → [(job, status, note)] that
    calls `run_one(job)` once per job, e.g. `prep.beam_extraction.BeamRunner("DirectRunner")` (the
    same per-video function as an Apache Beam pipeline). Returns an ExtractionSummary; failures
    are collected, not raised.
    """
    ensure_writable_dir(output_dir)
    summary = ExtractionSummary()
    pending = []
    for job in jobs:
        if os.path.isdir(os.path.join(output_dir, job.name)):
            summary.skipped.append(job.name)
        else:
            pending.append(job)
    one = functools.partial(_run_one, work, output_dir)
    bar = tqdm.tqdm(total=len(pending), desc=description, unit="video", disable=not progress)
    if runner is not None:
        _collect(runner(one, pending, output_dir), summary, bar)
    elif num_workers > 1 and len(pending) > 1:
        with worker_pool(min(num_workers, len(pending))) as pool:
            futures = [pool.submit(one, job) for job in pending]
            _collect((f.result() for f in concurrent.futures.as_completed(futures)), summary, bar)
    else:
        _collect(map(one, pending), summary, bar)
    bar.close()
    return summary


def _collect(results, summary, bar):
    for job, status, note in results:
        if status == "failed":
            summary.failed.append((job.name, note if job.source in note else f"{job.source}: {note}"))
        else:
            getattr(summary, status).append(job.name)
            if note:
                summary.notes.append((job.name, note))
        bar.update()


def extract_frames(
    jobs,
    output_dir,
    template=RGB_TEMPLATE,
    resize=None,
    quality=DEFAULT_JPEG_QUALITY,
    num_workers=1,
    progress=True,
    runner=None,
):
    """Frames of every video job into `<output_dir>/<name>/template`; returns the summary.
    `runner`: see `run_jobs` (None: this machine's processes)."""
    file_names(template, [1])  # a bad template fails here, once, not in every worker
    work = functools.partial(write_video_frames, template=template, resize=parse_resize(resize), quality=quality)
    return run_jobs(jobs, work, output_dir, num_workers, "frames", progress, runner)


def extract_flow(
    jobs,
    output_dir,
    source_kind="video",
    method="tvl1",
    bound=DEFAULT_FLOW_BOUND,
    flow_template=FLOW_TEMPLATE,
    frame_template=RGB_TEMPLATE,
    resize=None,
    quality=DEFAULT_JPEG_QUALITY,
    num_workers=1,
    progress=True,
    runner=None,
):
    """Flow images of every job (video files or frame folders) into `<output_dir>/<name>/`.
    `runner`: see `run_jobs` (None: this machine's processes)."""
    make_flow_estimator(method)  # bad arguments fail here, once, not in every worker
    file_names(frame_template, [1])
    flow_templates(flow_template)
    work = functools.partial(
        write_flow,
        source_kind=source_kind,
        method=method,
        bound=bound,
        flow_template=flow_template,
        frame_template=frame_template,
        resize=parse_resize(resize),
        quality=quality,
    )
    return run_jobs(jobs, work, output_dir, num_workers, f"flow ({method})", progress, runner)
