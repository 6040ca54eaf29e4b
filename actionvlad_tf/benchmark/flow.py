"""Optical flow against known motion and against OpenCV: the sequences, the errors, the speed.

* `synthetic_pair(kind, …)`: a textured image and its warp by a known, occlusion-free flow
  (translation, rotation about the centre, or a smooth random field), so the true flow from the
  first image to the second is known exactly: I0(x) = I1(x + u(x)), with I1 a multi-scale random
  texture and I0 sampled from it by cv::remap (bicubic).
* `synthetic_accuracy`: mean endpoint error (EPE) of OpenCV's TV-L1 and of `tvl1_tf` against the
  truth on such pairs, and between the two.
* `clip_agreement`: on real frames, the EPE between the two methods' flows and the share of the
  ±20 px quantised values (the flow JPEGs) that agree within ±1 and ±2.
"""

import glob
import multiprocessing
import os
import time

import cv2
import numpy as np
import tensorflow as tf

from actionvlad_tf import tvl1
from actionvlad_tf.benchmark.timing import interleaved_times
from actionvlad_tf.prep.extraction import quantize_flow

SYNTHETIC_KINDS = ("translation", "rotation", "smooth")


def texture(height, width, seed=0):
    """A float32 [H, W] texture in [0, 255]: blurred noise at scales 1, 2, 4 and 8 px, summed."""
    rng = np.random.default_rng(seed)
    image = np.zeros((height, width), np.float32)
    for sigma, weight in ((1.0, 0.3), (2.0, 0.3), (4.0, 0.25), (8.0, 0.15)):
        layer = cv2.GaussianBlur(rng.standard_normal((height, width)).astype(np.float32), (0, 0), sigma)
        image += weight * layer / (layer.std() + 1e-6)
    return cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX)


def true_flow(kind, height, width, magnitude, seed=0):
    """The flow [H, W, 2] of a `kind` motion: `magnitude` is the shift (translation, px), the
    angle (rotation, degrees) or the largest displacement (smooth, px)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    if kind == "translation":
        angle = rng.uniform(0, 2 * np.pi)
        return np.stack([np.full_like(x, magnitude * np.cos(angle)), np.full_like(y, magnitude * np.sin(angle))], -1)
    if kind == "rotation":
        theta = np.deg2rad(magnitude)
        cy, cx = (height - 1) / 2, (width - 1) / 2
        rx = np.cos(theta) * (x - cx) - np.sin(theta) * (y - cy) + cx
        ry = np.sin(theta) * (x - cx) + np.cos(theta) * (y - cy) + cy
        return np.stack([rx - x, ry - y], -1)
    if kind == "smooth":
        field = rng.standard_normal((height, width, 2)).astype(np.float32)
        sigma = max(height, width) / 6
        field = cv2.GaussianBlur(field, (0, 0), sigma)
        # Smooth enough never to fold (|∂u/∂x| < 1), so nothing is occluded.
        return field * (magnitude / np.abs(field).max())
    raise ValueError(f"synthetic flow kind {kind!r}: expected one of {SYNTHETIC_KINDS}")


def synthetic_pair(kind, height, width, magnitude, seed=0):
    """(first uint8 [H, W], second uint8 [H, W], true flow float32 [H, W, 2]) of a `kind` motion.

    The second image is the texture; the first samples it at x + u(x), so that the flow from the
    first to the second is u everywhere (the margin keeps every sample inside the texture).
    """
    flow = true_flow(kind, height, width, magnitude, seed).astype(np.float32)
    margin = int(np.ceil(np.abs(flow).max())) + 4
    big = texture(height + 2 * margin, width + 2 * margin, seed + 1)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    map_x, map_y = x + np.float32(margin) + flow[..., 0], y + np.float32(margin) + flow[..., 1]
    first = cv2.remap(big, map_x, map_y, cv2.INTER_CUBIC)
    second = big[margin : margin + height, margin : margin + width]
    as_uint8 = lambda image: np.clip(np.rint(image), 0, 255).astype(np.uint8)  # noqa: E731
    return as_uint8(first), as_uint8(second), flow


def opencv_tvl1(first, second):
    """OpenCV's TV-L1 (default parameters) of each pair of [B, H, W] uint8 stacks."""
    estimator = cv2.optflow.DualTVL1OpticalFlow_create()
    return np.stack([estimator.calc(a, b, None) for a, b in zip(first, second)])


def synthetic_accuracy(
    height=96,
    width=128,
    seed=0,
    model=None,
    cases=(("translation", 1.5), ("translation", 4.0), ("rotation", 3.0), ("smooth", 2.0), ("smooth", 5.0)),
):
    """EPE against the truth of OpenCV's TV-L1 and `tvl1_tf` on synthetic pairs, one row per case.

    The EPE leaves out a border of 8 px (where the second image's content leaves the frame).
    Returns a list of dicts: kind, magnitude, epe_opencv, epe_tf, epe_tf_vs_opencv, ratio.
    """
    model = model or tvl1.TVL1()
    pairs = [synthetic_pair(kind, height, width, magnitude, seed + k) for k, (kind, magnitude) in enumerate(cases)]
    first, second, truth = (np.stack(column) for column in zip(*pairs))
    flow_cv = opencv_tvl1(first, second)
    flow_tf = model(first, second).numpy()
    inner = (slice(None), slice(8, -8), slice(8, -8))
    rows = []
    for k, (kind, magnitude) in enumerate(cases):
        epe_cv = tvl1.endpoint_error(flow_cv[k][inner[1:]], truth[k][inner[1:]])
        epe_tf = tvl1.endpoint_error(flow_tf[k][inner[1:]], truth[k][inner[1:]])
        rows.append(
            dict(
                kind=kind,
                magnitude=magnitude,
                epe_opencv=epe_cv,
                epe_tf=epe_tf,
                epe_tf_vs_opencv=tvl1.endpoint_error(flow_tf[k], flow_cv[k]),
                ratio=epe_tf / epe_cv,
            )
        )
    return rows


def read_video_gray(path, count=None):
    """Grayscale uint8 frames [N, H, W] of a video, the first `count`."""
    capture, frames = cv2.VideoCapture(path), []
    while count is None or len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
    capture.release()
    if len(frames) < 2:
        raise ValueError(f"{path}: fewer than 2 frames decoded")
    return np.stack(frames)


def clip_agreement(frames, model=None, bound=20.0):
    """OpenCV TV-L1 against `tvl1_tf` on consecutive pairs of grayscale frames [N, H, W].

    Returns: pairs, mean EPE between the flows, and the fractions of quantised values (both
    components, ±`bound` → [0, 255] as the flow JPEGs) equal, within ±1 and within ±2.
    """
    model = model or tvl1.TVL1()
    first, second = frames[:-1], frames[1:]
    flow_cv = opencv_tvl1(first, second)
    flow_tf = model(first, second).numpy()
    difference = np.abs(quantize_flow(flow_tf, bound).astype(np.int16) - quantize_flow(flow_cv, bound).astype(np.int16))
    return dict(
        pairs=len(first),
        epe=tvl1.endpoint_error(flow_tf, flow_cv),
        mean_motion_opencv=float(np.mean(np.linalg.norm(flow_cv, axis=-1))),
        quantized_equal=float(np.mean(difference == 0)),
        quantized_within_1=float(np.mean(difference <= 1)),
        quantized_within_2=float(np.mean(difference <= 2)),
    )


def opencv_pairs_per_second(first, second, processes):
    """Wall-clock pairs/s of OpenCV's TV-L1 over `processes` worker processes (one OpenCV thread
    each, as extract_flow.py runs it), splitting the pairs among them."""
    context = multiprocessing.get_context("forkserver")
    chunks = [(first[k::processes], second[k::processes]) for k in range(processes)]
    with context.Pool(processes, initializer=cv2.setNumThreads, initargs=(1,)) as pool:
        pool.starmap(_opencv_chunk, [(a[:1], b[:1]) for a, b in chunks])  # start-up, untimed
        start = time.perf_counter()
        pool.starmap(_opencv_chunk, chunks)
        return len(first) / (time.perf_counter() - start)


def _opencv_chunk(first, second):
    opencv_tvl1(first, second)
    return len(first)


def clip_videos(clips_dir):
    """The videos of a clips folder (`ucf101/*`, `hmdb51/*`, any depth), sorted."""
    found = []
    for extension in ("avi", "mp4", "mkv", "webm"):
        found += glob.glob(os.path.join(clips_dir, "**", f"*.{extension}"), recursive=True)
    return sorted(found)


def smooth_pairs(height, width, pairs):
    """(first, second) uint8 [pairs, H, W]: synthetic smooth motions of 1 to 3 px, the speed rows' input."""
    made = [synthetic_pair("smooth", height, width, 1.0 + 2.0 * (k % 3) / 2, seed=k) for k in range(pairs)]
    return np.stack([m[0] for m in made]), np.stack([m[1] for m in made])


def tvl1_tf_rates(first, second, runs, repeats=2, warmup=1):
    """({name: pairs/s}, {name: Timing}) of `tvl1_tf` for each of `runs` ({name: (device,
    jit_compile, batch)}), timed side by side: a call flows max(batch, len(first)) pairs (the pairs
    tiled where fewer) in calls of `batch` pairs on `device`."""

    def flows(model, a, b, batch):
        return lambda: [model(a[k : k + batch], b[k : k + batch]) for k in range(0, len(a), batch)]

    calls, counts = {}, {}
    for name, (device, jit_compile, batch) in runs.items():
        model = tvl1.TVL1(jit_compile=jit_compile, device=device)
        count = max(batch, len(first))
        reps = -(-count // len(first))
        a, b = np.tile(first, (reps, 1, 1))[:count], np.tile(second, (reps, 1, 1))[:count]
        calls[name] = flows(model, a, b, batch)
        counts[name] = count
    times = interleaved_times(calls, repeats=repeats, warmup=warmup)
    return {name: counts[name] / t.median for name, t in times.items()}, times


def bench_flow(
    height=256,
    width=340,
    pairs=16,
    batch=16,
    repeats=2,
    warmup=1,
    xla=True,
    accuracy_shape=(96, 128),
    clips_dir=None,
    clip_frames=6,
    gpu_batch=64,
):
    """Flow pairs per second side by side, and accuracy against the truth and against OpenCV.

    Speed: OpenCV's TV-L1 in 1 process and in one process per core (as extract_flow.py runs it),
    `tvl1_tf` on the CPU batched `batch` pairs per call, as a graph and with XLA, and on the first
    GPU (XLA, `gpu_batch` pairs per call) where there is one. The pairs are synthetic smooth
    motions of up to 3 px at height × width. Accuracy: `synthetic_accuracy` at accuracy_shape and,
    with `clips_dir`, `clip_agreement` on the first `clip_frames` frames of every clip.
    """
    first, second = smooth_pairs(height, width, pairs)
    cores = os.cpu_count() or 1
    rates = {}
    for processes in sorted({1, cores}):
        rates[f"opencv_{processes}_process{'es' if processes > 1 else ''}"] = max(
            opencv_pairs_per_second(first, second, processes) for _ in range(repeats)
        )
    runs = {"tvl1_tf_cpu_graph": ("/CPU:0", False, batch)}
    if xla:
        runs["tvl1_tf_cpu_xla"] = ("/CPU:0", True, batch)
    if tf.config.list_physical_devices("GPU"):
        runs["tvl1_tf_gpu_xla"] = ("/GPU:0", True, gpu_batch)
    tf_rates, times = tvl1_tf_rates(first, second, runs, repeats=repeats, warmup=warmup)
    rates.update(tf_rates)
    reference = rates[f"opencv_{cores}_process{'es' if cores > 1 else ''}"]
    results = {
        "shape": dict(height=height, width=width, pairs=pairs, batch=batch, gpu_batch=gpu_batch),
        "pairs_per_s": rates,
        "vs_opencv_all_cores": {k: v / reference for k, v in rates.items()},
        "samples_s": {k: t.samples for k, t in times.items()},
    }
    accuracy_model = tvl1.TVL1(device="/CPU:0")
    results["synthetic"] = synthetic_accuracy(*accuracy_shape, model=accuracy_model)
    if clips_dir and os.path.isdir(clips_dir):
        clips = {}
        for video in clip_videos(clips_dir):
            frames = read_video_gray(video, clip_frames)
            clips[os.path.relpath(video, clips_dir)] = dict(
                clip_agreement(frames, accuracy_model), height=int(frames.shape[1]), width=int(frames.shape[2])
            )
        results["clips"] = clips
        weights = np.array([c["pairs"] * c["height"] * c["width"] for c in clips.values()], float)
        results["clips_overall"] = {
            key: float(np.average([c[key] for c in clips.values()], weights=weights))
            for key in ("epe", "quantized_equal", "quantized_within_1", "quantized_within_2")
        }
    return results
