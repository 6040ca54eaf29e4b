"""Sections 1 and 2 of the benchmark table (docs/performance.md): the kernels, each a function returning a
JSON-ready dict.

1. `bench_netvlad`: NetVLADPooling against the release's per-cluster loop and a broadcast-residual
   version, forward and forward + backward, at the paper's shape (2 videos × 25 × 14 × 14 × 512,
   K = 64): videos/s, achieved GFLOP/s as a fraction of the measured matmul rate, peak memory.
2. `bench_backbone`: VGG16 conv1_1–conv5_3 frames/s in float32 and mixed precision, XLA off and on,
   as a fraction of the matmul rate of the compute dtype (and of float32).
"""

import contextlib

import keras
import numpy as np
import tensorflow as tf

from actionvlad_tf.benchmark.reference_netvlad import netvlad_broadcast_reference, netvlad_loop_reference
from actionvlad_tf.benchmark.timing import conv_flops, interleaved_times, matmul_pass, netvlad_flops, peak_memory_bytes
from actionvlad_tf.layers import NetVLADPooling
from actionvlad_tf.models import build_vgg16

GIGA = 1e9


def compute_device():
    """The device the benchmark runs on, as TensorFlow names it for memory statistics."""
    return "GPU:0" if tf.config.list_physical_devices("GPU") else "CPU:0"


def mixed_policy():
    """Mixed precision of this device: bfloat16 on CPU (no float16 kernels), float16 on GPU."""
    return "mixed_float16" if compute_device().startswith("GPU") else "mixed_bfloat16"


@contextlib.contextmanager
def dtype_policy(name):
    """Builds the layers made inside under the Keras dtype policy `name`, then restores it."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def mixed_compute_dtype():
    return keras.dtype_policies.get(mixed_policy()).compute_dtype


def _with_matmul(passes, dtypes, size):
    """Adds ("matmul", dtype) reference passes to `passes`; returns their FLOP per call."""
    flop = {}
    for dtype in dtypes:
        passes[("matmul", dtype)], flop[dtype] = matmul_pass(size, dtype)
    return flop


def _matmul_rates(timings, flop):
    """{dtype: FLOP/s} of the matmul passes of `_with_matmul`, popped from `timings`."""
    return {dtype: f / timings.pop(("matmul", dtype)).median for dtype, f in flop.items()}


def _rates(timing, flop, items, matmul_flops):
    """Per-timing figures: median seconds, items/s, GFLOP/s and the fraction of the matmul rate."""
    return {
        "median_s": timing.median,
        "samples_s": timing.samples,
        "per_s": items / timing.median,
        "gflops": flop / timing.median / GIGA,
        "fraction_of_matmul": flop / timing.median / matmul_flops,
    }


def kmeans_like_centers(descriptors, num_clusters, seed=0):
    """K centres where k-means would put them: the mean of the normalised descriptors nearest to
    each of K random ones (one assignment step), so that soft assignments are not degenerate."""
    rng = np.random.default_rng(seed)
    flat = np.reshape(descriptors, (-1, descriptors.shape[-1]))
    flat = flat / np.maximum(np.linalg.norm(flat, axis=1, keepdims=True), 1e-6)
    seeds = flat[rng.choice(len(flat), num_clusters, replace=False)]
    nearest = np.argmax(flat @ seeds.T, axis=1)
    return np.stack(
        [flat[nearest == k].mean(0) if np.any(nearest == k) else seeds[k] for k in range(num_clusters)]
    ).astype(np.float32)


def bench_netvlad(
    videos=2,
    frames=25,
    height=14,
    width=14,
    depth=512,
    num_clusters=64,
    matmul_size=4096,
    repeats=5,
    warmup=1,
    memory=True,
    seed=0,
):
    """Section 1. A float32 `matmul_size`² matmul is timed in the same rounds as the reference
    rate."""
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((videos, frames, height, width, depth)).astype(np.float32)
    layer = NetVLADPooling(num_clusters, initial_centers=kmeans_like_centers(features, num_clusters, seed))
    x = tf.constant(features)
    layer(x)
    weights = [layer.assignment_kernel, layer.assignment_bias, layer.centers]
    probe = tf.constant(rng.standard_normal((videos, num_clusters * depth)).astype(np.float32))
    implementations = {
        "netvlad_pooling": layer,
        "loop_reference": lambda v: netvlad_loop_reference(v, *(w.value for w in weights)),
        "broadcast_reference": lambda v: netvlad_broadcast_reference(v, *(w.value for w in weights)),
    }
    passes = {}
    for name, pool in implementations.items():
        passes[(name, "forward")] = tf.function(lambda pool=pool: pool(x))

        @tf.function
        def forward_backward(pool=pool):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(pool(x) * probe)
            return tape.gradient(loss, [x] + [w.value for w in weights])

        passes[(name, "forward_backward")] = forward_backward
    matmul_flop = _with_matmul(passes, ["float32"], matmul_size)
    timings = interleaved_times(passes, repeats, warmup)
    matmul = _matmul_rates(timings, matmul_flop)
    flop = netvlad_flops(videos, frames * height * width, depth, num_clusters)
    results = {}
    for (name, kind), timing in timings.items():
        entry = _rates(timing, flop * (3 if kind == "forward_backward" else 1), videos, matmul["float32"])
        entry["videos_per_s"] = entry.pop("per_s")
        entry["extra_memory_bytes"] = peak_memory_bytes(passes[(name, kind)], compute_device()) if memory else None
        results.setdefault(name, {})[kind] = entry
    ratios = {}
    for kind in ("forward", "forward_backward"):
        ours = results["netvlad_pooling"][kind]
        for reference in ("loop_reference", "broadcast_reference"):
            other = results[reference][kind]
            ratios[f"{kind}_speedup_vs_{reference}"] = other["median_s"] / ours["median_s"]
            if ours["extra_memory_bytes"] is not None and other["extra_memory_bytes"]:
                ratios[f"{kind}_memory_vs_{reference}"] = ours["extra_memory_bytes"] / other["extra_memory_bytes"]
    return {
        "shape": {
            "videos": videos,
            "frames": frames,
            "height": height,
            "width": width,
            "depth": depth,
            "num_clusters": num_clusters,
        },
        "matmul_flops": matmul,
        "gflop_forward": flop / GIGA,
        "implementations": results,
        "ratios": ratios,
    }


def bench_backbone(frames=25, image_size=224, matmul_size=4096, repeats=5, warmup=1, xla=True, seed=0):
    """Section 2: VGG16 conv1_1 → pre-ReLU conv5_3 on one video's `frames` frames.

    FLOP per frame is counted from the layer shapes: 30.7 GFLOP at 224², i.e. 15.35 G
    multiply-adds, 2 FLOP each as the matmul reference's 2n³. Float32 and mixed-precision matmuls
    are timed in the same rounds."""
    flop = frames * conv_flops(build_vgg16(input_shape=(image_size, image_size)))
    x = tf.random.stateless_uniform([frames, image_size, image_size, 3], [seed, 0], -128.0, 128.0)
    passes, compute = {}, {}
    for policy in ("float32", mixed_policy()):
        with dtype_policy(policy):
            model = build_vgg16()
        for jit in (False, True) if xla else (False,):
            name = f"{policy}{'_xla' if jit else ''}"
            passes[name] = tf.function(lambda model=model: tf.cast(model(x), tf.float32), jit_compile=jit)
            compute[name] = keras.dtype_policies.get(policy).compute_dtype
    matmul_flop = _with_matmul(passes, ["float32", mixed_compute_dtype()], matmul_size)
    timings = interleaved_times(passes, repeats, warmup)
    matmul = _matmul_rates(timings, matmul_flop)
    results = {}
    for name, timing in timings.items():
        entry = _rates(timing, flop, frames, matmul[compute[name]])
        entry["frames_per_s"] = entry.pop("per_s")
        entry["fraction_of_float32_matmul"] = flop / timing.median / matmul["float32"]
        results[name] = entry
    return {
        "frames": frames,
        "image_size": image_size,
        "gflop_per_frame": flop / frames / GIGA,
        "matmul_flops": matmul,
        "configurations": results,
        "mixed_speedup": results["float32"]["median_s"] / results[mixed_policy()]["median_s"],
    }
