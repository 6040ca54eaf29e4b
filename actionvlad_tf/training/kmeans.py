"""k-means initialisation of the ActionVLAD centres (release §5, §8 rows 17–19).

The release dumps the pre-ReLU conv5_3 maps of random training frames (one random frame of a
shuffled video at a time, the single test crop), takes the first 5000 frames (5000 × 196 = 980k
descriptors × 512), L2-normalises every descriptor ("V.IMP": the network sees normalised
descriptors) and runs scikit-learn's KMeans with K = 64. Here the same, with a fixed seed (the
release's had none, §8 row 19); the centres are returned as k-means gives them, NOT re-normalised
(§5.3: means of unit vectors, ‖c‖ < 1), and stored as `.npz` (never a pickle; `actionvlad_tf.centers`).
"""

import dataclasses
import logging
import time

import keras
import numpy as np
import tensorflow as tf
from sklearn.cluster import KMeans, MiniBatchKMeans
from tqdm.auto import tqdm

from actionvlad_tf.data.sampling import frame_numbers
from actionvlad_tf.layers import l2_normalize  # the normalisation NetVLAD applies to its descriptors
from actionvlad_tf.specs import FLOW_STACK

log = logging.getLogger(__name__)

ALGORITHMS = ("kmeans", "minibatch")
RELEASE_NUM_FRAMES = 5000  # `--nfeats 5000`: frames, i.e. 980k descriptors (§8 row 18)


def sample_frame_entries(entries, num_frames, modality="rgb", flow_stack=FLOW_STACK, seed=0):
    """`num_frames` single-frame clips for descriptor sampling (release §5.1: T = 1, shuffled
    videos, cycling through the list as often as needed, each visit a new random frame).

    Each returned `VideoEntry` is a one-sample clip whose `start_frame` puts the drawn frame (or
    flow stack) first, so the evaluation pipeline with T = 1 (middle of a one-sample clip) reads
    exactly that frame with the single test crop.
    """
    entries = list(entries)
    if not entries:
        raise ValueError("no videos to sample frames from")
    rng = np.random.default_rng(seed)
    clip_length = 1 if modality == "rgb" else flow_stack + 1  # one RGB frame / one flow stack
    chosen = []
    while len(chosen) < num_frames:
        for index in rng.permutation(len(entries)):
            entry = entries[index]
            (first,) = frame_numbers(
                entry.num_frames, 1, modality, flow_stack, entry.start_frame, rng=rng, where=entry.where
            )
            chosen.append(dataclasses.replace(entry, num_frames=clip_length, start_frame=int(first) - 1))
            if len(chosen) == num_frames:
                break
    return chosen


def _flatten_frames(frames):
    """[B, S, S, C] or [B, 1, S, S, C] (or a dict of those, one per stream) → [B, S, S, C]."""
    return tf.nest.map_structure(lambda t: tf.reshape(t, (-1, *t.shape[-3:])), frames)


def sample_descriptors(feature_fn, frames, num_frames, descriptors_per_frame=None, seed=0, progress=True):
    """L2-normalised descriptors [N, D] of the first `num_frames` frames of `frames`.

    Args:
        feature_fn: frames [B, S, S, C] (or a dict of streams) → maps [B, h, w, D], e.g. the frozen
            backbone (`backbones(model)[0]`, pre-ReLU at the conv endpoint).
        frames: an iterable (e.g. a `tf.data.Dataset`) of frame batches [B, S, S, C] or
            [B, 1, S, S, C], or of tuples whose first element is that batch.
        num_frames: frames to use (release: 5000); fewer available is an error.
        descriptors_per_frame: keep this many random positions per frame (None: all h·w, the
            release) to bound memory on large runs.
        seed: seed of the position subsample.
    """
    rng = np.random.default_rng(seed)
    feature_fn = tf.function(feature_fn, reduce_retracing=True)
    out, filled, used = None, 0, 0
    bar = tqdm(total=num_frames, unit="frame", desc="descriptors", disable=not progress)
    for element in frames:
        batch = element[0] if isinstance(element, (tuple, list)) else element
        maps = feature_fn(_flatten_frames(batch))
        maps = np.asarray(maps, np.float32)
        maps = maps[: num_frames - used]
        batch, depth = maps.shape[0], maps.shape[-1]
        per_frame = maps.reshape(batch, -1, depth)
        positions = per_frame.shape[1]
        keep = positions if descriptors_per_frame is None else min(descriptors_per_frame, positions)
        if keep < positions:
            index = np.argsort(rng.random((batch, positions)), axis=1)[:, :keep]
            per_frame = np.take_along_axis(per_frame, index[..., None], axis=1)
        if out is None:
            out = np.empty((num_frames * keep, depth), np.float32)
        rows = per_frame.reshape(-1, depth)
        out[filled : filled + len(rows)] = keras.ops.convert_to_numpy(l2_normalize(rows))
        filled += len(rows)
        used += batch
        bar.update(batch)
        if used == num_frames:
            break
    bar.close()
    if used < num_frames:
        raise ValueError(f"the frames ran out after {used} of the {num_frames} frames asked for")
    return out


def fit_centers(descriptors, num_clusters=64, seed=0, algorithm="kmeans", n_init=10, max_iter=300, batch_size=4096):
    """k-means centres [K, D] float32 of the (L2-normalised) descriptors, not re-normalised (§5.3).

    `algorithm="kmeans"` is scikit-learn's KMeans with the release's settings (k-means++, n_init
    10, max_iter 300, tol 1e-4: sklearn 0.17's defaults) and `random_state=seed`; "minibatch" is
    MiniBatchKMeans for large descriptor sets. Returns (centers, info) with info = {"inertia",
    "iterations", "seconds"}.
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    descriptors = np.asarray(descriptors, np.float32)
    if descriptors.ndim != 2 or len(descriptors) < num_clusters:
        raise ValueError(
            f"k-means with K = {num_clusters} needs at least K descriptors [N, D], got shape {descriptors.shape}"
        )
    if algorithm == "kmeans":
        estimator = KMeans(num_clusters, n_init=n_init, max_iter=max_iter, tol=1e-4, random_state=seed)
    else:
        estimator = MiniBatchKMeans(
            num_clusters, n_init=n_init, max_iter=max_iter, batch_size=batch_size, random_state=seed
        )
    log.info("%s: K = %d over %d descriptors of dimension %d", algorithm, num_clusters, *descriptors.shape)
    started = time.perf_counter()
    estimator.fit(descriptors)
    info = {
        "inertia": float(estimator.inertia_),
        "iterations": int(estimator.n_iter_),
        "seconds": time.perf_counter() - started,
    }
    return estimator.cluster_centers_.astype(np.float32), info
