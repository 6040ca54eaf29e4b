"""The benchmark: references agree with NetVLADPooling, FLOP/memory accounting, a quick run's JSON.

No timing is asserted anywhere: speed targets are the benchmark's business, not the tests'."""

import json
import math
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from actionvlad_tf.benchmark import (
    conv_flops,
    interleaved_times,
    netvlad_broadcast_reference,
    netvlad_loop_reference,
    peak_memory_bytes,
)
from actionvlad_tf.benchmark.kernels import kmeans_like_centers, mixed_policy
from actionvlad_tf.benchmark.table import evaluate_targets
from actionvlad_tf.layers import NetVLADPooling
from actionvlad_tf.models import build_vgg16


@pytest.mark.parametrize("alpha", [1.0, 1000.0])
def test_reference_netvlads_agree_with_the_layer(alpha):
    features = np.random.default_rng(0).standard_normal((2, 3, 4, 5, 8)).astype(np.float32)
    layer = NetVLADPooling(6, alpha=alpha, initial_centers=kmeans_like_centers(features, 6))
    expected = layer(features).numpy()
    weights = [layer.assignment_kernel.value, layer.assignment_bias.value, layer.centers.value]
    for reference in (netvlad_loop_reference, netvlad_broadcast_reference):
        got = tf.function(reference)(tf.constant(features), *weights).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5, err_msg=reference.__name__)
    # Decoupled weights: the centres alone move the residuals, not the assignments.
    layer.centers.assign(layer.centers.value + 0.1)
    weights[2] = layer.centers.value
    for reference in (netvlad_loop_reference, netvlad_broadcast_reference):
        np.testing.assert_allclose(
            reference(tf.constant(features), *weights).numpy(), layer(features).numpy(), rtol=1e-4, atol=1e-5
        )


def test_conv_flops_from_layer_shapes():
    inputs = keras.Input((8, 8, 2))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = keras.layers.MaxPooling2D(2)(x)
    outputs = keras.layers.Dense(5)(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    assert conv_flops(model) == 2 * 8 * 8 * 3 * 3 * 2 * 4 + 2 * (4 * 4 * 4) * 5
    # VGG-16 conv1_1 … conv5_3 at 224²: 15.35 G multiply-adds (the "15.3 GFLOP" of the performance targets counts
    # multiply-adds), i.e. 30.7 GFLOP at 2 FLOP each, as the matmul reference counts 2n³.
    assert conv_flops(build_vgg16(input_shape=(224, 224))) == 2 * 15_346_630_656
    with pytest.raises(ValueError, match="static output shape"):
        conv_flops(build_vgg16())


def test_interleaved_times_warms_up_and_repeats():
    calls = []
    timings = interleaved_times({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=3, warmup=2)
    assert calls == ["a", "b"] * 5
    assert len(timings["a"].samples) == 3 and timings["a"].median >= 0


def test_peak_memory_counts_what_a_call_allocates():
    size = 4 * 2**20  # float32 elements: 16 MiB
    allocated = peak_memory_bytes(lambda: tf.fill([size], 1.0) * 2.0)
    if allocated is None:
        pytest.skip("this TensorFlow keeps no allocator statistics on the CPU")
    assert allocated >= 4 * size


def test_targets_hold_or_fail_by_their_thresholds():
    results = {
        "netvlad": {
            "ratios": {
                "forward_speedup_vs_loop_reference": 20.0,
                "forward_backward_speedup_vs_loop_reference": 10.0,
                "forward_memory_vs_loop_reference": 0.2,
                "forward_backward_memory_vs_loop_reference": 0.5,
            },
            "implementations": {"netvlad_pooling": {"forward": {"fraction_of_matmul": 0.6}}},
        },
        "end_to_end": {
            "policies": {
                "float32": {
                    "inference_vs_backbone": 0.95,
                    "cache_speedup": {"stage2": 2.0},
                    "training": {"stage2": {"videos_per_s": 0.5}},
                }
            }
        },
        "input_pipeline": {"pipelines": {"folders": {"rgb_train": {"videos_per_s": 0.9}}}},
    }
    holds = {t["target"]: t["holds"] for t in evaluate_targets(results)}
    assert list(holds.values()) == [True, True, False, False, True, True, False, False]


def test_quick_bench_writes_the_table_and_valid_json(tmp_path, repo_root):
    output = tmp_path / "bench.json"
    run = subprocess.run(
        [sys.executable, "experiments/bench.py", "--quick", "--repeats=1", f"--json={output}", f"--workdir={tmp_path}"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "1. NetVLAD" in run.stdout and "Targets" in run.stdout
    results = json.loads(output.read_text())
    assert results["sections"] == ["netvlad", "backbone", "input_pipeline", "end_to_end"]
    assert set(results["netvlad"]["implementations"]) == {"netvlad_pooling", "loop_reference", "broadcast_reference"}
    mixed = mixed_policy()
    assert set(results["backbone"]["configurations"]) == {"float32", "float32_xla", mixed, f"{mixed}_xla"}
    assert set(results["input_pipeline"]["pipelines"]) == {"folders", "packed"}
    policies = results["end_to_end"]["policies"]
    assert set(policies) == {"float32", mixed}
    assert set(policies["float32"]["training"]) == {"stage1", "stage1_cached", "stage2", "stage2_cached"}
    assert {t["target"].split(" ")[0] for t in results["targets"]} >= {"NetVLAD", "[float32]", f"[{mixed}]", "input"}
    rates = [v for k, v in _leaves(results) if k in ("videos_per_s", "frames_per_s", "gflops")]
    assert rates and all(math.isfinite(v) and v > 0 for v in rates)
    assert list(tmp_path.iterdir()) == [output]  # generated frames and caches cleaned up


def _leaves(tree, key=None):
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _leaves(v, k)
    elif isinstance(tree, list):
        for v in tree:
            yield from _leaves(v, key)
    else:
        yield key, tree


def test_machine_is_named_with_its_vector_units_and_peak():
    from actionvlad_tf.benchmark.machine import describe_machine, machine_line, peak_summary

    machine = describe_machine()
    assert machine["cpu_count"] >= 1 and machine["cpu_model"]
    line = machine_line(machine)
    assert machine["cpu_model"] in line and ("GPU" in line)
    with open("/proc/cpuinfo", encoding="utf-8") as handle:
        flags = next((l for l in handle if l.startswith("flags")), "").split()
    assert ("avx2" in machine["vector_extensions"]) == ("avx2" in flags)
    assert ("amx_bf16" in machine["vector_extensions"]) == ("amx_bf16" in flags)
    peak = peak_summary(3e11, 4e11, machine)
    assert peak["measured_peak_flops"] == 4e11 and peak["measured_peak_source"] == "numpy_openblas"
    if machine["cpu_mhz"]:
        per_cycle = 64 if "avx512f" in flags else 32 if "avx2" in flags else 16
        assert machine["theoretical_peak_float32_flops"] == pytest.approx(
            machine["cpu_count"] * machine["cpu_mhz"] * 1e6 * per_cycle
        )


def test_update_flops_count_conv5_netvlad_and_classifier():
    from actionvlad_tf.benchmark.updates import update_flops

    # main job: 16 videos × 10 frames, conv5 at 4², K = 16, 6 classes → ≈ 109 GFLOP
    conv = 3 * 2 * 16 * 9 * 512 * 512 * 10
    expected = 3 * 16 * (conv + 4 * 10 * 16 * 512 * 16 + 2 * 16 * 512 * 6)
    assert update_flops(16, 10, 4, 16, 6) == expected
    assert 108e9 < expected < 110e9


def test_flow_targets():
    flow = {
        "vs_opencv_all_cores": {"opencv_2_processes": 1.0, "tvl1_tf_cpu_graph": 0.5, "tvl1_tf_cpu_xla": 1.2},
        "synthetic": [{"ratio": 0.9}, {"ratio": 1.12}],
    }
    holds = {t["target"]: t["holds"] for t in evaluate_targets({"flow": flow})}
    assert list(holds.values()) == [True, False]


def test_conv_flops_until_a_layer_sums_vggs_convolutions_so_far():
    from actionvlad_tf.models.vgg16 import build_vgg16

    backbone = build_vgg16(input_shape=(32, 32), width=0.25)
    expected, depth = 0.0, 3
    for block, (convs, channels) in enumerate(zip((2, 2, 3, 3, 3), (16, 32, 64, 128, 128))):
        side = 32 // 2**block
        for _ in range(convs):
            expected += 2.0 * side * side * 9 * depth * channels
            depth = channels
        if block == 3:
            conv1_4 = expected
    assert conv_flops(backbone, until="block4_conv3") == conv1_4
    assert conv_flops(backbone, until="block5_conv3") == expected == conv_flops(backbone)
    with pytest.raises(ValueError, match="no layer"):
        conv_flops(backbone, until="fc1")


def test_quick_updates_time_cached_and_uncached_updates():
    from actionvlad_tf.benchmark.updates import bench_updates

    result = bench_updates(
        frames=2, image_size=32, num_clusters=4, num_classes=3, videos=4, micro_batch=2, repeats=1, warmup=0, width=0.25
    )
    names = list(result["variants"])
    assert any(n.startswith("stage-2 update without the cache") for n in names)
    assert any(n.startswith("stage-1 update without the cache") for n in names)
    uncached = next(v for n, v in result["variants"].items() if n.startswith("stage-2 update without"))
    assert uncached["flop"] > result["flop"] and uncached["median_s"] > 0
    kept = bench_updates(
        frames=2,
        image_size=32,
        num_clusters=4,
        num_classes=3,
        videos=4,
        micro_batch=2,
        repeats=1,
        warmup=0,
        width=0.25,
        uncached=False,
        variants=("forward+backward",),
    )
    assert list(kept["variants"]) == ["forward+backward (4 videos)"]


def test_quick_predict_folder_section(tmp_path):
    """Section 7 on tiny shapes: both rates measured, the ratio and its target in the table."""
    from actionvlad_tf.benchmark.folder_predict import bench_folder_predict
    from actionvlad_tf.benchmark.table import format_table

    figures = bench_folder_predict(
        str(tmp_path),
        "quick",
        num_videos=2,
        num_frames=8,
        height=40,
        width=48,
        frames_per_video=3,
        image_size=32,
        num_clusters=4,
        backbone_width=0.25,
        repeats=1,
        warmup=0,
    )
    assert figures["folder_videos_per_s"] > 0 and figures["model_alone_videos_per_s"] > 0
    assert figures["ratio"] == pytest.approx(figures["folder_videos_per_s"] / figures["model_alone_videos_per_s"])
    results = {"predict_folder": {"quick": figures}}
    (target,) = evaluate_targets(results)
    assert target["target"].startswith("[quick] predict.py --videos") and target["threshold"] == 0.9
    machine = {
        "device": "CPU:0",
        "cpu_count": 2,
        "tensorflow": "x",
        "load_before": [0],
        "load_after": [0],
        "cpu_model": "test CPU",
        "cpu_cores": 2,
        "vector_extensions": [],
    }
    table = format_table({**results, "machine": machine, "wall_s": 1.0, "targets": [target]})
    assert "7. Classifying a folder of videos" in table and "2 × 8 frames 48×40" in table
