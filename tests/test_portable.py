"""LiteRT and ONNX files: each run by its own runtime equals the Keras model (float32 within 1e-4 in
probability), the quantised LiteRT files keep the top-1 class, ONNX takes any batch and frame count;
the export entry point writes and checks them. Skipped only where the [export] extra is missing."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from actionvlad_tf.export import portable
from actionvlad_tf.export.saved_model import save_keras_atomic
from actionvlad_tf.models import build_actionvlad, build_two_stream, embedding_model

T, S, K, C = 3, 32, 2, 5


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    net = build_actionvlad(C, frames_per_video=T, image_size=S, num_clusters=K, backbone_width=0.25, weight_decay=0)
    kernel = net.get_layer("classifier").kernel  # a spread of logits that makes top-1 meaningful
    kernel.assign(np.random.default_rng(0).normal(0, 3.0, kernel.shape))
    # A word no descriptor chooses (trained centres leave some): its residual is exactly 0.
    bias = net.get_layer("pooling").assignment_bias
    bias.assign(np.array([-1e4] + [0.0] * (bias.shape[0] - 1), np.float32))
    return net


def test_litert_variants_match_keras(model, tmp_path):
    pytest.importorskip("ai_edge_litert")
    batches = portable.held_out_batches(model, random_videos=6)
    assert batches[0]["rgb"].shape == (1, T, S, S, 3)
    report = portable.export_portable(model, tmp_path, ["litert"], batches=batches)
    assert [r["variant"] for r in report] == list(portable.LITERT_VARIANTS)
    sizes = {r["variant"]: r["bytes"] for r in report}
    assert sizes["int8"] < 0.4 * sizes["float32"] and sizes["float16"] < 0.6 * sizes["float32"]
    checks = {r["variant"]: r["parity"] for r in report}
    assert checks["float32"]["max_abs_probability"] <= 1e-4 and checks["float32"]["max_abs_embedding"] <= 1e-4
    for variant in ("float16", "int8"):  # float16: finite where ε = 1e-12 in float16 (0) gave NaN
        assert np.isfinite(checks[variant]["max_abs_probability"]), checks
        assert checks[variant]["top1_agreement"] >= 5 / 6, checks
    assert json.loads((tmp_path / "portable.json").read_text())[0]["parity"]["videos"] == 6
    got = portable.Runner(tmp_path / "model_float32.tflite")(batches[0])
    np.testing.assert_allclose(
        got["embedding"], keras.ops.convert_to_numpy(embedding_model(model)(batches[0]["rgb"])["embedding"]), atol=1e-5
    )
    with pytest.raises(ValueError, match="LiteRT needs a fixed count"):
        portable.export_litert(
            build_actionvlad(C, frames_per_video=None, image_size=S, num_clusters=K, backbone_width=0.25),
            tmp_path / "x.tflite",
        )


def test_onnx_has_dynamic_batch_and_frames(model, tmp_path):
    pytest.importorskip("tf2onnx")
    pytest.importorskip("onnxruntime")
    path = portable.export_onnx(model, tmp_path / "model.onnx")
    batches = portable.held_out_batches(model, random_videos=3)
    check = portable.parity(model, path, batches)
    assert check["max_abs_probability"] <= 1e-4 and check["top1_agreement"] == 1.0
    runner = portable.Runner(path)
    rng = np.random.default_rng(1)
    many = rng.uniform(-100, 100, (4, 2 * T, S, S, 3)).astype(np.float32)  # another B and frame count
    any_length = build_actionvlad(C, frames_per_video=None, image_size=S, num_clusters=K, backbone_width=0.25)
    any_length.set_weights(model.get_weights())
    np.testing.assert_allclose(runner({"rgb": many})["logits"], keras.ops.convert_to_numpy(any_length(many)), atol=1e-4)
    keras.utils.set_random_seed(1)
    two = build_two_stream(C, frames_per_video=T, image_size=S, num_clusters=K, backbone_width=0.25)
    path = portable.export_onnx(two, tmp_path / "two.onnx")
    assert portable.parity(two, path, portable.held_out_batches(two, random_videos=2))["max_abs_probability"] <= 1e-4


def test_entry_point(model, tmp_path):
    pytest.importorskip("ai_edge_litert")
    pytest.importorskip("tf2onnx")
    pytest.importorskip("onnxruntime")
    (tmp_path / "classes.txt").write_text("".join(f"c{i}\n" for i in range(C)))
    keras_file = save_keras_atomic(model, tmp_path / "model.keras")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run(
        [
            sys.executable,
            "experiments/export.py",
            f"--model={keras_file}",
            f"--class_names={tmp_path / 'classes.txt'}",
            f"--export_dir={tmp_path / 'exp'}",
            "--format=litert,onnx",
            "--litert_variants=float32",
        ],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(os.listdir(tmp_path / "exp")) == ["model.onnx", "model_float32.tflite", "portable.json"]
    assert "litert float32:" in result.stdout and "onnx float32:" in result.stdout
    assert "on 4 random videos" in result.stdout and "top-1 agreement 100.0%" in result.stdout
    result = subprocess.run(
        [
            sys.executable,
            "experiments/export.py",
            f"--model={keras_file}",
            f"--class_names={tmp_path / 'classes.txt'}",
            f"--export_dir={tmp_path / 'x'}",
            "--format=tensorrt",
        ],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "--format: unknown ['tensorrt']" in result.stderr


def test_quantised_files_keep_netvlad_assignment_at_float32(tmp_path, monkeypatch):
    """With α = 1000 a float16 or int8 rounding of W, b (or of x̂ in an int8 matmul) moves the
    assignment logits by ~1–16 and descriptors between words; the quantised files keep W and b at
    float32 precision (portable._float32_assignment). On NetVLAD alone (descriptors in, no backbone
    to round): the VLAD vector of both quantised files within 2e-3 of Keras, while the plain
    quantisation of the same layer is off by > 10× that."""
    pytest.importorskip("ai_edge_litert")
    from ai_edge_litert.interpreter import Interpreter

    from actionvlad_tf.layers import NetVLADPooling

    n, d, k = 60, 64, 16  # W holds d·k = 1024 elements: int8 would quantise it
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(k, d))
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    # Descriptors near the boundary of two words, where assignments are soft: logit gaps of -3 … 3.
    a, b = rng.integers(0, k, n), (rng.integers(1, k, n) + np.arange(n)) % k
    a = np.where(a == b, (b + 1) % k, a)
    gap = centers[a] - centers[b]
    x = (centers[a] + centers[b]) / 2 + gap * (rng.uniform(-3, 3, n) / (1000 * np.sum(gap**2, axis=1)))[:, None]
    x = (x / np.linalg.norm(x, axis=1, keepdims=True))[None].astype(np.float32)
    inputs = keras.Input((n, d), batch_size=1, name="descriptors")
    net = keras.Model(inputs, NetVLADPooling(k, initial_centers=centers, name="pooling")(inputs))
    expected = keras.ops.convert_to_numpy(net(x))
    spec = [tf.TensorSpec([1, n, d], "float32", name="descriptors")]

    def errors():
        found = {}
        for variant in ("float16", "int8"):
            runner = Interpreter(model_content=portable.litert_content(net, lambda v: {"vlad": net(v)}, spec, variant))
            got = runner.get_signature_runner("serving_default")(descriptors=x)["vlad"]
            found[variant] = float(np.abs(got - expected).max())
        return found

    kept = errors()
    assert max(kept.values()) < 2e-3, kept
    monkeypatch.setattr(portable, "_float32_assignment", lambda layer, variant: layer.assignment_logits)
    rounded = errors()
    assert all(rounded[v] > 10 * kept[v] for v in kept), (kept, rounded)
