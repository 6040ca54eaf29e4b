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
