"""SavedModel export: scores equal the Keras model's in-process, in a fresh process that imports only
TensorFlow, and through `saved_model_cli run`; bad inputs give clear errors; layout and versions."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from actionvlad_tf.data.augment import preprocess_for_eval
from actionvlad_tf.data.sampling import frame_numbers, stack_numbers
from actionvlad_tf.export.saved_model import clips_function, export_saved_model, jpeg_clips_function, late_fuse
from actionvlad_tf.models import build_actionvlad, build_two_stream, embedding_model

T, S, K, C = 3, 32, 4, 6
CLASSES = [f"class_{i}" for i in range(C)]
FRESH_PROCESS = r"""
import json, sys
import numpy as np
import tensorflow as tf
signature = tf.saved_model.load(sys.argv[1]).signatures[sys.argv[2]]
inputs = {name: tf.constant(np.load(path)) for name, path in json.loads(sys.argv[3]).items()}
outputs = {k: v.numpy() for k, v in signature(**inputs).items()}
outputs["top5_classes"] = outputs["top5_classes"].astype(str)
np.savez(sys.argv[4], **outputs)
assert not any(m.startswith("actionvlad_tf") for m in sys.modules), "the package was imported"
"""


def _frames(rng, channels, height=48, width=64, frames=T):
    return rng.integers(0, 256, (frames, height, width, channels), dtype=np.uint8)


def _keras_logits(model, videos, num_crops=1):
    batch = {m: preprocess_for_eval(v, m, num_crops, S)[None] for m, v in videos.items()}
    return keras.ops.convert_to_numpy(model(batch if len(batch) > 1 else next(iter(batch.values()))))[0]


def _save_inputs(tmp_path, inputs):
    paths = {}
    for name, value in inputs.items():
        paths[name] = str(tmp_path / f"{name}.npy")
        np.save(paths[name], value)
    return paths


def _run_fresh_process(tmp_path, export_path, inputs, signature="serving_default"):
    out = tmp_path / "fresh.npz"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    subprocess.run(
        [
            sys.executable,
            "-c",
            FRESH_PROCESS,
            export_path,
            signature,
            json.dumps(_save_inputs(tmp_path, inputs)),
            str(out),
        ],
        check=True,
        env=env,
        cwd=tmp_path,
        capture_output=True,
    )
    return dict(np.load(out))


def _run_saved_model_cli(tmp_path, export_path, inputs):
    paths = _save_inputs(tmp_path, inputs)
    outdir = tmp_path / "cli"
    command = [
        sys.executable,
        "-m",
        "tensorflow.python.tools.saved_model_cli",
        "run",
        "--dir",
        export_path,
        "--tag_set",
        "serve",
        "--signature_def",
        "serving_default",
        "--inputs",
        ";".join(f"{name}={path}" for name, path in paths.items()),
        "--outdir",
        str(outdir),
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return {p.stem: np.load(p, allow_pickle=True) for p in outdir.glob("*.npy")}


@pytest.fixture(scope="module")
def rgb_export(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = build_actionvlad(C, frames_per_video=T, image_size=S, num_clusters=K, weight_decay=0)
    classifier = model.get_layer("classifier")  # logits of a spread that makes the ranking meaningful
    classifier.kernel.assign(np.random.default_rng(0).normal(0, 3.0, classifier.kernel.shape))
    export_dir = tmp_path_factory.mktemp("rgb_export")
    paths = export_saved_model(model, export_dir, CLASSES)
    return model, paths


def test_rgb_export_matches_keras_everywhere(rgb_export, tmp_path):
    model, paths = rgb_export
    assert paths["saved_model"].endswith(os.path.join("rgb_export0", "1"))
    assert os.path.isfile(os.path.join(paths["saved_model"], "saved_model.pb"))
    frames = _frames(np.random.default_rng(1), 3)
    expected = _keras_logits(model, {"rgb": frames})

    loaded = tf.saved_model.load(paths["saved_model"])
    served = {k: v.numpy() for k, v in loaded.signatures["serving_default"](frames=tf.constant(frames)).items()}
    fresh = _run_fresh_process(tmp_path, paths["saved_model"], {"frames": frames})
    cli = _run_saved_model_cli(tmp_path, paths["saved_model"], {"frames": frames})
    order = np.argsort(-expected)[:5]
    for outputs in (served, fresh, cli):
        np.testing.assert_allclose(outputs["logits"], expected, atol=1e-5)
        np.testing.assert_allclose(outputs["probabilities"], tf.nn.softmax(expected).numpy(), atol=1e-6)
        np.testing.assert_array_equal(outputs["top5_indices"], order)
        assert [c.decode() if isinstance(c, bytes) else str(c) for c in outputs["top5_classes"]] == [
            CLASSES[i] for i in order
        ]
    assert np.ptp(expected) > 0.1  # distinct scores: the ranking checks something

    batch = preprocess_for_eval(frames, "rgb", 1, S)[None].numpy()
    batch = np.concatenate([batch, batch[:, ::-1]])  # two videos
    preprocessed = loaded.signatures["preprocessed"](rgb=tf.constant(batch))
    np.testing.assert_allclose(preprocessed["logits"].numpy(), keras.ops.convert_to_numpy(model(batch)), atol=1e-5)
    assert preprocessed["top5_classes"].shape == (2, 5)

    reloaded = keras.saving.load_model(paths["keras"])
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(reloaded(batch)), keras.ops.convert_to_numpy(model(batch)), atol=1e-6
    )


def test_bad_inputs_give_clear_errors(rgb_export):
    signature = tf.saved_model.load(rgb_export[1]["saved_model"]).signatures["serving_default"]
    frames = _frames(np.random.default_rng(2), 3)
    with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError), match="expected to be a uint8"):
        signature(frames=tf.constant(frames.astype(np.float32)))
    for bad, message in (
        (frames[0], r"expected shape \[T=3, H, W, C=3\], got rank"),
        (_frames(np.random.default_rng(2), 4), r"C must be 3 in \[T=3, H, W, C=3\]"),
        (_frames(np.random.default_rng(2), 3, frames=T + 1), "T must be 3"),
        (np.zeros([T, 0, 64, 3], np.uint8), "at least one frame, a height and a width"),
    ):
        # Binding rejects most shapes (TypeError); where a loaded signature passes them through,
        # the graph's checks name the problem.
        with pytest.raises((TypeError, tf.errors.InvalidArgumentError), match=f"{message}|Can not cast"):
            signature(frames=tf.constant(bad))
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            signature._call_flat([tf.constant(bad)], signature.captured_inputs)  # what Serving does
    preprocessed = tf.saved_model.load(rgb_export[1]["saved_model"]).signatures["preprocessed"]
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"S must be 32 in \[B, T=3, S=32, S=32, C=3\]"):
        preprocessed._call_flat([tf.zeros([1, T, 16, 32, 3])], preprocessed.captured_inputs)


def test_bad_input_errors_in_saved_model_cli(rgb_export, tmp_path):
    """saved_model_cli feeds through a TF1 session: it casts dtypes and checks the placeholder's
    shape itself; an empty video reaches the graph's check."""
    for name, frames, message in (
        ("empty", np.zeros((T, 0, 64, 3), np.uint8), "at least one frame"),
        ("rank3", np.zeros((48, 64, 3), np.uint8), "Cannot feed value of shape"),
    ):
        np.save(tmp_path / f"{name}.npy", frames)
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "tensorflow.python.tools.saved_model_cli",
                "run",
                "--dir",
                rgb_export[1]["saved_model"],
                "--tag_set",
                "serve",
                "--signature_def",
                "serving_default",
                "--inputs",
                f"frames={tmp_path / name}.npy",
            ],
            capture_output=True,
            text=True,
        )
        assert result.returncode != 0
        assert message in result.stderr, result.stderr[-1500:]


def test_versions_and_overwrite(rgb_export, tmp_path):
    model = rgb_export[0]
    first = export_saved_model(model, tmp_path, CLASSES, keras_file=False)
    second = export_saved_model(model, tmp_path, CLASSES, keras_file=False)
    assert [os.path.basename(p["saved_model"]) for p in (first, second)] == ["1", "2"]
    assert first["keras"] is None and not (tmp_path / "model.keras").exists()
    with pytest.raises(FileExistsError, match="exists"):
        export_saved_model(model, tmp_path, CLASSES, version=1, keras_file=False)
    export_saved_model(model, tmp_path, CLASSES, version=1, overwrite=True, keras_file=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1", "2"]  # no temporary left behind
    with pytest.raises(ValueError, match="3 class names for a model with 6 classes"):
        export_saved_model(model, tmp_path / "x", CLASSES[:3])


def test_two_stream_export_late_fuses_inside(tmp_path):
    """A `build_two_stream` late-fusion model with 5 crops, and `late_fuse` of two separately
    trained single-stream models, each against its Keras model, in a TF-only process."""
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(4)
    frames, flow = _frames(rng, 3), _frames(rng, 20)
    model = build_two_stream(C, frames_per_video=T, num_crops=5, image_size=S, num_clusters=K)
    paths = export_saved_model(model, tmp_path / "two", CLASSES, num_crops=5)
    expected = _keras_logits(model, {"rgb": frames, "flow": flow}, num_crops=5)
    fresh = _run_fresh_process(tmp_path, paths["saved_model"], {"frames": frames, "flow": flow})
    np.testing.assert_allclose(fresh["logits"], expected, atol=1e-5)

    rgb = build_actionvlad(C, frames_per_video=None, image_size=S, num_clusters=K)
    flow_model = build_actionvlad(C, modality="flow", frames_per_video=None, image_size=S, num_clusters=K)
    fused = late_fuse(rgb, flow_model, flow_weight=0.667)
    paths = export_saved_model(fused, tmp_path / "fused", CLASSES)
    signature = tf.saved_model.load(paths["saved_model"]).signatures["serving_default"]
    got = signature(frames=tf.constant(frames[:2]), flow=tf.constant(flow[:2]))["logits"].numpy()
    single = {m: _keras_logits(net, {m: v[:2]}) for m, net, v in (("rgb", rgb, frames), ("flow", flow_model, flow))}
    np.testing.assert_allclose(got, 0.333 * single["rgb"] + 0.667 * single["flow"], atol=1e-5)
    with pytest.raises(ValueError, match="single-stream RGB model and a single-stream flow model"):
        late_fuse(flow_model, rgb)


def _padded(videos):
    """Clips of different lengths → one zero-padded batch [B, N_max, …] and their lengths."""
    batch = np.zeros((len(videos), max(len(v) for v in videos), *videos[0].shape[1:]), np.uint8)
    for b, video in enumerate(videos):
        batch[b, : len(video)] = video
    return batch


def test_clips_signature_samples_any_length_in_batches(rgb_export, tmp_path):
    """`clips`: padded batches of clips of different lengths; the graph picks each clip's T frames
    with the release's step and equals the Keras model on the frames sampled in numpy, in a process
    that imports only TensorFlow."""
    model, paths = rgb_export
    rng = np.random.default_rng(7)
    clips = [_frames(rng, 3, frames=n) for n in (7, 20, 1)]
    expected = np.stack([_keras_logits(model, {"rgb": c[frame_numbers(len(c), T) - 1]}) for c in clips])
    inputs = {"frames": _padded(clips), "num_frames": np.array([7, 20, 1], np.int32)}
    fresh = _run_fresh_process(tmp_path, paths["saved_model"], inputs, signature="clips")
    np.testing.assert_allclose(fresh["logits"], expected, atol=1e-5)
    np.testing.assert_allclose(fresh["probabilities"], tf.nn.softmax(expected).numpy(), atol=1e-6)
    np.testing.assert_array_equal(fresh["top5_indices"], np.argsort(-expected, axis=1)[:, :5])
    assert fresh["top5_classes"].shape == (3, 5)
    print("clips of 7, 20, 1 frames: logits", np.round(fresh["logits"], 3).tolist())


def test_clips_signature_of_two_streams_stacks_flow_in_the_graph(tmp_path):
    """Two streams built for any T (the clips function samples `frames_per_video`): per-frame flow
    images [B, M, H, W, 2] are stacked (x1, y1, …, x10, y10) from the shared frame numbers; bad
    lengths are named."""
    keras.utils.set_random_seed(2)
    rgb = build_actionvlad(C, frames_per_video=None, image_size=S, num_clusters=K)
    flow_model = build_actionvlad(C, modality="flow", frames_per_video=None, image_size=S, num_clusters=K)
    fused = late_fuse(rgb, flow_model, flow_weight=0.667)
    clips_fn, spec = clips_function(fused, CLASSES, frames_per_video=2)
    assert [s.name for s in spec] == ["frames", "flow", "num_frames"]
    rng = np.random.default_rng(8)
    lengths = (12, 19)
    clips = [_frames(rng, 3, frames=n) for n in lengths]
    flows = [_frames(rng, 2, frames=n - 1) for n in lengths]
    expected = []
    for clip, flow in zip(clips, flows):
        first = frame_numbers(len(clip), 2, "rgb+flow")
        stacks = np.stack([np.concatenate([flow[k - 1] for k in row], -1) for row in stack_numbers(first)])
        expected.append(_keras_logits(fused, {"rgb": clip[first - 1], "flow": stacks}))
    got = clips_fn(tf.constant(_padded(clips)), tf.constant(_padded(flows)), tf.constant(lengths, tf.int32))
    np.testing.assert_allclose(got["logits"].numpy(), np.stack(expected), atol=1e-5)
    for lengths, message in (
        ([10, 19], "one stack"),
        ([12, 20], "num_frames exceeds the frames given"),
        ([0, 19], "num_frames must be ≥ 1"),
    ):
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            clips_fn(tf.constant(_padded(clips)), tf.constant(_padded(flows)), tf.constant(lengths, tf.int32))


def _jpegs(frames):
    """Frames [N, H, W, C] → (JPEG strings [N] as numpy bytes, the frames those JPEGs decode to)."""
    encoded = [tf.io.encode_jpeg(tf.constant(f), quality=90).numpy() for f in frames]
    decoded = np.stack([tf.io.decode_jpeg(e, channels=frames.shape[-1]).numpy() for e in encoded])
    return np.array(encoded, dtype=bytes), decoded


def _padded_strings(videos):
    batch = np.zeros((len(videos), max(len(v) for v in videos)), dtype=f"S{max(len(e) for v in videos for e in v)}")
    for b, video in enumerate(videos):
        batch[b, : len(video)] = video
    return batch


def test_every_signature_gives_the_embedding(rgb_export):
    """`embedding` [K·D] is the pooled vector the classifier reads, in each signature."""
    model, paths = rgb_export
    signatures = tf.saved_model.load(paths["saved_model"]).signatures
    frames = _frames(np.random.default_rng(3), 3)
    batch = preprocess_for_eval(frames, "rgb", 1, S)[None]
    expected = keras.ops.convert_to_numpy(embedding_model(model)(batch)["embedding"])
    assert expected.shape == (1, K * 512) and np.ptp(expected) > 0
    encoded, decoded = _jpegs(frames)
    outputs = {
        "serving_default": signatures["serving_default"](frames=tf.constant(frames))["embedding"][None],
        "preprocessed": signatures["preprocessed"](rgb=batch)["embedding"],
        "clips": signatures["clips"](frames=tf.constant(frames[None]), num_frames=tf.constant([T]))["embedding"],
    }
    for name, got in outputs.items():
        np.testing.assert_allclose(got.numpy(), expected, atol=1e-6, err_msg=name)
    from_jpeg = signatures["jpeg_clips"](jpeg_frames=tf.constant(encoded[None]), num_frames=tf.constant([T]))
    from_decoded = signatures["clips"](frames=tf.constant(decoded[None]), num_frames=tf.constant([T]))
    np.testing.assert_allclose(from_jpeg["embedding"].numpy(), from_decoded["embedding"].numpy(), atol=1e-6)


def test_jpeg_clips_equal_clips_on_the_decoded_frames(rgb_export, tmp_path):
    """`jpeg_clips` on padded batches of JPEG strings [B, N] equals `clips` on the frames those JPEGs
    decode to, in a process that imports only TensorFlow; a broken JPEG among the sampled frames
    is an error, one among the padding or the frames not sampled is never decoded."""
    _, paths = rgb_export
    rng = np.random.default_rng(9)
    lengths = (7, 20, 1)
    pairs = [_jpegs(_frames(rng, 3, frames=n)) for n in lengths]
    num_frames = np.array(lengths, np.int32)
    from_jpeg = _run_fresh_process(
        tmp_path,
        paths["saved_model"],
        {"jpeg_frames": _padded_strings([e for e, _ in pairs]), "num_frames": num_frames},
        signature="jpeg_clips",
    )
    from_clips = _run_fresh_process(
        tmp_path,
        paths["saved_model"],
        {"frames": _padded([d for _, d in pairs]), "num_frames": num_frames},
        signature="clips",
    )
    assert set(from_jpeg) == set(from_clips) >= {"logits", "probabilities", "embedding", "top5_classes"}
    np.testing.assert_array_equal(from_jpeg.pop("top5_classes"), from_clips.pop("top5_classes"))
    for name in from_clips:
        np.testing.assert_allclose(from_jpeg[name], from_clips[name], atol=1e-6, err_msg=name)
    signature = tf.saved_model.load(paths["saved_model"]).signatures["jpeg_clips"]
    broken = _padded_strings([e for e, _ in pairs])
    broken[1, 2] = b"not a jpeg"  # frame 3 of 20: not among the frames 1, 10, 19 sampled
    signature(jpeg_frames=tf.constant(broken), num_frames=tf.constant(num_frames))
    broken[1, 9] = b"not a jpeg"
    with pytest.raises(tf.errors.InvalidArgumentError, match="JPEG|jpeg|Unknown image"):
        signature(jpeg_frames=tf.constant(broken), num_frames=tf.constant(num_frames))


def test_jpeg_clips_of_two_streams_decode_flow_jpegs():
    """Flow as TSN's grayscale flow_x / flow_y JPEGs [B, M] each: equal to `clips` on the decoded
    images stacked x then y."""
    keras.utils.set_random_seed(3)
    fused = late_fuse(
        build_actionvlad(C, frames_per_video=None, image_size=S, num_clusters=K),
        build_actionvlad(C, modality="flow", frames_per_video=None, image_size=S, num_clusters=K),
    )
    rng = np.random.default_rng(10)
    lengths = (12, 15)
    rgb = [_jpegs(_frames(rng, 3, frames=n)) for n in lengths]
    flow_x = [_jpegs(_frames(rng, 1, frames=n - 1)) for n in lengths]
    flow_y = [_jpegs(_frames(rng, 1, frames=n - 1)) for n in lengths]
    jpeg_fn, spec = jpeg_clips_function(fused, CLASSES, frames_per_video=2)
    assert [s.name for s in spec] == ["jpeg_frames", "jpeg_flow_x", "jpeg_flow_y", "num_frames"]
    clips_fn, _ = clips_function(fused, CLASSES, frames_per_video=2)
    n = tf.constant(lengths, tf.int32)
    got = jpeg_fn(*[tf.constant(_padded_strings([e for e, _ in v])) for v in (rgb, flow_x, flow_y)], n)
    flows = [np.concatenate([x, y], -1) for (_, x), (_, y) in zip(flow_x, flow_y)]
    expected = clips_fn(tf.constant(_padded([d for _, d in rgb])), tf.constant(_padded(flows)), n)
    for name in ("logits", "embedding"):
        np.testing.assert_allclose(got[name].numpy(), expected[name].numpy(), atol=1e-5)
    with pytest.raises(tf.errors.InvalidArgumentError, match="one stack"):
        jpeg_fn(
            *[tf.constant(_padded_strings([e for e, _ in v])) for v in (rgb, flow_x, flow_y)],
            tf.constant([10, 15], tf.int32),
        )


@pytest.mark.slow  # subprocesses of the absl entry points; the library is tested above
def test_entry_point(rgb_export, tmp_path):
    (tmp_path / "classes.txt").write_text("".join(f"{c}\n" for c in CLASSES))
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    command = [
        sys.executable,
        "experiments/export.py",
        f"--model={rgb_export[1]['keras']}",
        f"--class_names={tmp_path / 'classes.txt'}",
        f"--export_dir={tmp_path / 'exp'}",
    ]
    result = subprocess.run(
        command, cwd=repo, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"SavedModel: {tmp_path / 'exp' / '1'}" in result.stdout
    frames = _frames(np.random.default_rng(5), 3)
    served = tf.saved_model.load(str(tmp_path / "exp" / "1")).signatures["serving_default"](frames=tf.constant(frames))
    np.testing.assert_allclose(served["logits"].numpy(), _keras_logits(rgb_export[0], {"rgb": frames}), atol=1e-5)
    result = subprocess.run(
        command[:2] + [f"--rgb_model={rgb_export[1]['keras']}"] + command[3:], cwd=repo, capture_output=True, text=True
    )
    assert result.returncode != 0 and "either --model, or both --rgb_model and --flow_model" in result.stderr
