"""Sections 3 and 4 of the benchmark table (docs/performance.md): the input pipeline and end to end.

3. `bench_input_pipeline`: videos/s of `make_video_dataset` (25 RGB frames with a training crop;
   25 RGB frames × 5 test crops; 25 flow stacks with a training crop) from frame folders and from
   packed shards, on frames the benchmark writes itself (`write_benchmark_frames`, JPEGs of the
   release's 340 × 256).
4. `bench_end_to_end`: inference videos/s of the whole model fed by the pipeline against the
   backbone alone; training videos/s of stage 1 and stage 2,
   recomputing the frozen part every step or reading it from a feature cache.
"""

import os
import time

import cv2
import keras
import numpy as np
import tensorflow as tf

from actionvlad_tf.benchmark.kernels import dtype_policy
from actionvlad_tf.benchmark.timing import interleaved_times
from actionvlad_tf.data.lists import read_list
from actionvlad_tf.data.video_input import make_video_dataset
from actionvlad_tf.models import backbones, build_actionvlad, set_training_stage
from actionvlad_tf.prep.shards import write_packed_shards
from actionvlad_tf.training import split_at_frozen_boundary
from actionvlad_tf.training.feature_cache import build_feature_cache

PIPELINES = {
    "rgb_train": dict(modality="rgb", training=True),
    "rgb_eval_5_crops": dict(modality="rgb", num_crops=5),
    "flow_train": dict(modality="flow", training=True),
}
CLIP_GRADIENTS = 5.0  # release §2.5
OPT_EPSILON = 1e-4


def write_benchmark_frames(root, num_videos, num_frames, height=256, width=340, num_classes=4, seed=0):
    """Writes `num_videos` frame folders in the release's naming (§3.1) under `root` and a list
    file `root/list.txt`; returns its path. Frames are a smooth random scene drifting by a pixel
    per frame plus sensor noise (JPEG sizes like real frames); flow images are smooth fields around
    128 (no motion), as TV-L1 dumps look."""
    rng = np.random.default_rng(seed)
    lines = []
    for video in range(num_videos):
        name = f"video{video:03d}"
        folder = os.path.join(root, name)
        os.makedirs(folder, exist_ok=True)
        scene = cv2.resize(
            rng.integers(0, 256, (height // 16, (width + num_frames) // 16, 3), dtype=np.uint8),
            (width + num_frames, height),
            interpolation=cv2.INTER_CUBIC,
        )
        motion = cv2.resize(
            rng.normal(0, 6, (height // 32, width // 32, 2)).astype(np.float32),
            (width, height),
            interpolation=cv2.INTER_CUBIC,
        )
        for t in range(num_frames):
            frame = scene[:, t : t + width] + rng.normal(0, 4, (height, width, 3))
            cv2.imwrite(os.path.join(folder, f"image_{t + 1:05d}.jpg"), np.clip(frame, 0, 255).astype(np.uint8))
            if t + 1 < num_frames:
                for axis, direction in enumerate("xy"):
                    flow = 128 + motion[..., axis] + rng.normal(0, 2, (height, width))
                    cv2.imwrite(
                        os.path.join(folder, f"flow_{direction}_{t + 1:05d}.jpg"),
                        np.clip(flow, 0, 255).astype(np.uint8),
                    )
        lines.append(f"{name} {num_frames} {video % num_classes}\n")
    list_file = os.path.join(root, "list.txt")
    with open(list_file, "w", encoding="utf-8") as handle:
        handle.writelines(lines)
    return list_file


def bench_input_pipeline(
    root,
    list_file,
    frames_per_video=25,
    image_size=224,
    resize_shape=(256, 340),
    videos_per_sample=8,
    repeats=5,
    warmup=1,
):
    """Section 3. Each pipeline is timed alone (a pipeline left idle keeps decoding into its
    buffers, so interleaving would flatter it): a long-lived iterator, `warmup` samples untimed,
    then `repeats` samples of `videos_per_sample` videos."""
    packed_prefix = os.path.join(root, "packed", "videos")
    entries = read_list(list_file)
    shards = write_packed_shards(
        entries, packed_prefix, frames_root=root, modality="rgb+flow", num_shards=2, progress=False
    )
    sources = {"folders": dict(list_file=list_file, frames_root=root), "packed": dict(packed_files=shards)}
    results = {}
    for source, source_args in sources.items():
        for name, pipeline_args in PIPELINES.items():
            dataset = make_video_dataset(
                **source_args,
                **pipeline_args,
                frames_per_video=frames_per_video,
                image_size=image_size,
                resize_shape=resize_shape,
                shuffle_seed=0,
            ).repeat()
            iterator = iter(dataset)

            def sample(iterator=iterator):
                return [next(iterator) for _ in range(videos_per_sample)]

            timing = interleaved_times({name: sample}, repeats, warmup)[name]
            del iterator
            results.setdefault(source, {})[name] = {
                "median_s": timing.median,
                "samples_s": timing.samples,
                "videos_per_s": videos_per_sample / timing.median,
            }
    first = entries[0]
    height, width = cv2.imread(os.path.join(root, first.path, "image_00001.jpg")).shape[:2]
    return {
        "frames_per_video": frames_per_video,
        "image_size": image_size,
        "frame_size": [height, width],
        "videos_per_sample": videos_per_sample,
        "pipelines": results,
    }


def make_train_step(model, learning_rate=1e-4):
    """One update of the release's rule (§2.3) on `model`'s trainable variables: softmax
    cross-entropy + regularisation, each variable's gradient clipped to norm 5, Adam (ε = 1e-4).
    Returns the loss, so nothing is pruned."""
    optimizer = keras.optimizers.Adam(learning_rate, epsilon=OPT_EPSILON)
    variables = model.trainable_variables
    optimizer.build(variables)

    @tf.function(reduce_retracing=True)
    def step(inputs, labels):
        with tf.GradientTape() as tape:
            logits = model(inputs, training=True)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
            loss += tf.add_n([tf.cast(l, tf.float32) for l in model.losses] or [0.0])
        gradients = tape.gradient(loss, variables)
        optimizer.apply([tf.clip_by_norm(g, CLIP_GRADIENTS) for g in gradients], variables)
        return loss

    return step


def _model(stage, num_classes, frames_per_video, image_size, num_clusters, policy, seed, width=1.0):
    keras.utils.set_random_seed(seed)
    with dtype_policy(policy):
        model = build_actionvlad(
            num_classes,
            frames_per_video=frames_per_video,
            image_size=image_size,
            num_clusters=num_clusters,
            backbone_width=width,
        )
    pooling = model.get_layer("pooling")
    centers = np.random.default_rng(seed).standard_normal(tuple(pooling.centers.shape))
    pooling.set_centers(0.5 * centers / np.linalg.norm(centers, axis=1, keepdims=True))
    if stage:
        set_training_stage(model, stage)
    return model


def bench_end_to_end(
    root,
    list_file,
    num_classes=4,
    frames_per_video=25,
    image_size=224,
    resize_shape=(256, 340),
    num_clusters=64,
    batch_videos=1,
    cache_videos=2,
    cache_views=1,
    policies=("float32",),
    repeats=5,
    warmup=1,
    seed=0,
):
    """Section 4, under each Keras dtype policy of `policies`.

    Inference (one video, 1 test crop): the backbone alone on an in-memory video and the whole
    model fed by a long-lived frame-folder pipeline, interleaved (pooling and classifier alone are
    section 1's NetVLAD and a 32768 × C matmul).
    Training (`batch_videos` per step): stage 1 and stage 2 from an in-memory batch (recomputing
    the frozen part), and their trainable suffixes fed by a feature cache of `cache_videos` videos
    × `cache_views` views built here (the build is timed once)."""
    rng = np.random.default_rng(seed)
    frames = tf.constant(rng.uniform(-128, 128, (frames_per_video, image_size, image_size, 3)), tf.float32)
    batch = tf.tile(frames[None], [batch_videos, 1, 1, 1, 1])
    labels = tf.constant(rng.integers(0, num_classes, batch_videos), tf.int32)
    entries = read_list(list_file)
    cache_list = os.path.join(root, "cache_list.txt")
    with open(cache_list, "w", encoding="utf-8") as handle:
        handle.writelines(f"{e.path} {e.num_frames} {e.label}\n" for e in entries[:cache_videos])

    def read_videos(subset):
        return make_video_dataset(subset, frames_root=root, frames_per_video=frames_per_video, raw_frames=True)

    shape = dict(
        num_classes=num_classes,
        frames_per_video=frames_per_video,
        image_size=image_size,
        num_clusters=num_clusters,
        seed=seed,
    )
    results = {}
    for policy in policies:
        model = _model(None, policy=policy, **shape)
        backbone = tf.function(lambda m=backbones(model)[0]: m(frames, training=False))
        whole = tf.function(lambda video, m=model: m(video, training=False))
        pipeline = iter(
            make_video_dataset(
                list_file,
                frames_root=root,
                frames_per_video=frames_per_video,
                image_size=image_size,
                resize_shape=resize_shape,
            ).repeat()
        )
        inference = interleaved_times(
            {
                "backbone_alone": backbone,
                "model_from_frames": lambda: whole(next(pipeline)[0]),  # noqa: F821 (deleted after the timing)
            },
            repeats,
            warmup,
        )
        del pipeline

        passes, caches = {}, {}
        for stage in (1, 2):
            full = _model(stage, policy=policy, **shape)
            step = make_train_step(full)
            passes[f"stage{stage}"] = lambda step=step: step(batch, labels)
            split = split_at_frozen_boundary(full)
            started = time.perf_counter()
            cache = build_feature_cache(
                os.path.join(root, "feature_cache"),
                split.prefix,
                cache_list,
                read_videos,
                views=cache_views,
                seed=seed,
                progress=False,
                augmentation={"image_size": image_size, "resize_shape": tuple(resize_shape)},
                description={"frames_root": root, "frames_per_video": frames_per_video, "policy": policy},
            )
            caches[f"stage{stage}"] = {
                "build_s": time.perf_counter() - started,
                "views": cache_videos * cache_views,
                "bytes_per_view": cache.file_bytes,
                "feature_shape": list(cache.feature_shape),
            }
            suffix_step = make_train_step(split.suffix)
            features = iter(cache.dataset(batch_videos, shuffle_seed=seed))
            passes[f"stage{stage}_cached"] = lambda step=suffix_step, it=features: step(*next(it))
        training = interleaved_times(passes, repeats, warmup)
        results[policy] = {
            "inference": _per_video(inference, 1),
            "inference_vs_backbone": (inference["backbone_alone"].median / inference["model_from_frames"].median),
            "training": _per_video(training, batch_videos),
            "cache_speedup": {
                f"stage{s}": training[f"stage{s}"].median / training[f"stage{s}_cached"].median for s in (1, 2)
            },
            "caches": caches,
        }
    return {
        "frames_per_video": frames_per_video,
        "image_size": image_size,
        "num_clusters": num_clusters,
        "batch_videos": batch_videos,
        "cache_views": cache_views,
        "policies": results,
    }


def _per_video(timings, videos):
    return {
        name: {"median_s": t.median, "samples_s": t.samples, "videos_per_s": videos / t.median}
        for name, t in timings.items()
    }
