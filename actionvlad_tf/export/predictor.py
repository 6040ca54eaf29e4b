"""Classifying a video file with a trained model: a `.keras` file or a SavedModel export.

T frames (and, for flow, T stacks of L = 10 flow images) are picked with the release's step
(`prep.video_inputs.sample_inputs`, §3.3), flow is computed from the decoded frames with the data-prep
flow code (TV-L1 by default, quantised as dense_flow, 128 = still), and the frames go through the
model's serving function, which does the eval preprocessing (`export.saved_model`). A `.keras`
model runs through the same serving function as its export, so both paths give the same scores.

A video FILE is streamed, so memory does not grow with its length: `classify_video` decodes it
sequentially, keeping only the T sampled frames (or the T·(L+1) that the flow stacks need). The
sampling needs its n frames, which containers do not reliably state: one pass keeps the frames
that the container's count would sample while it counts the frames decoded, and where the true
count samples other frames (a wrong or missing header count), a second pass keeps those.
`classify_windows` keeps only the current window's frames and flow. A decoded array
([N, H, W, 3]) is accepted as well.

For a long video or a stream, `classify_windows` scores windows of `window` consecutive frames every
`stride` frames (the release author's suggestion for online use,
https://github.com/rohitgirdhar/ActionVLAD/issues/10), each window sampled as a whole video would be.
"""

import os
import pathlib

import cv2
import keras
import numpy as np
import tensorflow as tf
import tqdm

from actionvlad_tf.data import sampling
from actionvlad_tf.export.saved_model import SERVING_INPUT_NAMES, serving_functions
from actionvlad_tf.prep.extraction import (
    DEFAULT_FLOW_BOUND,
    VideoReadError,
    count_frames,
    header_frame_count,
    iter_video_frames,
)
from actionvlad_tf.prep.video_inputs import DEFAULT_FRAMES_PER_VIDEO, FLOW_STACK, FlowCache, FrameBuffer, sample_inputs
from actionvlad_tf.specs import RGB_TEMPLATE

FRAME_TEMPLATES = (RGB_TEMPLATE, "img_%05d.jpg")  # data_prep's, TSN's (shared/data/clips)


def resolve_model_path(path):
    """("keras" | "saved_model", path): a `.keras` file, a SavedModel folder, or an export folder
    in TF Serving's layout (its highest numeric version)."""
    path = pathlib.Path(path)
    if path.is_file() and path.suffix == ".keras":
        return "keras", str(path)
    if (path / "saved_model.pb").is_file():
        return "saved_model", str(path)
    versions = sorted((int(p.name) for p in path.glob("*") if p.name.isdigit() and (p / "saved_model.pb").is_file()))
    if versions:
        return "saved_model", str(path / str(versions[-1]))
    raise FileNotFoundError(
        f"{path}: not a .keras file, a SavedModel folder or an export folder with numbered SavedModel versions"
    )


class Classifier:
    """One video's raw frames → probabilities and top-5, from a `.keras` file or a SavedModel.

    Args:
        path: see `resolve_model_path`.
        class_names: names in label order for a `.keras` model (a SavedModel has them baked in);
            None names classes by index.
        num_crops: test crops for a `.keras` model (1 or 5); a SavedModel does what it was exported with.
        assignments: also output the per-frame soft assignments of each NetVLAD (`.keras` only; see
            `saved_model.model_outputs`).

    Attributes: `modalities` ("rgb", "flow" or both, in that order) and `frames_per_video` (the T the
    model needs, None if any).
    """

    def __init__(self, path, class_names=None, num_crops=1, assignments=False):
        self.kind, self.path = resolve_model_path(path)
        if assignments and self.kind != "keras":
            raise ValueError(
                f"{self.path}: soft assignments need the .keras model (a SavedModel gives "
                "logits and the embedding only)"
            )
        if self.kind == "keras":
            model = keras.saving.load_model(self.path)
            names = class_names or [str(i) for i in range(model.output.shape[-1])]
            (serve, spec), _ = serving_functions(model, list(names), num_crops, assignments=assignments)
            self._serve = tf.function(serve, input_signature=spec)
            self._model = model  # keeps the variables alive
        else:
            if class_names is not None:
                raise ValueError("a SavedModel export has its class names baked in; do not pass class_names")
            self._serve = tf.saved_model.load(self.path).signatures["serving_default"]
            spec = list(self._serve.structured_input_signature[1].values())
        by_name = {s.name: s for s in spec}
        self.modalities = tuple(m for m, name in SERVING_INPUT_NAMES.items() if name in by_name)
        frames = {by_name[SERVING_INPUT_NAMES[m]].shape[0] for m in self.modalities}
        self.frames_per_video = frames.pop() if len(frames) == 1 else None

    def __call__(self, videos):
        """videos: {modality: uint8 [T, H, W, C]} → dict of numpy `probabilities` [C], `logits`,
        `embedding` (where the model has one), `top5_indices` and `top5_classes` (str)."""
        missing = set(self.modalities) - set(videos)
        if missing:
            raise ValueError(f"the model needs {sorted(missing)} input(s)")
        inputs = {SERVING_INPUT_NAMES[m]: tf.constant(videos[m], tf.uint8) for m in self.modalities}
        if self.kind == "keras":
            outputs = self._serve(*inputs.values())
        else:
            outputs = self._serve(**inputs)
        result = {k: v.numpy() for k, v in outputs.items()}
        result["top5_classes"] = [c.decode() for c in result["top5_classes"]]
        return result


def video_size(path):
    """(width, height) of a video file's frames, from the container (0, 0 where it does not say)."""
    capture = cv2.VideoCapture(os.fspath(path))
    size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    capture.release()
    return size


def video_fps(path):
    """Frames per second from the container, or None where it does not say."""
    capture = cv2.VideoCapture(os.fspath(path))
    fps = capture.get(cv2.CAP_PROP_FPS) if capture.isOpened() else 0.0
    capture.release()
    return fps if 0 < fps < 1000 else None


def count_video_frames(path):
    """The number of frames of a video file, read sequentially to the end (as `iter_video_frames`
    decodes it; the container's count is not trusted). Nothing is kept."""
    capture = cv2.VideoCapture(os.fspath(path))
    try:
        if not capture.isOpened():
            raise VideoReadError(f"{path}: cannot open as a video (not a video, or a codec this OpenCV build lacks)")
        count = 0
        while capture.grab():
            count += 1
    finally:
        capture.release()
    if count == 0:
        raise VideoReadError(f"{path}: no frame could be decoded (empty or corrupt video)")
    return count


def _rgb_frames(video):
    """RGB frames of a video file (decoded one at a time) or of an array."""
    if isinstance(video, (str, os.PathLike)):
        return (cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in iter_video_frames(os.fspath(video)))
    return iter(video)


def _modality(modalities):
    return "rgb+flow" if len(modalities) == 2 else modalities[0]


def frame_template(folder):
    """The frame file template of a frame folder: data_prep's `image_%05d.jpg` or TSN's `img_%05d.jpg`."""
    for template in FRAME_TEMPLATES:
        if os.path.isfile(os.path.join(folder, template % 1)):
            return template
    raise VideoReadError(f"{folder}: no frame named {' or '.join(t % 1 for t in FRAME_TEMPLATES)}")


def read_sampled_frames(path, numbers, num_frames):
    """A `FrameBuffer` of a video file (or frame folder) of `num_frames` frames holding only the
    frames `numbers` (1-based): decoded sequentially from a file, read by name from a folder."""
    wanted = set(int(k) - 1 for k in np.ravel(numbers))
    buffer = FrameBuffer(num_frames)
    if os.path.isdir(path):
        template = frame_template(path)
        for position in sorted(wanted):
            file = os.path.join(path, template % (position + 1))
            image = cv2.imread(file, cv2.IMREAD_COLOR)
            if image is None:
                raise VideoReadError(f"{file}: cannot decode image (missing, corrupt or not an image)")
            buffer.add(position, cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        return buffer
    count = 0
    for count, frame in enumerate(iter_video_frames(path), start=1):
        if count - 1 in wanted:
            buffer.add(count - 1, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        if count >= max(wanted) + 1:
            break
    if count < max(wanted) + 1:
        raise VideoReadError(f"{path}: decoded {count} frames, fewer than the {num_frames} counted")
    return buffer


def _needed_frames(num_frames, modalities, frames_per_video, where):
    """The 1-based frame numbers the sampled inputs need: the T frames, or each flow stack's L + 1."""
    first = sampling.frame_numbers(num_frames, frames_per_video, _modality(modalities), FLOW_STACK, where=where)
    return first if "flow" not in modalities else sampling.stack_numbers(first, FLOW_STACK + 1)


def _read_by_header_count(path, modalities, frames_per_video, where):
    """One decoding pass instead of two: keeps the frames that the container's frame count would
    sample while counting the frames decoded; the `FrameBuffer` if the true count samples only
    frames it kept, else None (no count in the header, or a wrong one that moves the samples)."""
    hint = header_frame_count(path)
    if hint is None:
        return None
    try:
        wanted = set(int(k) - 1 for k in np.ravel(_needed_frames(hint, modalities, frames_per_video, where)))
    except ValueError:  # too few frames for the sampling: the count-first path names the problem
        return None
    buffer, count = FrameBuffer(), 0
    for count, frame in enumerate(iter_video_frames(path), start=1):
        if count - 1 in wanted:
            buffer.add(count - 1, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    buffer.num_frames = count
    try:
        needed = set(int(k) - 1 for k in np.ravel(_needed_frames(count, modalities, frames_per_video, where)))
    except ValueError:
        return None
    return buffer if needed <= wanted else None


def video_inputs(
    video,
    modalities,
    frames_per_video=DEFAULT_FRAMES_PER_VIDEO,
    flow_method="tvl1",
    where="video",
    num_frames=None,
    flow_bound=DEFAULT_FLOW_BOUND,
):
    """A whole video's model inputs {modality: uint8 [T, H, W, C]} with the release's sampling:
    from a file (streamed: at most the sampled frames are kept, see the module docstring;
    `num_frames` skips the counting), a frame folder (only the sampled frames are read) or
    decoded uint8 [N, H, W, 3] RGB; flow (for flow models) by `flow_method`, quantised at
    ±`flow_bound` as the model's training flow was."""
    if isinstance(video, (str, os.PathLike)):
        path, video = os.fspath(video), None
        if num_frames is None and not os.path.isdir(path):
            video = _read_by_header_count(path, modalities, frames_per_video, where)
        if video is None:
            if num_frames is None:
                num_frames = (
                    count_frames(path, frame_template(path)) if os.path.isdir(path) else count_video_frames(path)
                )
            video = read_sampled_frames(
                path, _needed_frames(num_frames, modalities, frames_per_video, where), num_frames
            )
    flow = FlowCache(video, flow_method, flow_bound)
    return sample_inputs(video, modalities, frames_per_video, flow, where=where)


def classify_video(
    classifier,
    video,
    frames_per_video=DEFAULT_FRAMES_PER_VIDEO,
    flow_method="tvl1",
    where="video",
    num_frames=None,
    flow_bound=DEFAULT_FLOW_BOUND,
):
    """Scores of a whole video (a file, a frame folder or an array; see `video_inputs`)."""
    return classifier(
        video_inputs(
            video,
            classifier.modalities,
            classifier.frames_per_video or frames_per_video,
            flow_method,
            where,
            num_frames,
            flow_bound,
        )
    )


def window_starts(num_frames, window, stride):
    """0-based starts of the windows [s, s + window) that fit in the video; one window of the whole
    video when it is shorter than `window`."""
    if window < 1 or stride < 1:
        raise ValueError(f"window ({window}) and stride ({stride}) must be ≥ 1")
    return list(range(0, max(num_frames - window, 0) + 1, stride))


def classify_windows(
    classifier,
    video,
    window=DEFAULT_FRAMES_PER_VIDEO,
    stride=DEFAULT_FRAMES_PER_VIDEO,
    frames_per_video=DEFAULT_FRAMES_PER_VIDEO,
    flow_method="tvl1",
    where="video",
    progress=True,
    flow_bound=DEFAULT_FLOW_BOUND,
):
    """Yields (start, end, scores) for each window of `window` frames every `stride` frames
    (0-based, end exclusive; one window of the whole video when it is shorter), as the frames of
    `video` (a file, decoded one at a time, or an array) arrive: only the current window's frames
    and flow are kept. With a progress bar over the frames."""
    window_starts(window, window, stride)  # checks the arguments
    frames_per_video = classifier.frames_per_video or frames_per_video
    buffer = FrameBuffer()
    flow = FlowCache(buffer, flow_method, flow_bound)
    start = 0

    def score(start, end):
        inputs = sample_inputs(
            buffer,
            classifier.modalities,
            frames_per_video,
            flow,
            start,
            end - start,
            where=f"{where} frames {start + 1}-{end}",
        )
        return start, end, classifier(inputs)

    total = len(video) if not isinstance(video, (str, os.PathLike)) else None
    with tqdm.tqdm(total=total, desc="frames", unit="frame", disable=not progress) as bar:
        for position, frame in enumerate(_rgb_frames(video)):
            buffer.add(position, frame)
            bar.update()
            if position + 1 == start + window:
                yield score(start, start + window)
                start += stride
                buffer.drop_before(start)
                flow.drop_before(start + 1)
    if start == 0 and len(buffer):  # shorter than one window: the whole video
        yield score(0, len(buffer))
