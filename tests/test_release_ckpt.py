"""Release checkpoint conversion: a TF1 graph of the release's formula (§1.1-1.3), saved with
tf.compat.v1 Saver (V1 and V2) under the release's names, must give the converted Keras model's
logits; the report names unmapped and missing variables; the k-means pickle converts to .npz."""

import os
import pickle
import subprocess
import sys
import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from actionvlad_tf.convert import release_ckpt
from actionvlad_tf.models import build_actionvlad, build_frame_classifier, build_two_stream
from actionvlad_tf.models.vgg16 import VGG16_BLOCKS

B, T, S, K, C = 2, 2, 32, 4, 5  # videos, frames, crop size, clusters, classes


def _release_values(rng, prefix, channels, with_netvlad=True, fc_top=False):
    """Random variables with the release's names and shapes (§1.7) for a 32×32 input."""
    values, cin = {}, channels
    for block, num_convs, width in VGG16_BLOCKS:
        for i in range(1, num_convs + 1):
            scope = f"{prefix}vgg_16/conv{block}/conv{block}_{i}"
            values[f"{scope}/weights"] = rng.normal(0, np.sqrt(2.0 / (9 * cin)), (3, 3, cin, width))
            values[f"{scope}/biases"] = rng.normal(0, 0.1, width)
            cin = width
    if fc_top:  # slim's fc6-fc8 are convolutions; at 32×32 the pooled map is 1×1 (7×7 at 224)
        for name, shape in (("fc6", (1, 1, 512, 4096)), ("fc7", (1, 1, 4096, 4096)), ("fc8", (1, 1, 4096, C))):
            values[f"{prefix}vgg_16/{name}/weights"] = rng.normal(0, np.sqrt(2.0 / shape[2]), shape)
            values[f"{prefix}vgg_16/{name}/biases"] = rng.normal(0, 0.1, shape[-1])
    if with_netvlad:
        values[f"{prefix}NetVLAD/centers"] = rng.normal(0, 0.05, (K, 512))
        values[f"{prefix}NetVLAD/vlad_W"] = rng.normal(0, 0.1, (1, 1, 512, K))
        values[f"{prefix}NetVLAD/vlad_B"] = rng.normal(0, 0.5, K)
        values[f"{prefix}classifier/logits/weights"] = rng.normal(0, 1.0, (K * 512, C))
        values[f"{prefix}classifier/logits/biases"] = rng.normal(0, 0.1, C)
    return {name: value.astype(np.float32) for name, value in values.items()}


def _release_vgg(images, var, prefix, fc_top):
    """slim vgg_16 as modified by the release (§1.1): conv4_3 and conv5_3 without activation."""
    x = images
    for block, num_convs, _ in VGG16_BLOCKS:
        for i in range(1, num_convs + 1):
            scope = f"{prefix}vgg_16/conv{block}/conv{block}_{i}"
            x = tf.nn.bias_add(tf.nn.conv2d(x, var[f"{scope}/weights"], 1, "SAME"), var[f"{scope}/biases"])
            if (block, i) not in ((4, 3), (5, 3)):
                x = tf.nn.relu(x)
        if block == 5 and not fc_top:
            return x  # conv_only: the pre-ReLU conv5_3 map
        if block in (4, 5):
            x = tf.nn.relu(x)
        x = tf.nn.max_pool2d(x, 2, 2, "VALID")
    for name, relu in (("fc6", True), ("fc7", True), ("fc8", False)):
        scope = f"{prefix}vgg_16/{name}"
        x = tf.nn.bias_add(tf.nn.conv2d(x, var[f"{scope}/weights"], 1, "VALID"), var[f"{scope}/biases"])
        x = tf.nn.relu(x) if relu else x
    return tf.squeeze(x, [1, 2])


def _release_netvlad_logits(conv, var, prefix):
    """nets/frame_pooling.py::netvlad as released (§1.2), loop over clusters included, then §1.3."""
    net = tf.nn.l2_normalize(conv, 3, epsilon=1e-12)
    scores = tf.nn.bias_add(
        tf.nn.conv2d(net, var[f"{prefix}NetVLAD/vlad_W"], 1, "VALID"), var[f"{prefix}NetVLAD/vlad_B"]
    )
    assignment = tf.nn.softmax(scores, axis=-1)
    videos = []
    for net_v, assign_v in zip(tf.split(net, B, 0), tf.split(assignment, B, 0)):
        per_cluster = []
        for k in range(K):
            residual = net_v - var[f"{prefix}NetVLAD/centers"][k]
            per_cluster.append(tf.reduce_sum(assign_v[..., k : k + 1] * residual, [0, 1, 2]))
        videos.append(tf.stack(per_cluster))
    vlad = tf.nn.l2_normalize(tf.stack(videos), 2, epsilon=1e-12)
    vlad = tf.nn.l2_normalize(tf.reshape(vlad, [B, -1]), 1, epsilon=1e-12)
    return tf.nn.bias_add(
        tf.matmul(vlad, var[f"{prefix}classifier/logits/weights"]), var[f"{prefix}classifier/logits/biases"]
    )


def _save_release_checkpoint(path, values, images, streams, version, extra=()):
    """Creates the variables in a TF1 graph, saves them with a V1 or V2 Saver and returns the
    release graph's logits on `images` ({prefix: [B·T, S, S, C]}); `streams` maps prefix → fc_top."""
    graph = tf.Graph()
    with graph.as_default():
        var = {}
        for name, value in values.items():
            scope, _, leaf = name.rpartition("/")
            with tf.compat.v1.variable_scope(scope or tf.compat.v1.get_variable_scope()):
                var[name] = tf.compat.v1.get_variable(leaf, initializer=tf.constant(value))
        for name in extra:  # optimiser state and a variable no Keras weight takes
            scope, _, leaf = name.rpartition("/")
            with tf.compat.v1.variable_scope(scope or tf.compat.v1.get_variable_scope()):
                tf.compat.v1.get_variable(leaf, initializer=tf.zeros([3]))
        outputs = {}
        for prefix, fc_top in streams.items():
            features = _release_vgg(tf.constant(images[prefix]), var, prefix, fc_top)
            if fc_top:  # release pooling `avg`: mean of the per-frame logits (§1.4)
                outputs[prefix] = tf.reduce_mean(tf.reshape(features, [B, T, C]), 1)
            else:
                outputs[prefix] = _release_netvlad_logits(features, var, prefix)
        saver = tf.compat.v1.train.Saver(write_version=version)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver.save(session, str(path), write_meta_graph=False)
            return session.run(outputs)


def _video(rng, channels):
    return rng.uniform(-128, 128, (B, T, S, S, channels)).astype(np.float32)


@pytest.mark.parametrize("version", ["V1", "V2"])
def test_rgb_actionvlad_checkpoint_gives_release_logits(tmp_path, version):
    rng = np.random.default_rng(0)
    values = _release_values(rng, "stream0/", 3)
    video = _video(rng, 3)
    extra = (
        "stream0/classifier/logits/weights/Adam",
        "stream0/NetVLAD/centers/Adam_1",
        "global_step",
        "beta1_power",
        "stream0/pooled-batch-norm/beta",
        "stream1/vgg_16/conv1/conv1_1/weights",
    )
    ckpt = tmp_path / version / "model.ckpt"
    ckpt.parent.mkdir()
    expected = _save_release_checkpoint(
        ckpt,
        values,
        {"stream0/": video.reshape(B * T, S, S, 3)},
        {"stream0/": False},
        getattr(tf.compat.v1.train.SaverDef, version),
        extra,
    )["stream0/"]
    if version == "V1":
        assert ckpt.is_file()  # one file, as the released HMDB/UCF checkpoints
    model = build_actionvlad(C, frames_per_video=T, image_size=S, num_clusters=K, weight_decay=0)
    report = release_ckpt.load_release_checkpoint(model, ckpt.parent)  # a directory: the latest ckpt
    got = model(video).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5)
    assert np.abs(expected).max() > 0.1  # logits of real magnitude, not a vacuous match
    assert report.prefix == "stream0/"
    assert len(report.assigned) == 26 + 3 + 2
    assert report.missing == []
    assert report.unmapped == ["stream0/pooled-batch-norm/beta"]
    assert set(report.ignored) == {
        "stream0/classifier/logits/weights/Adam",
        "stream0/NetVLAD/centers/Adam_1",
        "global_step",
        "beta1_power",
    }
    assert report.outside_prefix == ["stream1/vgg_16/conv1/conv1_1/weights"]
    assert "unmapped (checkpoint variables no Keras weight took): 1" in report.summary()


def test_flow_checkpoint_without_stream_prefix_and_architecture(tmp_path):
    """checkpoint_style None (§2.4): names start at vgg_16/; conv1_1 has 20 input channels."""
    rng = np.random.default_rng(1)
    values = _release_values(rng, "", 20)
    video = _video(rng, 20)
    expected = _save_release_checkpoint(
        tmp_path / "flow.ckpt",
        values,
        {"": video.reshape(B * T, S, S, 20)},
        {"": False},
        tf.compat.v1.train.SaverDef.V2,
    )[""]
    read = release_ckpt.read_checkpoint(tmp_path / "flow.ckpt")
    arch = release_ckpt.release_architecture(read)
    assert arch == {
        "modality": "flow",
        "pooling": "netvlad",
        "num_clusters": K,
        "descriptor_size": 512,
        "num_classes": C,
        "include_top": False,
    }
    model = build_actionvlad(C, modality="flow", frames_per_video=None, image_size=S, num_clusters=K)
    report = release_ckpt.load_release_checkpoint(model, tmp_path / "flow.ckpt", values=read)
    assert report.prefix == "" and report.unmapped == [] and report.outside_prefix == []
    np.testing.assert_allclose(model(video).numpy(), expected, atol=1e-5, rtol=1e-5)


def test_two_stream_checkpoint_and_frame_classifier(tmp_path):
    """One checkpoint holding stream0 (RGB ActionVLAD) and stream1 (flow); and the two-stream
    baseline's full VGG (fc6-fc8 as 1×1 convs → Dense), averaged over frames (pooling avg)."""
    rng = np.random.default_rng(2)
    values = {**_release_values(rng, "stream0/", 3), **_release_values(rng, "stream1/", 20)}
    rgb, flow = _video(rng, 3), _video(rng, 20)
    expected = _save_release_checkpoint(
        tmp_path / "two.ckpt",
        values,
        {"stream0/": rgb.reshape(B * T, S, S, 3), "stream1/": flow.reshape(B * T, S, S, 20)},
        {"stream0/": False, "stream1/": False},
        tf.compat.v1.train.SaverDef.V2,
    )
    model = build_two_stream(C, frames_per_video=T, image_size=S, num_clusters=K, flow_weight=0.667)
    rgb_report, flow_report = release_ckpt.convert_two_stream(model, tmp_path / "two.ckpt")
    assert rgb_report.unmapped == flow_report.unmapped == []
    fused = 0.333 * expected["stream0/"] + 0.667 * expected["stream1/"]  # §6.3
    np.testing.assert_allclose(model({"rgb": rgb, "flow": flow}).numpy(), fused, atol=1e-5, rtol=1e-5)

    top_values = _release_values(rng, "stream0/", 3, with_netvlad=False, fc_top=True)
    expected = _save_release_checkpoint(
        tmp_path / "top.ckpt",
        top_values,
        {"stream0/": rgb.reshape(B * T, S, S, 3)},
        {"stream0/": True},
        tf.compat.v1.train.SaverDef.V2,
    )["stream0/"]
    frame_model = build_frame_classifier(C, frames_per_video=T, image_size=S)
    release_ckpt.load_release_checkpoint(frame_model, tmp_path / "top.ckpt")
    np.testing.assert_allclose(frame_model(rgb).numpy(), expected, atol=1e-4, rtol=1e-5)


def test_missing_and_mismatched_variables_are_named(tmp_path):
    rng = np.random.default_rng(3)
    values = _release_values(rng, "stream0/", 3)
    del values["stream0/NetVLAD/vlad_B"]
    model = build_actionvlad(C, frames_per_video=T, image_size=S, num_clusters=K)
    with pytest.raises(ValueError, match="stream0/NetVLAD/vlad_B"):
        release_ckpt.load_release_checkpoint(model, "unused", values=values)
    before = model.get_layer("classifier").kernel.numpy()
    report = release_ckpt.load_release_checkpoint(model, "unused", values=values, allow_missing=True)
    assert report.missing == ["stream0/NetVLAD/vlad_B -> pooling/assignment_bias"]
    assert not np.array_equal(before, model.get_layer("classifier").kernel.numpy())

    flow_model = build_actionvlad(C, modality="flow", frames_per_video=T, image_size=S, num_clusters=K)
    kernel = flow_model.get_layer("flow_vgg16").get_layer("block1_conv1").kernel.numpy()
    with pytest.raises(ValueError, match=r"conv1/conv1_1/weights has shape \(3, 3, 3, 64\)"):
        release_ckpt.load_release_checkpoint(flow_model, "unused", values=values, allow_missing=True)
    np.testing.assert_array_equal(kernel, flow_model.get_layer("flow_vgg16").get_layer("block1_conv1").kernel.numpy())
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        release_ckpt.read_checkpoint(tmp_path / "absent.ckpt")
    (tmp_path / "c.ckpt.data-00000-of-00001").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"\.index file is missing"):
        release_ckpt.read_checkpoint(tmp_path / "c.ckpt")


def _write_release_style_pickle(path, centers):
    """A KMeans pickled the way the release did (protocol 2, `sklearn.cluster.k_means_.KMeans`,
    a module that no longer exists) so that the test does not depend on the installed sklearn."""
    module = types.ModuleType("sklearn.cluster.k_means_")

    class KMeans:
        pass

    KMeans.__module__, KMeans.__qualname__ = module.__name__, "KMeans"
    module.KMeans = KMeans
    sys.modules[module.__name__] = module
    try:
        estimator = KMeans()
        estimator.__dict__.update(n_clusters=len(centers), cluster_centers_=centers, inertia_=1.0)
        with open(path, "wb") as f:
            pickle.dump(estimator, f, protocol=2)
    finally:
        del sys.modules[module.__name__]


def test_kmeans_pickle_to_npz(tmp_path):
    centers = np.random.default_rng(4).normal(size=(K, 8)).astype(np.float64)
    _write_release_style_pickle(tmp_path / "kmeans.pkl", centers)
    with pytest.warns(UserWarning, match="runs code"):
        got = release_ckpt.kmeans_centers_from_pickle(tmp_path / "kmeans.pkl")
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, centers, rtol=1e-6)
    release_ckpt.save_centers_npz(got, tmp_path / "out" / "centers.npz")
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "centers.npz")["centers"], got)

    from sklearn.cluster import KMeans  # a pickle of today's sklearn loads the same way

    fitted = KMeans(n_clusters=2, n_init=1, random_state=0).fit(np.random.default_rng(5).normal(size=(20, 3)))
    (tmp_path / "new.pkl").write_bytes(pickle.dumps(fitted))
    with pytest.warns(UserWarning):
        np.testing.assert_allclose(
            release_ckpt.kmeans_centers_from_pickle(tmp_path / "new.pkl"), fitted.cluster_centers_, rtol=1e-6
        )


def test_kmeans_pickle_refuses_other_globals(tmp_path):
    class Evil:
        def __reduce__(self):
            return (subprocess.call, (["true"],))

    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(Evil()))
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="refusing to load global subprocess.call"):
        release_ckpt.kmeans_centers_from_pickle(tmp_path / "evil.pkl")


def _convert_cli(*args):
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return subprocess.run(
        [sys.executable, "experiments/convert_release_checkpoint.py", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )


@pytest.mark.slow  # subprocesses of the absl entry points; the library is tested above
def test_entry_point(tmp_path):
    """`checkpoint` builds the model from the checkpoint's shapes and writes a .keras file;
    `kmeans` warns and writes the .npz; no subcommand is a usage error."""
    rng = np.random.default_rng(6)
    values = _release_values(rng, "stream0/", 3)
    video = _video(rng, 3)
    expected = _save_release_checkpoint(
        tmp_path / "m.ckpt",
        values,
        {"stream0/": video.reshape(B * T, S, S, 3)},
        {"stream0/": False},
        tf.compat.v1.train.SaverDef.V1,
    )["stream0/"]
    result = _convert_cli(
        "checkpoint", f"--checkpoint={tmp_path / 'm.ckpt'}", f"--output={tmp_path / 'm.keras'}", f"--image_size={S}"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (
        "31 variables assigned" in result.stdout
        and "missing (Keras weights without a checkpoint variable): 0" in result.stdout
    )
    model = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(model(video).numpy(), expected, atol=1e-5, rtol=1e-5)

    _write_release_style_pickle(tmp_path / "k.pkl", values["stream0/NetVLAD/centers"])
    result = _convert_cli("kmeans", f"--pickle={tmp_path / 'k.pkl'}", f"--output={tmp_path / 'k.npz'}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "runs code" in result.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "k.npz")["centers"], values["stream0/NetVLAD/centers"])
    result = _convert_cli(f"--pickle={tmp_path / 'k.pkl'}", f"--output={tmp_path / 'x.npz'}")
    assert result.returncode != 0 and "checkpoint|kmeans" in result.stderr
    assert not (tmp_path / "x.npz").exists()


def test_cuhk_uptoconv5_checkpoint_converts_to_backbone_weights(tmp_path):
    """The release's RGB start (`vgg_16_action_rgb_pretrain_uptoConv5.ckpt`: stream0/vgg_16/conv1-5
    only, §2.5) → one command → a file that `--backbone_weights` takes: the descriptors of a model
    built from it are the release VGG's pre-ReLU conv5_3 (docs/training.md, "RGB start")."""
    from actionvlad_tf.models import descriptor_model
    from actionvlad_tf.specs import ModelSpec

    rng = np.random.default_rng(8)
    values = _release_values(rng, "stream0/", 3, with_netvlad=False)
    images = rng.uniform(-128, 128, (B * T, S, S, 3)).astype(np.float32)
    graph = tf.Graph()
    with graph.as_default():
        conv5 = _release_vgg(tf.constant(images), {k: tf.constant(v) for k, v in values.items()}, "stream0/", False)
        with tf.compat.v1.Session(graph=graph) as session:
            expected = session.run(conv5)
    _save_release_checkpoint(tmp_path / "cuhk.ckpt", values, {}, {}, tf.compat.v1.train.SaverDef.V2)
    result = _convert_cli(
        "checkpoint",
        f"--checkpoint={tmp_path / 'cuhk.ckpt'}",
        "--allow_missing",
        "--num_classes=51",
        f"--output={tmp_path / 'cuhk.keras'}",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "26 variables assigned" in result.stdout
    features = descriptor_model(ModelSpec(51, image_size=S), str(tmp_path / "cuhk.keras"))
    np.testing.assert_allclose(features(images, training=False).numpy(), expected, rtol=1e-4, atol=1e-3)
