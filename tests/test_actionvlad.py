"""The video model: shapes, bags over frames and crops, fusions, the frame baseline, distribution."""

import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from harness import run_model_saving_test

from actionvlad_tf.layers import NetVLADPooling
from actionvlad_tf.models import (
    backbones,
    build_actionvlad,
    build_frame_classifier,
    build_two_stream,
    pooling_layers,
    vgg16,
)

TINY = dict(frames_per_video=3, image_size=32, num_clusters=4)


def _video(channels=3, batch=2, frames=3, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, frames, 32, 32, channels)).astype(np.float32) * 50


@pytest.mark.parametrize("pooling", ["netvlad", "avg", "max"])
@pytest.mark.parametrize("modality,channels", [("rgb", 3), ("flow", 20)])
def test_logits_shape(pooling, modality, channels):
    model = build_actionvlad(5, modality=modality, pooling=pooling, **TINY)
    assert model.output_shape == (None, 5)
    assert keras.ops.convert_to_numpy(model(_video(channels))).shape == (2, 5)


def test_equals_hand_assembled_pipeline():
    """Logits = classifier(VLAD over every conv5 descriptor of every frame of the video)."""
    centers = np.random.default_rng(1).normal(size=(4, 512)).astype(np.float32) * 0.05
    model = build_actionvlad(5, initial_centers=centers, **TINY)
    x = _video()
    backbone = backbones(model)[0]
    maps = keras.ops.convert_to_numpy(backbone(x.reshape(-1, 32, 32, 3))).reshape(2, 3, 2, 2, 512)
    vlad = keras.ops.convert_to_numpy(pooling_layers(model)[0](maps))
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in model.get_layer("classifier").weights)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)), vlad @ kernel + bias, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(pooling_layers(model)[0].centers), centers)


def test_multi_crop_frames_form_one_bag():
    """[B, crops·T, ...]: permuting frames/crops of a video leaves its logits unchanged (one bag)."""
    model = build_actionvlad(5, num_crops=5, **TINY)
    assert model.input_shape == (None, 15, 32, 32, 3)
    x = np.random.default_rng(2).normal(size=(2, 15, 32, 32, 3)).astype(np.float32) * 50
    permuted = x[:, np.random.default_rng(3).permutation(15)]
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model(x)), keras.ops.convert_to_numpy(model(permuted)), rtol=1e-4, atol=1e-5
    )
    dynamic = build_actionvlad(5, frames_per_video=None, image_size=32, num_clusters=4)
    assert dynamic.input_shape == (None, None, 32, 32, 3)


def test_pooled_dropout_default_off_and_paper_on():
    assert "pooled_dropout" not in [l.name for l in build_actionvlad(5, **TINY).layers]
    model = build_actionvlad(5, pooled_dropout=0.5, **TINY)
    assert model.get_layer("pooled_dropout").rate == 0.5


def test_classifier_init():
    model = build_actionvlad(5, **TINY)
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in model.get_layer("classifier").weights)
    assert np.abs(kernel).max() <= 0.02 + 1e-7 and 0.007 < kernel.std() < 0.011
    assert not bias.any()


@pytest.mark.parametrize("fusion", ["late", "concat", "early", "concat_vlad"])
def test_two_stream_fusions(fusion):
    model = build_two_stream(5, fusion=fusion, **TINY)
    inputs = {"rgb": _video(3), "flow": _video(20, seed=1)}
    assert keras.ops.convert_to_numpy(model(inputs)).shape == (2, 5)
    vlads = [l for l in pooling_layers(model) if isinstance(l, NetVLADPooling)]
    depth = {"late": [512, 512], "concat": [1024], "early": [512], "concat_vlad": [512, 512]}[fusion]
    assert sorted(int(l.centers.shape[1]) for l in vlads) == depth
    assert len(backbones(model)) == 2


def test_late_fusion_weights_raw_logits_one_to_two():
    model = build_two_stream(5, fusion="late", **TINY)
    inputs = {"rgb": _video(3), "flow": _video(20, seed=1)}
    rgb = keras.ops.convert_to_numpy(model.get_layer("rgb_actionvlad")(inputs["rgb"]))
    flow = keras.ops.convert_to_numpy(model.get_layer("flow_actionvlad")(inputs["flow"]))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model(inputs)), 0.333 * rgb + 0.667 * flow, rtol=1e-4, atol=1e-6
    )


def test_early_fusion_is_one_bag_of_both_streams():
    model = build_two_stream(5, fusion="early", **TINY)
    assert model.get_layer("early_features").output.shape == (None, 3, 4, 2, 512)


def test_frame_classifier_averages_frame_logits():
    model = build_frame_classifier(5, frames_per_video=3, image_size=32)
    x = _video()
    frame_logits = keras.ops.convert_to_numpy(backbones(model)[0](x.reshape(-1, 32, 32, 3))).reshape(2, 3, 5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)), frame_logits.mean(1), rtol=1e-5, atol=1e-5)
    assert [l.name for l in backbones(model)[0].layers if l.trainable and l.weights] == ["fc1", "fc2", "predictions"]


def test_keras_file_round_trip(tmp_path):
    run_model_saving_test(
        build_two_stream(5, fusion="late", **TINY), {"rgb": _video(3), "flow": _video(20, seed=1)}, tmp_path
    )


def test_real_shape_parameter_count():
    """The paper's shape: 224², T = 25, K = 64, HMDB51's 51 classes."""
    model = build_actionvlad(51)
    assert model.input_shape == (None, 25, 224, 224, 3)
    assert model.output_shape == (None, 51)
    vgg_conv = 14_714_688
    vlad = 512 * 64 + 64 + 64 * 512
    classifier = 64 * 512 * 51 + 51
    assert model.count_params() == vgg_conv + vlad + classifier == 16_451_507
    assert build_actionvlad(51, modality="flow").count_params() == 16_451_507 + 3 * 3 * 17 * 64
    assert vgg16.build_vgg16().output_shape == (None, None, None, 512)


def test_mirrored_strategy_two_logical_cpus_trains_one_step():
    """Devices are fixed when TF starts, so this runs in a fresh interpreter."""
    script = textwrap.dedent(
        """
        import numpy as np, tensorflow as tf, keras
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from actionvlad_tf.models import build_actionvlad, set_training_stage
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        assert strategy.num_replicas_in_sync == 2
        with strategy.scope():
            model = build_actionvlad(3, frames_per_video=2, image_size=32, num_clusters=4)
            set_training_stage(model, 2)
            model.compile(optimizer=keras.optimizers.Adam(1e-3, epsilon=1e-4, clipnorm=5.0),
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        before = [w.numpy().copy() for w in model.trainable_weights]
        x = np.random.default_rng(0).normal(size=(4, 2, 32, 32, 3)).astype("float32") * 50
        history = model.fit(x, np.array([0, 1, 2, 0]), batch_size=4, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])
        changed = [not np.allclose(b, w.numpy()) for b, w in zip(before, model.trainable_weights)]
        assert all(changed), changed
        print("OK", strategy.num_replicas_in_sync)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK 2" in result.stdout
