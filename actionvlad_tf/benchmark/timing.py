"""Timing, FLOP and memory accounting for the benchmark.

Rules: every figure is a median over repeats after warm-up; figures that are compared are
measured side by side in one run, calls interleaved round-robin so that load from other processes
hits each alike; a timed function returns what it computes (a gradient that is neither applied nor
returned is pruned by `tf.function`), and the result is fetched to the host before the clock stops.
"""

import dataclasses
import statistics
import time

import keras
import tensorflow as tf


@dataclasses.dataclass
class Timing:
    """Wall-clock samples (seconds) of one timed function; `median` is the reported figure."""

    samples: list

    @property
    def median(self):
        return statistics.median(self.samples)


def materialize(result):
    """Fetches every tensor of a (nested) result to the host, so that the timed work is done."""
    for value in tf.nest.flatten(result):
        if hasattr(value, "numpy"):
            value.numpy()
    return result


def interleaved_times(functions, repeats=5, warmup=1):
    """{name: Timing} for zero-argument `functions` ({name: callable}), called round-robin:
    `warmup` rounds untimed (tracing, allocation), then `repeats` timed rounds."""
    samples = {name: [] for name in functions}
    for round_index in range(warmup + repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            materialize(function())
            elapsed = time.perf_counter() - start
            if round_index >= warmup:
                samples[name].append(elapsed)
    return {name: Timing(values) for name, values in samples.items()}


def matmul_pass(size=4096, dtype="float32"):
    """(function, FLOP) of one `tf.linalg.matmul` of two size × size matrices, the machine's
    reference rate (2·size³ FLOP per call), to time beside what it is compared with. The returned
    sum adds size² additions, < 0.1 % of the work at 4096."""
    a = tf.cast(tf.random.stateless_normal([size, size], [1, 0]), dtype)
    b = tf.cast(tf.random.stateless_normal([size, size], [2, 0]), dtype)
    product = tf.function(lambda: tf.reduce_sum(tf.cast(tf.linalg.matmul(a, b), tf.float32)))
    return product, 2.0 * size**3


def netvlad_flops(videos, descriptors_per_video, depth, num_clusters):
    """Forward FLOP of NetVLAD's two matmuls, assignment X̂·W and aggregation Aᵀ·X̂:
    4·N·D·K per video. Normalisations, softmax and the centre term are O(N·(D + K)) and not
    counted; a backward pass costs two matmuls per forward matmul, so forward + backward ≈ 3×."""
    return 4.0 * videos * descriptors_per_video * depth * num_clusters


def _layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _layers(layer)
        else:
            yield layer


def conv_flops(model, until=None):
    """FLOP per input of a model's convolution and dense layers, from their kernel and output
    shapes: 2·(output positions)·(kernel size) each; nested models are walked. With `until`, only
    the layers up to and including the one of that name (e.g. the frozen part of a stage). Needs a
    model built with a static input shape."""
    total = 0.0
    for layer in _layers(model):
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            positions = 1
            for size in layer.output.shape[1:-1]:
                if size is None:
                    raise ValueError(
                        f"layer {layer.name} of {model.name} has no static output "
                        "shape; build the model with a fixed input_shape"
                    )
                positions *= size
            kernel_size = 1
            for size in layer.kernel.shape:
                kernel_size *= size
            total += 2.0 * positions * kernel_size
        if layer.name == until:
            return total
    if until is not None:
        raise ValueError(f"{model.name} has no layer {until!r}")
    return total


def peak_memory_bytes(function, device="CPU:0"):
    """Bytes TensorFlow's allocator on `device` held at the peak of one call of `function`, over
    what it held before the call (inputs and weights are excluded, the outputs included); None
    where the device keeps no allocator statistics."""
    try:
        tf.config.experimental.reset_memory_stats(device)
        before = tf.config.experimental.get_memory_info(device)["current"]
    except (ValueError, tf.errors.OpError):
        return None
    materialize(function())
    return tf.config.experimental.get_memory_info(device)["peak"] - before
