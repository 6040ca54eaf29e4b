"""Which frames and flow stacks of a video are read: the release's index formulas (§3.3).

Let n be the list frame count, T the samples per video, L the flow stack length. Every function
returns 1-based file numbers (`image_%05d.jpg`, `flow_x_%05d.jpg` number the files from 1):

| case | first file number of sample i (i = 0 … T−1) |
|---|---|
| RGB, T > 1 | 1 + i·⌊(n−1)/(T−1)⌋ |
| flow and rgb+flow, T > 1 | 1 + i·⌊(n−L)/T⌋; the flow stack is files first … first+L−1 |
| RGB, T = 1 | 1 + r, r ~ U{0 … n−1} |
| flow and rgb+flow, T = 1 | 1 + r, r ~ U{0 … n−L−2} |
| temporal jitter (any T) | TSN segments: 1 + ⌊(i + u_i)·m/T⌋, u_i ~ U[0, 1), m = n (RGB) or n−L |

For rgb+flow both streams share the numbers: RGB frame `first` is paired with the flow stack that
starts at `first`. Short videos give repeated numbers (the step is 0, §3.3). A 4-column list
clip adds its `start_frame` to every number. Flow needs n−1 ≥ L flow images per direction.

Randomness enters only through `u` (uniform draws in [0, 1)). Without draws (evaluation), u = ½:
the middle of each segment (TSN's test sampling) and the middle frame for T = 1.

The same formula serves numpy (`frame_numbers`, for data preparation and checks) and TensorFlow
(`frame_numbers_tf`, inside the tf.data graph); the tests check that both agree.
"""

import types

import numpy as np
import tensorflow as tf

from actionvlad_tf.specs import FLOW_STACK, MODALITIES  # noqa: F401  (MODALITIES re-exported)

_NUMPY = types.SimpleNamespace(
    float=lambda x: np.asarray(x, np.float64),
    floor_int=lambda x: np.floor(x).astype(np.int64),
    int=lambda x: np.asarray(x, np.int64),
    arange=lambda n: np.arange(n, dtype=np.int64),
    minimum=np.minimum,
    maximum=np.maximum,
)
_TF = types.SimpleNamespace(
    float=lambda x: tf.cast(x, tf.float64),
    floor_int=lambda x: tf.cast(tf.floor(x), tf.int64),
    int=lambda x: tf.cast(x, tf.int64),
    arange=lambda n: tf.range(n, dtype=tf.int64),
    minimum=tf.minimum,
    maximum=tf.maximum,
)


def check_sampling_arguments(num_frames, frames_per_video, modality, flow_stack, where="video"):
    """ValueError (naming `where`) when the video cannot be sampled for this modality."""
    if modality not in MODALITIES:
        raise ValueError(f"modality {modality!r} is not one of {MODALITIES}")
    if frames_per_video < 1:
        raise ValueError(f"frames_per_video {frames_per_video} < 1")
    if num_frames < 1:
        raise ValueError(f"{where}: {num_frames} frames, nothing to sample")
    if modality != "rgb" and num_frames - 1 < flow_stack:
        raise ValueError(
            f"{where}: {num_frames} frames give {num_frames - 1} flow images per "
            f"direction, fewer than one stack of {flow_stack}"
        )


def _first_numbers(n, start, frames_per_video, modality, flow_stack, temporal_jitter, u, ops):
    """1-based first file number of each sample (see the module table); `ops` is numpy or TF."""
    n, start = ops.int(n), ops.int(start)
    i = ops.arange(frames_per_video)
    if temporal_jitter or frames_per_video == 1:
        if temporal_jitter:
            span = n if modality == "rgb" else n - flow_stack
            position = (ops.float(i) + u) * ops.float(span) / frames_per_video
        else:  # the release's U{0 … n−1} (RGB) and U{0 … n−L−2} (flow), §3.3
            span = n if modality == "rgb" else ops.maximum(n - flow_stack - 1, 1)
            position = u * ops.float(span)
        offsets = ops.minimum(ops.floor_int(position), span - 1)  # u < 1, guard float rounding
    elif modality == "rgb":
        offsets = i * ((n - 1) // (frames_per_video - 1))
    else:
        offsets = i * ((n - flow_stack) // frames_per_video)
    return 1 + start + offsets


def frame_numbers(
    num_frames,
    frames_per_video,
    modality="rgb",
    flow_stack=FLOW_STACK,
    start_frame=0,
    temporal_jitter=False,
    rng=None,
    where="video",
):
    """numpy: the T first file numbers (1-based, int64 [T]) of a video's samples.

    Args:
        num_frames: n, the list's frame count (of the clip, for 4-column lists).
        frames_per_video: T.
        modality: "rgb", "flow" or "rgb+flow" (shared numbers).
        flow_stack: L.
        start_frame: 0-based clip offset (4-column lists).
        temporal_jitter: TSN segment sampling instead of the release's fixed step.
        rng: a `np.random.Generator` for the random cases (T = 1, jitter); None takes u = ½.
        where: names the video in errors (e.g. `VideoEntry.where`).
    """
    check_sampling_arguments(num_frames, frames_per_video, modality, flow_stack, where)
    u = rng.random(frames_per_video) if rng is not None else np.full(frames_per_video, 0.5)
    return _first_numbers(num_frames, start_frame, frames_per_video, modality, flow_stack, temporal_jitter, u, _NUMPY)


def frame_numbers_tf(
    num_frames,
    frames_per_video,
    modality="rgb",
    flow_stack=FLOW_STACK,
    start_frame=0,
    temporal_jitter=False,
    uniform=None,
):
    """TensorFlow: as `frame_numbers`, with `num_frames`/`start_frame` scalar tensors.

    `uniform` is a float [T] tensor of draws in [0, 1) (e.g. `tf.random.stateless_uniform`) for the
    random cases; None takes u = ½. Frame counts are checked in Python before the graph (the
    pipeline calls `check_sampling_arguments` on every list entry).
    """
    u = tf.fill([frames_per_video], tf.constant(0.5, tf.float64)) if uniform is None else tf.cast(uniform, tf.float64)
    return _first_numbers(num_frames, start_frame, frames_per_video, modality, flow_stack, temporal_jitter, u, _TF)


def stack_numbers(first_numbers, flow_stack=FLOW_STACK):
    """[…, T] first numbers → […, T, L] flow file numbers (first + j); numpy or TF, as given."""
    if isinstance(first_numbers, np.ndarray):
        return first_numbers[..., None] + np.arange(flow_stack, dtype=first_numbers.dtype)
    return first_numbers[..., None] + tf.range(flow_stack, dtype=first_numbers.dtype)
