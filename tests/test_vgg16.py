"""VGG-16 backbone: Keras names and shapes, pre-ReLU taps, freezing, flow conversion, weight files."""

import h5py
import keras
import numpy as np
import pytest
from harness import run_backbone_test

from actionvlad_tf.models import vgg16
from actionvlad_tf.models.actionvlad import build_actionvlad, set_training_stage


def test_names_and_shapes_match_keras_applications():
    ours = vgg16.build_vgg16(conv_endpoint="fc7", input_shape=(224, 224))
    reference = keras.applications.VGG16(weights=None, include_top=True)
    reference_shapes = {l.name: [tuple(w.shape) for w in l.weights] for l in reference.layers if l.weights}
    ours_shapes = {l.name: [tuple(w.shape) for w in l.weights] for l in ours.layers if l.weights}
    for name, shapes in ours_shapes.items():
        assert reference_shapes[name] == shapes, name
    assert set(reference_shapes) - set(ours_shapes) == {"predictions"}
    assert ours.output_shape == (None, 1, 1, 4096)


@pytest.mark.parametrize("endpoint,shape", [("conv5", (None, 2, 2, 512)), ("conv4", (None, 4, 4, 512))])
def test_pre_relu_taps_have_negative_values(endpoint, shape):
    model = vgg16.build_vgg16(conv_endpoint=endpoint)
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype(np.float32) * 50
    out = keras.ops.convert_to_numpy(model(x))
    assert (None,) + out.shape[1:] == shape
    assert (out < 0).any()
    assert model.layers[-1].name == vgg16.CONV_ENDPOINTS[endpoint]
    assert model.layers[-1].activation is keras.activations.linear


def test_frozen_before_conv5_1_by_default_and_configurable():
    model = vgg16.build_vgg16()
    trainable = [l.name for l in model.layers if l.trainable and l.weights]
    assert trainable == ["block5_conv1", "block5_conv2", "block5_conv3"]
    model = vgg16.build_vgg16(trainable_from="block4_conv2")
    assert [l.name for l in model.layers if l.trainable and l.weights][0] == "block4_conv2"


def test_training_stage_trainable_sets():
    model = build_actionvlad(4, frames_per_video=2, image_size=32, num_clusters=3)
    set_training_stage(model, 1)
    assert sorted(w.path for w in model.trainable_weights) == ["classifier/bias", "classifier/kernel"]
    set_training_stage(model, 2)
    names = sorted(w.path for w in model.trainable_weights)
    assert names == sorted(
        [f"block5_conv{i}/{p}" for i in (1, 2, 3) for p in ("kernel", "bias")]
        + [
            "pooling/assignment_kernel",
            "pooling/assignment_bias",
            "pooling/centers",
            "classifier/kernel",
            "classifier/bias",
        ]
    )
    set_training_stage(model, 0)
    assert len(model.trainable_weights) == 26 + 3 + 2
    for endpoint, first in (("conv4", "block4_conv1"),):
        model = build_actionvlad(4, frames_per_video=2, image_size=32, num_clusters=3, conv_endpoint=endpoint)
        set_training_stage(model, 2)
        assert model.trainable_weights[0].path == f"{first}/kernel"


def test_weight_decay_only_on_trainable_conv_and_classifier_kernels():
    model = build_actionvlad(4, frames_per_video=2, image_size=32, num_clusters=3, weight_decay=4e-5)
    set_training_stage(model, 2)
    model(np.zeros((1, 2, 32, 32, 3), np.float32))
    kernels = [w for w in model.trainable_weights if w.path.endswith("kernel") and "pooling" not in w.path]
    expected = sum(2e-5 * float(np.sum(keras.ops.convert_to_numpy(w) ** 2)) for w in kernels)
    assert len(model.losses) == 4  # conv5_1..3 and the classifier; none on the VLAD weights
    np.testing.assert_allclose(float(sum(keras.ops.convert_to_numpy(l) for l in model.losses)), expected, rtol=1e-4)


def test_flow_kernel_conversion_exact():
    rgb = np.random.default_rng(1).normal(size=(3, 3, 3, 64)).astype(np.float32)
    flow = vgg16.flow_kernel_from_rgb(rgb)
    assert flow.shape == (3, 3, 20, 64)
    for c in range(20):
        np.testing.assert_array_equal(flow[:, :, c], rgb.mean(axis=2))


def _write_legacy_h5(path, model):
    """A weights file in the layout keras.applications ships (Keras 2 h5: attrs layer_names,
    weight_names per layer)."""
    with h5py.File(path, "w") as f:
        layers = [l for l in model.layers]
        f.attrs["layer_names"] = [l.name.encode() for l in layers]
        for layer in layers:
            group = f.create_group(layer.name)
            names = [f"{layer.name}/{'kernel' if i == 0 else 'bias'}:0".encode() for i in range(len(layer.weights))]
            group.attrs["weight_names"] = names
            for name, w in zip(names, layer.weights):
                group.create_dataset(name.decode(), data=keras.ops.convert_to_numpy(w))


def test_loads_keras_applications_weight_files_rgb_and_flow(tmp_path):
    reference = keras.applications.VGG16(weights=None, include_top=False)
    path = tmp_path / "vgg16_notop.h5"
    _write_legacy_h5(path, reference)
    rgb = vgg16.build_vgg16(weights=str(path))
    for name in vgg16.conv_layer_names():
        for ours, theirs in zip(rgb.get_layer(name).weights, reference.get_layer(name).weights):
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(ours), keras.ops.convert_to_numpy(theirs))
    flow = vgg16.build_vgg16(modality="flow", weights=str(path))
    expected = vgg16.flow_kernel_from_rgb(keras.ops.convert_to_numpy(reference.get_layer("block1_conv1").weights[0]))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(flow.get_layer("block1_conv1").weights[0]), expected)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(flow.get_layer("block1_conv1").weights[1]),
        keras.ops.convert_to_numpy(reference.get_layer("block1_conv1").weights[1]),
    )
    # Keras 3 `.weights.h5` written by save_weights loads too.
    path3 = tmp_path / "ours.weights.h5"
    rgb.save_weights(path3)
    again = vgg16.build_vgg16(weights=str(path3))
    x = np.random.default_rng(2).normal(size=(1, 32, 32, 3)).astype(np.float32)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(again(x)), keras.ops.convert_to_numpy(rgb(x)))


def test_missing_weights_give_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="nowhere.h5"):
        vgg16.build_vgg16(weights=str(tmp_path / "nowhere.h5"))

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(RuntimeError, match="vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"):
        vgg16.build_vgg16(weights="imagenet")


def test_width_multiplier_scales_every_layer_and_survives_saving(tmp_path):
    full = vgg16.build_vgg16(include_top=True, num_classes=5, input_shape=(32, 32))
    quarter = vgg16.build_vgg16(include_top=True, num_classes=5, input_shape=(32, 32), width=0.25)
    for layer in quarter.layers:
        if layer.weights and layer.name != "predictions":
            assert layer.weights[0].shape[-1] == full.get_layer(layer.name).weights[0].shape[-1] // 4, layer.name
    assert quarter.get_layer("fc1").weights[0].shape == (1 * 1 * 128, 1024)
    # Every conv kernel and fc kernel is 1/16 of the full one, except block1_conv1's input side
    # (3 channels at any width) and the 5-way head (1/4).
    expected = sum(
        (np.prod(l.weights[0].shape) // (4 if l.name in ("block1_conv1", "predictions") else 16))
        + l.weights[1].shape[0] // (1 if l.name == "predictions" else 4)
        for l in full.layers
        if l.weights
    )
    assert quarter.count_params() == expected
    conv5 = vgg16.build_vgg16(width=0.25)
    assert conv5(np.zeros((1, 64, 64, 3), np.float32)).shape == (1, 4, 4, 128)
    assert vgg16.build_vgg16(width=0.001).get_layer("block1_conv1").weights[0].shape[-1] == 1
    with pytest.raises(ValueError, match="width"):
        vgg16.build_vgg16(width=0)
    # A saved video model rebuilds at its width (eval, export and predict load it).
    video = build_actionvlad(3, frames_per_video=2, image_size=32, num_clusters=4, backbone_width=0.25)
    video.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    assert reloaded.count_params() == video.count_params()
    assert reloaded.get_layer("rgb_vgg16").output.shape[-1] == 128


def test_the_shared_backbone_harness(tmp_path):
    """tests/harness.py `run_backbone_test` at width ¼ on 32² frames: conv4 / conv5 / fc7 maps,
    stage 2 from conv4_1 / conv5_1 / fc7, the `.keras` round trip, 20 flow channels, fc8 logits."""
    run_backbone_test(
        "vgg16",
        {"conv4": (4, 4, 128), "conv5": (2, 2, 128), "fc7": (1, 1, 1024)},
        {"conv5": "block5_conv1", "conv4": "block4_conv1", "fc7": "fc2"},
        tmp_path,
        width=0.25,
        frame_classifier_shape=(3,),
    )
