"""Where a training update's time goes, against its FLOP bound and the machine's peak.

`bench_updates` times one stage-2 update on the feature cache's input (pool4 maps; the trainable
suffix conv5_1 … classifier) through the trainer's own compiled steps (`training.trainer`: per
micro-batch forward, backward, all-reduce, per-variable clipping, accumulation; then Adam), and
beside it the same update without clipping, as one micro-batch, and forward+backward alone, so
the differences say what the clipping, the micro-batch loop and the optimiser cost. With
`uncached`, also the updates without the cache: stage 2 recomputing conv1_1 … pool4 from the
frames, and stage 1 recomputing the whole frozen backbone and VLAD (its cached update is one
linear layer: microseconds, not worth a row).
"""

import keras
import numpy as np
import tensorflow as tf

from actionvlad_tf.benchmark.pipelines import _model
from actionvlad_tf.benchmark.timing import conv_flops, interleaved_times, matmul_pass
from actionvlad_tf.models.vgg16 import build_vgg16
from actionvlad_tf.training import trainer
from actionvlad_tf.training.split import split_at_frozen_boundary

CONV5_LAYERS = 3  # conv5_1 … conv5_3, 3 × 3 × 512 → 512


def update_flops(videos, frames, map_size, num_clusters, num_classes, depth=512):
    """FLOP of one stage-2 update on the cache (forward + backward ≈ 3 × forward): conv5's three
    3×3 convolutions on map_size² positions per frame, NetVLAD's two matmuls and the classifier."""
    conv = CONV5_LAYERS * 2.0 * map_size**2 * 9 * depth * depth * frames
    netvlad = 4.0 * frames * map_size**2 * depth * num_clusters
    classifier = 2.0 * num_clusters * depth * num_classes
    return 3.0 * videos * (conv + netvlad + classifier)


def _steps(suffix, clip, iter_size):
    config = trainer.TrainConfig(
        train_dir="", max_number_of_steps=1, clip_gradients=clip, iter_size=iter_size, learning_rate=1e-4
    )
    strategy = tf.distribute.get_strategy()
    return trainer._StepFunctions(suffix, trainer.make_optimizer(config), strategy, config)  # pylint: disable=protected-access


def bench_updates(
    frames=10,
    image_size=64,
    num_clusters=16,
    num_classes=6,
    videos=16,
    micro_batch=4,
    repeats=3,
    warmup=1,
    seed=0,
    uncached=True,
    variants=None,
    width=1.0,
    policy="float32",
    matmul_size=None,
):
    """{shape, flop, variants: {name: median_s, samples_s, gflops, flop}} of one stage-2 update
    (and with `uncached`, the updates without the cache). `variants`: names to keep (default all).
    `width`: the backbone's width multiplier (the main job's stand-in: 0.25); `policy`: the Keras
    dtype policy (float32, or mixed_bfloat16 as `--mixed_precision=auto` picks on some CPUs).
    `matmul_size`: also time a GEMM of that size in the policy's compute dtype in the same rounds
    (`timing.matmul_pass`), the device's reference rate: `matmul_flops` in the result.
    """
    model = _model(
        2,
        num_classes=num_classes,
        frames_per_video=frames,
        image_size=image_size,
        num_clusters=num_clusters,
        policy=policy,
        seed=seed,
        width=width,
    )
    suffix = split_at_frozen_boundary(model).suffix
    feature_shape = [int(d) for d in suffix.inputs[0].shape[1:]]
    rng = np.random.default_rng(seed)
    features = tf.constant(
        rng.standard_normal([videos] + feature_shape).astype(np.float32)
    )  # fed as float32, as the cache is
    labels = tf.constant(rng.integers(0, num_classes, videos), tf.int32)
    map_size, depth = feature_shape[-2], feature_shape[-1]  # conv5 runs at pool4's size: [T, h, w, D] are cached
    flop = update_flops(videos, frames, map_size, num_clusters, num_classes, depth)

    def update(steps, size, inputs=features):
        def run():
            out = None
            for start in range(0, videos, size):
                out = steps.micro_step(inputs[start : start + size], labels[start : start + size])
                bool(out["loss_finite"]), float(out["loss"])  # the host reads the train loop does
            return steps.apply_update()

        return run

    variables = suffix.trainable_variables

    @tf.function
    def forward_backward():
        with tf.GradientTape() as tape:
            logits = suffix(features, training=True)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        return tape.gradient(loss, variables)

    iter_size = videos // micro_batch
    flops = {}
    calls = {
        f"update ({iter_size}×{micro_batch} videos, clip 5)": update(_steps(suffix, 5.0, iter_size), micro_batch),
        f"update ({iter_size}×{micro_batch} videos, no clip)": update(_steps(suffix, 0.0, iter_size), micro_batch),
        f"update (1×{videos} videos, clip 5)": update(_steps(suffix, 5.0, 1), videos),
        f"forward+backward ({videos} videos)": forward_backward,
    }
    if uncached:
        frames_in = tf.constant(rng.uniform(-128, 128, (videos, frames, image_size, image_size, 3)), tf.float32)
        backbone = build_vgg16(input_shape=(image_size, image_size), width=width)  # static shapes
        conv1_4 = conv_flops(backbone, until="block4_conv3")
        conv1_5 = conv_flops(backbone, until="block5_conv3")
        stage1 = _model(
            1,
            num_classes=num_classes,
            frames_per_video=frames,
            image_size=image_size,
            num_clusters=num_clusters,
            policy=policy,
            seed=seed,
            width=width,
        )

        name2 = f"stage-2 update without the cache ({iter_size}×{micro_batch} videos, clip 5)"
        name1 = f"stage-1 update without the cache ({iter_size}×{micro_batch} videos, clip 5)"
        calls[name2] = update(_steps(model, 5.0, iter_size), micro_batch, frames_in)
        calls[name1] = update(_steps(stage1, 5.0, iter_size), micro_batch, frames_in)
        flops[name2] = flop + videos * frames * conv1_4
        netvlad_forward = 4.0 * frames * map_size**2 * depth * num_clusters
        flops[name1] = videos * (frames * conv1_5 + netvlad_forward + 3 * 2.0 * num_clusters * depth * num_classes)
    if variants is not None:
        calls = {name: call for name, call in calls.items() if any(name.startswith(v) for v in variants)}
    if matmul_size:
        calls["matmul"], matmul_flop = matmul_pass(matmul_size, keras.mixed_precision.Policy(policy).compute_dtype)
    times = interleaved_times(calls, repeats=repeats, warmup=warmup)
    matmul = times.pop("matmul", None)
    return {
        "matmul_flops": matmul and matmul_flop / matmul.median,
        "shape": dict(
            frames=frames,
            image_size=image_size,
            num_clusters=num_clusters,
            width=width,
            policy=policy,
            num_classes=num_classes,
            videos=videos,
            micro_batch=micro_batch,
            feature_shape=feature_shape,
            map_size=map_size,
            variables=len(variables),
        ),
        "flop": flop,
        "variants": {
            name: {
                "median_s": t.median,
                "samples_s": t.samples,
                "flop": flops.get(name, flop),
                "gflops": flops.get(name, flop) / t.median / 1e9,
            }
            for name, t in times.items()
        },
    }
