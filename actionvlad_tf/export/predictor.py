"""Classifying a video file with a trained model: a `.keras` file or a SavedModel export.

The video is decoded (`prep.extraction.read_video_frames`), T frames (and, for flow, T stacks of
L = 10 flow images) are picked with the release's step (`prep.video_inputs.sample_inputs`, §3.3), flow
is computed from the decoded frames with the data-prep flow code (TV-L1 by default, quantised as
dense_flow, 128 = still), and the frames go through the model's serving function, which does the
eval preprocessing (`export.saved_model`). A `.keras` model runs through the same serving function
as its export, so both paths give the same scores.

For a long video or a stream, `classify_windows` scores windows of `window` consecutive frames every
`stride` frames (the release author's suggestion for online use,
https://github.com/rohitgirdhar/ActionVLAD/issues/10), each window sampled as a whole video would be.
"""
import os
import pathlib

import cv2
import keras
import tensorflow as tf
import tqdm

from actionvlad_tf.export.saved_model import SERVING_INPUT_NAMES, serving_functions
from actionvlad_tf.prep.video_inputs import DEFAULT_FRAMES_PER_VIDEO, FlowCache, sample_inputs

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
    raise FileNotFoundError(f"{path}: not a .keras file, a SavedModel folder or an export folder with "
                            "numbered SavedModel versions")


class Classifier:
    """One video's raw frames → probabilities and top-5, from a `.keras` file or a SavedModel.

    Args:
        path: see `resolve_model_path`.
        class_names: names in label order for a `.keras` model (a SavedModel has them baked in);
            None names classes by index.
        num_crops: test crops for a `.keras` model (1 or 5); a SavedModel does what it was exported with.

    Attributes: `modalities` ("rgb", "flow" or both, in that order) and `frames_per_video` (the T the
    model needs, None if any).
    """

    def __init__(self, path, class_names=None, num_crops=1):
        self.kind, self.path = resolve_model_path(path)
        if self.kind == "keras":
            model = keras.saving.load_model(self.path)
            names = class_names or [str(i) for i in range(model.output.shape[-1])]
            (serve, spec), _ = serving_functions(model, list(names), num_crops)
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
        `top5_indices` and `top5_classes` (str)."""
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


def video_fps(path):
    """Frames per second from the container, or None where it does not say."""
    capture = cv2.VideoCapture(os.fspath(path))
    fps = capture.get(cv2.CAP_PROP_FPS) if capture.isOpened() else 0.0
    capture.release()
    return fps if 0 < fps < 1000 else None


def classify_video(classifier, frames, frames_per_video=DEFAULT_FRAMES_PER_VIDEO, flow_method="tvl1",
                   where="video"):
    """Scores of a whole decoded video (uint8 [N, H, W, 3] RGB)."""
    frames_per_video = classifier.frames_per_video or frames_per_video
    flow = FlowCache(frames, flow_method)
    return classifier(sample_inputs(frames, classifier.modalities, frames_per_video, flow, where=where))


def window_starts(num_frames, window, stride):
    """0-based starts of the windows [s, s + window) that fit in the video; one window of the whole
    video when it is shorter than `window`."""
    if window < 1 or stride < 1:
        raise ValueError(f"window ({window}) and stride ({stride}) must be ≥ 1")
    return list(range(0, max(num_frames - window, 0) + 1, stride))


def classify_windows(classifier, frames, window=DEFAULT_FRAMES_PER_VIDEO, stride=DEFAULT_FRAMES_PER_VIDEO,
                     frames_per_video=DEFAULT_FRAMES_PER_VIDEO, flow_method="tvl1", where="video",
                     progress=True):
    """Yields (start, end, scores) for each window of `window` frames every `stride` frames
    (0-based, end exclusive), with a progress bar."""
    frames_per_video = classifier.frames_per_video or frames_per_video
    flow = FlowCache(frames, flow_method)
    starts = window_starts(len(frames), window, stride)
    for start in tqdm.tqdm(starts, desc="windows", unit="window", disable=not progress):
        end = min(start + window, len(frames))
        inputs = sample_inputs(frames, classifier.modalities, frames_per_video, flow, start, end - start,
                               where=f"{where} frames {start + 1}-{end}")
        yield start, end, classifier(inputs)
