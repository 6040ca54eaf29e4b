"""Splitting a model at its frozen boundary: prefix then suffix equals the model; the suffix holds
exactly the trainable weights; training the suffix on features trains the model."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from actionvlad_tf.models import build_actionvlad, build_frame_classifier, build_two_stream, set_training_stage
from actionvlad_tf.training import TrainConfig, make_strategy, split_at_frozen_boundary, train


def _videos(num_videos=2, frames=3, size=32, channels=3):
    return np.random.default_rng(0).uniform(-100, 100, (num_videos, frames, size, size, channels)).astype(np.float32)


def _model(pooling="netvlad", **kwargs):
    keras.utils.set_random_seed(0)
    centers = np.random.default_rng(1).normal(size=(4, 512)).astype(np.float32) * 0.05
    return build_actionvlad(
        3,
        frames_per_video=3,
        image_size=32,
        num_clusters=4,
        netvlad_alpha=10.0,
        pooling=pooling,
        initial_centers=centers if pooling == "netvlad" else None,
        **kwargs,
    )


@pytest.mark.parametrize(
    "stage, boundary, feature_shape",
    [
        (1, "pooling", (2, 4 * 512)),  # the VLAD vector
        (2, "block5_conv1", (2, 3, 2, 2, 512)),  # pool4 maps of each frame (32 px input → 2×2)
    ],
)
def test_prefix_then_suffix_equals_model(stage, boundary, feature_shape):
    model = set_training_stage(_model(pooled_dropout=0.5), stage)
    split = split_at_frozen_boundary(model)
    assert split.boundary == boundary
    x = _videos()
    features = split.prefix(x)
    assert tuple(features.shape) == feature_shape
    np.testing.assert_allclose(split.suffix(features), model(x), rtol=1e-5, atol=1e-5)
    assert [v.path for v in split.suffix.trainable_variables] == [v.path for v in model.trainable_variables]
    assert not split.prefix.trainable_variables
    if stage == 1:  # dropout is random: it stays in the trained suffix, after the features
        assert any(isinstance(layer, keras.layers.Dropout) for layer in split.suffix.layers)


def test_avg_pooling_stage1_boundary_is_the_pooled_vector():
    model = set_training_stage(_model("avg"), 1)
    split = split_at_frozen_boundary(model)
    assert split.boundary == "pooling" and tuple(split.prefix.output.shape) == (None, 512)


def test_frame_baseline_splits_before_fc6():
    keras.utils.set_random_seed(0)
    model = build_frame_classifier(3, frames_per_video=2, image_size=32, fc_dropout=0.0)
    split = split_at_frozen_boundary(model)
    assert split.boundary == "fc1"
    x = _videos(frames=2)
    np.testing.assert_allclose(split.suffix(split.prefix(x)), model(x), rtol=1e-5, atol=1e-4)


def test_nothing_frozen_gives_no_prefix_and_two_streams_are_refused():
    model = set_training_stage(_model(), 0)
    split = split_at_frozen_boundary(model)
    assert split.prefix is None and split.suffix is model
    two = build_two_stream(3, frames_per_video=3, image_size=32, num_clusters=4, fusion="concat")
    with pytest.raises(ValueError, match="single-stream"):
        split_at_frozen_boundary(two)


def test_training_the_suffix_on_features_trains_the_model(tmp_path):
    strategy = make_strategy()
    with strategy.scope():
        model = set_training_stage(_model(), 2)
        split = split_at_frozen_boundary(model)
    x = _videos(4)
    features = split.prefix.predict(x, verbose=0)
    dataset = tf.data.Dataset.from_tensor_slices((features, np.array([0, 1, 2, 0]))).batch(2).repeat()
    before = {w.path: w.numpy().copy() for w in model.weights}
    config = TrainConfig(
        train_dir=str(tmp_path / "train"),
        max_number_of_steps=1,
        learning_rate=0.01,
        progress=False,
        final_model_path=str(tmp_path / "full.keras"),
    )
    train(split.suffix, dataset, config, strategy=strategy, export_model=model)
    changed = {w.path.split("/")[0] for w in model.weights if not np.array_equal(before[w.path], w.numpy())}
    assert changed == {"block5_conv1", "block5_conv2", "block5_conv3", "pooling", "classifier"}
    reloaded = keras.saving.load_model(tmp_path / "full.keras")
    np.testing.assert_allclose(reloaded(x[:2]), model(x[:2]), rtol=1e-5, atol=1e-5)
