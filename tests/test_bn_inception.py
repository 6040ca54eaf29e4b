"""BN-Inception backbone (release §7): block shapes, frozen BN, TF SAME avg-pool, flow conversion,
release/TSN name mapping and loading, training stages on the ActionVLAD model."""

import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from harness import check_config_round_trip, run_backbone_test

from actionvlad_tf.models import bn_inception
from actionvlad_tf.models.actionvlad import build_actionvlad, set_training_stage
from actionvlad_tf.models.parts import flow_kernel_from_rgb

# Release §7 table: channels per endpoint, and the spatial stride from the input.
ENDPOINT_SHAPES = {
    "conv1/7x7_s2": (2, 64),
    "pool1/3x3_s2": (4, 64),
    "conv2/3x3_reduce": (4, 64),
    "conv2/3x3": (4, 192),
    "pool2/3x3_s2": (8, 192),
    "inception_3a": (8, 256),
    "inception_3b": (8, 320),
    "inception_3c": (16, 576),
    "inception_4a": (16, 576),
    "inception_4b": (16, 576),
    "inception_4c": (16, 608),
    "inception_4d": (16, 608),
    "inception_4e": (32, 1056),
    "inception_5a": (32, 1024),
    "inception_5b": (32, 1024),
}


def _endpoint_model(backbone):
    outputs = {e: backbone.get_layer(bn_inception.endpoint_layer_name(e)).output for e in bn_inception.ENDPOINTS}
    return keras.Model(backbone.input, outputs)


def test_block_shapes_and_parameter_count_at_224():
    backbone = bn_inception.build_bn_inception(conv_endpoint="inception_5b", input_shape=(224, 224))
    for endpoint, shape in _endpoint_model(backbone).output.items():
        stride, channels = ENDPOINT_SHAPES[endpoint]
        assert tuple(shape.shape) == (None, 224 // stride, 224 // stride, channels), endpoint
    assert backbone.count_params() == 10_290_272  # BN-Inception without its fc, BN statistics included
    default = bn_inception.build_bn_inception(input_shape=(224, 224))
    assert default.output_shape == (None, 7, 7, 1024)  # inception_5a, the Charades endpoint
    assert default.count_params() == 8_005_760


def test_block_shapes_at_64_eager():
    backbone = bn_inception.build_bn_inception(conv_endpoint="inception_5b")
    outputs = _endpoint_model(backbone)(np.random.default_rng(0).normal(size=(2, 64, 64, 3)).astype("float32"))
    for endpoint, value in outputs.items():
        stride, channels = ENDPOINT_SHAPES[endpoint]
        assert value.shape == (2, 64 // stride, 64 // stride, channels), endpoint
        assert float(keras.ops.min(value)) >= 0.0  # every endpoint is post-ReLU (release §8 row 3)


@pytest.mark.parametrize("endpoint", ["conv2/3x3", "conv2_3x3", "pool1/3x3_s2", "inception_3c"])
def test_every_endpoint_selectable_by_release_or_keras_name(endpoint):
    backbone = bn_inception.build_bn_inception(conv_endpoint=endpoint)
    canonical = endpoint.replace("conv2_", "conv2/")
    stride, channels = ENDPOINT_SHAPES[canonical]
    assert backbone(np.zeros((1, 64, 64, 3), "float32")).shape == (1, 64 // stride, 64 // stride, channels)
    assert backbone.layers[-1].name == bn_inception.endpoint_layer_name(endpoint)


def test_unknown_endpoint_and_wrong_channels_are_errors():
    with pytest.raises(ValueError, match="conv_endpoint must be one of"):
        bn_inception.build_bn_inception(conv_endpoint="mixed_5c")
    with pytest.raises(ValueError, match="20 channels"):
        bn_inception.build_bn_inception(modality="flow", input_shape=(64, 64, 3))


def test_module_structure_small_modules_and_5b_max_pool():
    backbone = bn_inception.build_bn_inception(conv_endpoint="inception_5b")
    names = {layer.name for layer in backbone.layers}
    for block in ("inception_3c", "inception_4e"):
        assert f"{block}_1x1" not in names and f"{block}_pool_proj" not in names
        assert backbone.get_layer(f"{block}_3x3").strides == (2, 2)
        assert backbone.get_layer(f"{block}_double_3x3_2").strides == (2, 2)
        assert isinstance(backbone.get_layer(f"{block}_pool"), keras.layers.MaxPooling2D)
        assert backbone.get_layer(f"{block}_pool").strides == (2, 2)
    assert isinstance(backbone.get_layer("inception_5b_pool"), keras.layers.MaxPooling2D)
    assert isinstance(backbone.get_layer("inception_5a_pool"), keras.layers.AveragePooling2D)
    conv = backbone.get_layer("conv1_7x7_s2")
    assert conv.padding == "valid" and conv.use_bias and conv.kernel.shape == (7, 7, 3, 64)
    assert backbone.get_layer("conv1_7x7_s2_pad").padding == ((3, 3), (3, 3))
    bn = backbone.get_layer("conv1_7x7_s2_bn")
    assert bn.epsilon == 1e-5 and bn.momentum == 0.9 and bn.scale and bn.center


def test_avg_pool_excludes_padding():
    """TF SAME average pooling (release §8 row 30): border windows average only real pixels."""
    backbone = bn_inception.build_bn_inception(conv_endpoint="inception_3a")
    pool = backbone.get_layer("inception_3a_pool")
    x = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
    # Corner (0, 0): (0 + 1 + 4 + 5) / 4 = 2.5; Caffe's padded average would give 10 / 9.
    # Edge (0, 1): (0 + 1 + 2 + 4 + 5 + 6) / 6 = 3; centre (1, 1): (0+1+2+4+5+6+8+9+10) / 9 = 5.
    expected = np.array([[2.5, 3, 4, 4.5], [4.5, 5, 6, 6.5], [8.5, 9, 10, 10.5], [10.5, 11, 12, 12.5]])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(pool(x))[0, :, :, 0], expected)
    # Inside the graph too: tf.data-free check on a [1, 3, 3, 1] map with a single 9 at the corner.
    corner = np.zeros((1, 3, 3, 1), "float32")
    corner[0, 0, 0, 0] = 9.0
    assert float(keras.ops.convert_to_numpy(tf.function(pool)(corner))[0, 0, 0, 0]) == pytest.approx(9.0 / 4)


def test_frozen_batchnorm_stays_frozen_during_a_training_step():
    backbone = bn_inception.build_bn_inception(conv_endpoint="conv2/3x3", trainable_from="conv1_7x7_s2_pad")
    backbone.trainable = True  # reaches every layer; the BN must stay frozen anyway
    bn_layers = [l for l in backbone.layers if isinstance(l, bn_inception.FrozenBatchNormalization)]
    rng = np.random.default_rng(0)
    for layer in bn_layers:  # non-trivial statistics, so a change would show
        layer.set_weights([rng.uniform(0.5, 2, w.shape).astype("float32") for w in layer.weights])
    before = [[np.array(w) for w in l.weights] for l in bn_layers]
    kernel_before = np.array(backbone.get_layer("conv1_7x7_s2").kernel)
    assert not any("_bn/" in w.path for w in backbone.trainable_weights)

    x = rng.normal(size=(4, 32, 32, 3)).astype("float32") * 50
    np.testing.assert_allclose(backbone(x, training=True), backbone(x, training=False), rtol=1e-5, atol=1e-4)
    backbone.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    backbone.fit(x, np.zeros((4, 8, 8, 192), "float32"), epochs=1, batch_size=4, verbose=0)

    for layer, weights in zip(bn_layers, before):
        for variable, value in zip(layer.weights, weights):
            np.testing.assert_array_equal(np.array(variable), value, err_msg=variable.path)
    assert not np.array_equal(np.array(backbone.get_layer("conv1_7x7_s2").kernel), kernel_before)


def test_frozen_batchnorm_config_round_trip():
    layer = bn_inception.FrozenBatchNormalization(epsilon=1e-5, momentum=0.9, name="bn")
    clone = check_config_round_trip(layer, ("epsilon", "momentum"))
    clone.trainable = True
    assert clone.trainable is False and clone.epsilon == 1e-5


def _release_values(model, stream="stream0", rgb_first_conv=False, seed=0):
    rng = np.random.default_rng(seed)
    values = {}
    for name, _, shape in bn_inception.release_weight_map(model, stream):
        if rgb_first_conv and name.endswith("conv1/7x7_s2/Conv/weights"):
            shape = shape[:2] + (3,) + shape[3:]
        value = rng.normal(size=shape).astype("float32")
        values[name] = np.abs(value) + 0.1 if name.endswith("moving_variance") else value
    return values


def test_release_name_mapping_table():
    model = build_actionvlad(
        5, backbone="bn_inception", conv_endpoint="inception_3a", num_clusters=4, image_size=64, frames_per_video=2
    )
    entries = {name: (variable.path, shape) for name, variable, shape in bn_inception.release_weight_map(model)}
    assert entries["stream0/InceptionV2_TSN/conv1/7x7_s2/Conv/weights"] == ("conv1_7x7_s2/kernel", (7, 7, 3, 64))
    assert entries["stream0/InceptionV2_TSN/conv2/3x3_reduce/Conv/biases"][0] == "conv2_3x3_reduce/bias"
    assert entries["stream0/InceptionV2_TSN/inception_3a/double_3x3_1/BatchNorm/moving_variance"][0] == (
        "inception_3a_double_3x3_1_bn/moving_variance"
    )
    assert (
        entries["stream0/InceptionV2_TSN/inception_3a/pool_proj/BatchNorm/gamma"][0]
        == "inception_3a_pool_proj_bn/gamma"
    )
    assert entries["stream0/NetVLAD/vlad_W"] == ("pooling/assignment_kernel", (1, 1, 256, 4))
    assert entries["stream0/classifier/logits/weights"] == ("classifier/kernel", (1024, 5))
    # 3 stem convs + 7 convs in 3a, each 2 conv + 4 BN variables; 3 NetVLAD; 2 classifier.
    assert len(entries) == 10 * 6 + 3 + 2
    assert all(not n.startswith("stream0/") for n, _, _ in bn_inception.release_weight_map(model, stream=None))


def test_load_release_weights_round_trip_with_and_without_stream_prefix():
    model = build_actionvlad(
        5, backbone="bn_inception", conv_endpoint="inception_3a", num_clusters=4, image_size=64, frames_per_video=2
    )
    values = _release_values(model)
    values["stream0/global_step"] = np.array(7)  # optimizer state is reported as unused
    report = bn_inception.load_release_bn_inception(model, values)
    assert report["kept"] == [] and report["unused"] == ["global_step"]
    for name, variable, shape in bn_inception.release_weight_map(model):
        np.testing.assert_array_equal(np.array(variable).reshape(shape), values[name], err_msg=name)
    unprefixed = {name[len("stream0/") :]: v * 2 for name, v in values.items()}
    bn_inception.load_release_bn_inception(model, unprefixed)
    np.testing.assert_array_equal(np.array(model.get_layer("classifier").bias), unprefixed["classifier/logits/biases"])


def test_load_backbone_only_keeps_head_and_rejects_missing_or_partial():
    model = build_actionvlad(
        5, backbone="bn_inception", conv_endpoint="conv2/3x3", num_clusters=4, image_size=64, frames_per_video=2
    )
    values = _release_values(model)
    head = {n: values.pop(n) for n in list(values) if "/InceptionV2_TSN/" not in n}
    centers = np.array(model.get_layer("pooling").centers)
    report = bn_inception.load_release_bn_inception(model, values)
    assert sorted(report["kept"]) == sorted(n[len("stream0/") :] for n in head)
    np.testing.assert_array_equal(np.array(model.get_layer("pooling").centers), centers)
    with pytest.raises(ValueError, match="part of the head"):
        bn_inception.load_release_bn_inception(
            model, {**values, "stream0/NetVLAD/centers": head["stream0/NetVLAD/centers"]}
        )
    del values["stream0/InceptionV2_TSN/conv2/3x3/BatchNorm/beta"]
    with pytest.raises(ValueError, match="conv2/3x3/BatchNorm/beta"):
        bn_inception.load_release_bn_inception(model, values)
    wrong = _release_values(model)
    wrong["stream0/classifier/logits/biases"] = np.zeros(6, "float32")
    with pytest.raises(ValueError, match=r"classifier/logits/biases: the source has shape \(6,\)"):
        bn_inception.load_release_bn_inception(model, wrong)


def test_flow_model_takes_the_converted_rgb_first_conv():
    flow = bn_inception.build_bn_inception(modality="flow", conv_endpoint="conv1/7x7_s2")
    assert flow.get_layer("conv1_7x7_s2").kernel.shape == (7, 7, 20, 64)
    values = _release_values(flow, stream=None, rgb_first_conv=True)
    rgb_kernel = values["InceptionV2_TSN/conv1/7x7_s2/Conv/weights"]
    assert rgb_kernel.shape == (7, 7, 3, 64)
    bn_inception.load_release_bn_inception(flow, values)
    np.testing.assert_array_equal(np.array(flow.get_layer("conv1_7x7_s2").kernel), flow_kernel_from_rgb(rgb_kernel))


def test_tsn_npy_names_map_to_release_names(tmp_path):
    tsn = {
        "conv1_7x7_s2": {"weights": np.ones((7, 7, 3, 64)), "biases": np.zeros(64)},
        "conv1_7x7_s2_bn": {"scale": np.ones(64), "shift": np.zeros(64), "mean": np.zeros(64), "variance": np.ones(64)},
        "inception_3a_double_3x3_1_bn": {"variance": np.ones(96)},
        "fc-action": {"weights": np.ones((1024, 157))},
    }
    names = sorted(bn_inception.tsn_npy_to_release(tsn))
    assert names == sorted(
        [
            "InceptionV2_TSN/conv1/7x7_s2/Conv/weights",
            "InceptionV2_TSN/conv1/7x7_s2/Conv/biases",
            "InceptionV2_TSN/conv1/7x7_s2/BatchNorm/gamma",
            "InceptionV2_TSN/conv1/7x7_s2/BatchNorm/beta",
            "InceptionV2_TSN/conv1/7x7_s2/BatchNorm/moving_mean",
            "InceptionV2_TSN/conv1/7x7_s2/BatchNorm/moving_variance",
            "InceptionV2_TSN/inception_3a/double_3x3_1/BatchNorm/moving_variance",
            "fc-action/weights",  # not a backbone layer: kept, so a load reports it as unused
        ]
    )
    path = tmp_path / "tsn.npy"
    np.save(path, {**tsn, "inception_3a_double_3x3_1_bn": {}}, allow_pickle=True)
    with pytest.warns(UserWarning, match="unpickling"):
        loaded = bn_inception.build_bn_inception(conv_endpoint="conv1/7x7_s2", weights=str(path))
    np.testing.assert_array_equal(np.array(loaded.get_layer("conv1_7x7_s2").kernel), 1.0)
    with pytest.warns(UserWarning, match="unpickling"):
        report = bn_inception.load_release_bn_inception(loaded, str(path))
    assert report["unused"] == ["fc-action/weights"]


def _torch_state(model, seed=0):
    """The state dict a PyTorch port of TSN's BN-Inception would hold for `model` (OIHW kernels)."""
    rng = np.random.default_rng(seed)
    state = {"last_linear.weight": rng.normal(size=(1000, 1024)), "conv1_7x7_s2_bn.num_batches_tracked": np.array(0)}
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            state[f"{layer.name}.weight"] = rng.normal(size=tuple(layer.kernel.shape)).transpose(3, 2, 0, 1)
            state[f"{layer.name}.bias"] = rng.normal(size=tuple(layer.bias.shape))
        elif isinstance(layer, bn_inception.FrozenBatchNormalization):
            for leaf in ("weight", "bias", "running_mean"):
                state[f"{layer.name}.{leaf}"] = rng.normal(size=tuple(layer.gamma.shape))
            state[f"{layer.name}.running_var"] = rng.uniform(0.5, 2, size=tuple(layer.gamma.shape))
    return {
        k: np.asarray(v, "float32" if k != "conv1_7x7_s2_bn.num_batches_tracked" else "int64") for k, v in state.items()
    }


def test_pytorch_port_state_dict_and_imagenet_keyword(tmp_path, monkeypatch):
    backbone = bn_inception.build_bn_inception(conv_endpoint="inception_3a")
    state = _torch_state(backbone)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="bn_inception_imagenet.npz"):
        bn_inception.build_bn_inception(weights="imagenet")
    (tmp_path / ".keras" / "models").mkdir(parents=True)
    np.savez(tmp_path / ".keras" / "models" / "bn_inception_imagenet.npz", **state)
    loaded = bn_inception.build_bn_inception(conv_endpoint="inception_3a", weights="imagenet")
    np.testing.assert_array_equal(
        np.array(loaded.get_layer("inception_3a_double_3x3_1").kernel),
        state["inception_3a_double_3x3_1.weight"].transpose(2, 3, 1, 0),
    )
    np.testing.assert_array_equal(
        np.array(loaded.get_layer("conv2_3x3_bn").moving_variance), state["conv2_3x3_bn.running_var"]
    )
    report = bn_inception.load_release_bn_inception(loaded, bn_inception.torch_state_to_release(state))
    assert sorted(report["unused"]) == ["conv1_7x7_s2_bn.num_batches_tracked", "last_linear.weight"]


def _write_tf1_checkpoint(prefix, values):
    """A TF1 Saver checkpoint whose variables carry the release names."""
    with tf.Graph().as_default():
        variables = [tf.compat.v1.get_variable(name, initializer=value) for name, value in values.items()]
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.variables_initializer(variables))
            return tf.compat.v1.train.Saver(variables).save(session, prefix)


def test_weights_argument_reads_npz_checkpoint_dict_and_keras_files(tmp_path):
    source = bn_inception.build_bn_inception(conv_endpoint="conv2/3x3_reduce")
    values = _release_values(source, stream=None, seed=3)
    np.savez(tmp_path / "release.npz", **values)
    from_npz = bn_inception.build_bn_inception(conv_endpoint="conv2/3x3_reduce", weights=str(tmp_path / "release.npz"))
    prefix = _write_tf1_checkpoint(str(tmp_path / "model.ckpt"), {f"stream0/{n}": v for n, v in values.items()})
    from_checkpoint = bn_inception.build_bn_inception(conv_endpoint="conv2/3x3_reduce", weights=prefix)
    from_dict = bn_inception.build_bn_inception(conv_endpoint="conv2/3x3_reduce", weights=values)
    from_npz.save_weights(str(tmp_path / "model.weights.h5"))
    from_keras = bn_inception.build_bn_inception(
        conv_endpoint="conv2/3x3_reduce", weights=str(tmp_path / "model.weights.h5")
    )
    x = np.random.default_rng(0).normal(size=(1, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(
        np.array(from_npz.get_layer("conv2_3x3_reduce").kernel), values["InceptionV2_TSN/conv2/3x3_reduce/Conv/weights"]
    )
    for model in (from_checkpoint, from_dict, from_keras):
        np.testing.assert_allclose(model(x), from_npz(x), rtol=1e-6)
    with pytest.raises(FileNotFoundError, match="absent.npz"):
        bn_inception.build_bn_inception(weights=str(tmp_path / "absent.npz"))


def test_training_stages_on_bn_inception_actionvlad():
    model = build_actionvlad(
        5,
        backbone="bn_inception",
        conv_endpoint="inception_3b",
        num_clusters=4,
        image_size=64,
        frames_per_video=2,
        weight_decay=4e-5,
    )
    set_training_stage(model, 1)
    assert sorted(w.path for w in model.trainable_weights) == ["classifier/bias", "classifier/kernel"]
    set_training_stage(model, 2)  # the endpoint's block, NetVLAD, classifier (no BN)
    layers = sorted({w.path.split("/")[0] for w in model.trainable_weights})
    assert layers == sorted(
        ["classifier", "pooling"]
        + [
            f"inception_3b_{b}"
            for b in ("1x1", "3x3_reduce", "3x3", "double_3x3_reduce", "double_3x3_1", "double_3x3_2", "pool_proj")
        ]
    )
    model(np.zeros((1, 2, 64, 64, 3), "float32"))
    assert len(model.losses) == 7 + 1  # L2 on the 7 trainable conv kernels and the classifier
    set_training_stage(model, 0)
    assert not any("_bn/" in w.path for w in model.trainable_weights)
    assert len(model.trainable_weights) == 2 * (3 + 7 + 7) + 3 + 2


def test_saved_model_file_loads_in_a_fresh_process_after_import(tmp_path):
    """`import actionvlad_tf` registers FrozenBatchNormalization, so a saved BN-Inception ActionVLAD
    loads without custom_objects and keeps its frozen BN."""
    model = build_actionvlad(
        5, backbone="bn_inception", conv_endpoint="conv2/3x3", num_clusters=4, image_size=32, frames_per_video=2
    )
    x = np.random.default_rng(0).normal(size=(1, 2, 32, 32, 3)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", keras.ops.convert_to_numpy(model(x)))
    model.save(tmp_path / "model.keras")
    script = (
        "import sys, numpy as np, actionvlad_tf, keras\n"
        "d = sys.argv[1]\n"
        "m = keras.saving.load_model(d + '/model.keras')\n"
        "np.testing.assert_allclose(m(np.load(d + '/x.npy')), np.load(d + '/y.npy'), rtol=1e-5, atol=1e-6)\n"
        "m.trainable = True\n"
        "assert not any('_bn/' in w.path for w in m.trainable_weights)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize("stage,features", [(1, (4 * 320,)), (2, (2, 8, 8, 256))])
def test_trainer_split_cuts_bn_inception_at_the_block(stage, features):
    """The trainer's frozen/trainable split works on the branched backbone: stage 2 cuts at the
    endpoint block's input (inception_3a's output here), so the frozen prefix can be cached."""
    from actionvlad_tf.training.split import split_at_frozen_boundary

    model = build_actionvlad(
        5, backbone="bn_inception", conv_endpoint="inception_3b", num_clusters=4, image_size=64, frames_per_video=2
    )
    set_training_stage(model, stage)
    split = split_at_frozen_boundary(model)
    x = np.random.default_rng(0).normal(size=(2, 2, 64, 64, 3)).astype("float32") * 50
    cached = split.prefix(x)
    assert tuple(cached.shape[1:]) == features
    np.testing.assert_allclose(split.suffix(cached), model(x), rtol=1e-5, atol=1e-6)
    assert len(split.suffix.trainable_variables) == len(model.trainable_variables)


def test_entry_points_load_bn_inception_backbone_weights(tmp_path, monkeypatch):
    """`--backbone_weights` of train.py / cluster.py (models.builder, through the backbone registry)
    reaches the BN-Inception loader: "imagenet" and release-named files alike."""
    from actionvlad_tf.models import builder
    from actionvlad_tf.specs import ModelSpec

    model = build_actionvlad(
        5, backbone="bn_inception", conv_endpoint="conv2/3x3", num_clusters=4, image_size=32, frames_per_video=2
    )
    values = _release_values(model, stream=None, seed=5)
    backbone_values = {n: v for n, v in values.items() if n.startswith("InceptionV2_TSN/")}
    np.savez(tmp_path / "tsn.npz", **backbone_values)
    builder.load_backbone_weights(model, str(tmp_path / "tsn.npz"), "rgb", "bn_inception")
    kernel = model.get_layer("rgb_bn_inception").get_layer("conv2_3x3").kernel
    np.testing.assert_array_equal(np.array(kernel), backbone_values["InceptionV2_TSN/conv2/3x3/Conv/weights"])
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="bn_inception_imagenet.npz"):
        builder.descriptor_model(ModelSpec(5, backbone="bn_inception", conv_endpoint="conv2/3x3"), weights="imagenet")


def test_the_shared_backbone_harness(tmp_path):
    """tests/harness.py `run_backbone_test` on 32² frames: stem and block maps, stage 2 from the
    endpoint's block (BatchNorm never trains), the `.keras` round trip, 20 flow channels, and a
    clear error for the frame baseline (BN-Inception has no frame classifier)."""
    run_backbone_test(
        "bn_inception",
        {"conv2/3x3": (8, 8, 192), "inception_3a": (4, 4, 256)},
        {"conv2/3x3": "conv2_3x3_pad", "inception_3a": "inception_3a_double_3x3_reduce"},
        tmp_path,
    )
