"""Reading a V2 checkpoint from its data shard alone (release §8 row 24): a tf.compat.v1 checkpoint
under the release's names, trained one step so the optimizer slots exist, with its .index deleted."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from actionvlad_tf.convert import charades_shard
from actionvlad_tf.models import bn_inception
from actionvlad_tf.models.actionvlad import build_actionvlad

BLOCK = "inception_3a"
TRAINED = ("stream0/classifier", "stream0/NetVLAD", f"stream0/InceptionV2_TSN/{BLOCK}/")
TF1_OPTIMIZERS = {
    "adam": lambda: tf.compat.v1.train.AdamOptimizer(0.01),
    "momentum": lambda: tf.compat.v1.train.MomentumOptimizer(0.01, 0.9),
    "rmsprop": lambda: tf.compat.v1.train.RMSPropOptimizer(0.01, momentum=0.9),
}


def _small_model():
    return build_actionvlad(
        5, backbone="bn_inception", conv_endpoint=BLOCK, num_clusters=4, image_size=64, frames_per_video=2
    )


def _write_release_checkpoint(directory, variables, optimizer):
    """As the release's trainer would: model variables under release names, global_step, one
    optimizer step on the trained scopes, a TF1 V2 Saver. Returns (data shard, {name: value})."""
    rng = np.random.default_rng(0)
    with tf.Graph().as_default():
        model_vars = {}
        for name, shape, _ in variables:
            value = rng.normal(size=shape).astype("float32")
            if name.endswith("moving_variance"):
                value = np.abs(value) + 0.1
            model_vars[name] = tf.compat.v1.get_variable(name, initializer=value)
        step = tf.compat.v1.train.get_or_create_global_step()
        trained = [v for n, v in model_vars.items() if n.startswith(TRAINED) and "/BatchNorm/" not in n]
        loss = tf.add_n([tf.reduce_sum(tf.square(v)) for v in trained])
        train_op = TF1_OPTIMIZERS[optimizer]().minimize(loss, var_list=trained, global_step=step)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            session.run(train_op)
            prefix = tf.compat.v1.train.Saver().save(session, os.path.join(directory, "model.ckpt"), global_step=step)
    reader = tf.train.load_checkpoint(prefix)
    values = {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}
    os.remove(prefix + ".index")
    os.remove(prefix + ".meta")
    return prefix + ".data-00000-of-00001", values


@pytest.mark.parametrize("optimizer", sorted(TF1_OPTIMIZERS))
def test_shard_without_index_is_read_exactly(tmp_path, optimizer):
    model = _small_model()
    variables = charades_shard.model_variables(model)
    shard, saved = _write_release_checkpoint(str(tmp_path), variables, optimizer)
    assert not os.path.exists(shard[: -len(".data-00000-of-00001")] + ".index")

    layouts = charades_shard.candidate_layouts(variables, block=BLOCK)
    assert charades_shard.match_layouts(shard, layouts) == [f"{optimizer}/classifier+netvlad+block"]
    tensors = charades_shard.checkpoint_variables(variables, TRAINED, optimizer)
    assert [name for name, _, _ in tensors] == sorted(saved)  # names, slots and order as TF writes them
    values = charades_shard.read_data_shard(shard, tensors)
    assert set(values) == set(saved)
    for name, value in saved.items():
        assert values[name].dtype == value.dtype, name
        np.testing.assert_array_equal(values[name], value, err_msg=name)
    assert values["global_step"] == 1

    report = bn_inception.load_release_bn_inception(model, values)
    assert report["kept"] == [] and "global_step" in report["unused"]
    np.testing.assert_array_equal(
        np.array(model.get_layer("pooling").assignment_kernel), values["stream0/NetVLAD/vlad_W"][0, 0]
    )


def test_convert_writes_loadable_weights(tmp_path):
    model = _small_model()
    shard, saved = _write_release_checkpoint(str(tmp_path), charades_shard.model_variables(model), "adam")
    output = str(tmp_path / "out" / "charades.weights.h5")
    os.makedirs(os.path.dirname(output))
    assert charades_shard.convert_charades_shard(shard, output, model, block=BLOCK) == "adam/classifier+netvlad+block"
    assert os.listdir(os.path.dirname(output)) == ["charades.weights.h5"]  # no temporary left
    fresh = _small_model()
    fresh.load_weights(output)
    np.testing.assert_array_equal(
        np.array(fresh.get_layer("classifier").kernel), saved["stream0/classifier/logits/weights"]
    )
    np.testing.assert_array_equal(
        np.array(fresh.get_layer("rgb_bn_inception").get_layer(f"{BLOCK}_1x1_bn").moving_variance),
        saved[f"stream0/InceptionV2_TSN/{BLOCK}/1x1/BatchNorm/moving_variance"],
    )


def test_wrong_layouts_are_rejected(tmp_path):
    model = _small_model()
    variables = charades_shard.model_variables(model)
    shard, _ = _write_release_checkpoint(str(tmp_path), variables, "adam")
    with pytest.raises(ValueError, match=r"bytes, the layout of \d+ tensors needs"):
        charades_shard.read_data_shard(shard, charades_shard.checkpoint_variables(variables, TRAINED, "momentum"))
    # Same size, wrong order: BN variances land on other values and some turn non-positive.
    right = charades_shard.checkpoint_variables(variables, TRAINED, "adam")
    reordered = sorted(right, key=lambda t: (np.prod(t[1]), t[0]))
    assert charades_shard.layout_size(reordered) == os.path.getsize(shard)
    with pytest.raises(ValueError, match="wrong layout"):
        charades_shard.read_data_shard(shard, reordered)
    with pytest.raises(ValueError, match="fits no layout"):
        charades_shard.convert_charades_shard(
            shard, str(tmp_path / "x.weights.h5"), _small_model(), block="inception_3b"
        )


def test_non_finite_values_name_the_tensor(tmp_path):
    path = tmp_path / "shard.data-00000-of-00001"
    np.array([1.0, np.nan, 2.0, 3.0], "<f4").tofile(path)
    with pytest.raises(ValueError, match=r"non-finite values in 1 tensors, e\.g\. \['b'\]"):
        charades_shard.read_data_shard(str(path), [("a", (1,), "float32"), ("b", (3,), "float32")])


def test_layout_of_the_charades_model():
    """The released model's own layout: BN-Inception to inception_5a, K = 64, 157 classes."""
    model = build_actionvlad(157, backbone="bn_inception", conv_endpoint="inception_5a", frames_per_video=None)
    variables = charades_shard.model_variables(model)
    assert charades_shard.layout_size(variables) == 4 * model.count_params() == 4 * 18_426_205
    layouts = charades_shard.candidate_layouts(variables)
    sizes = {label: charades_shard.layout_size(t) for label, t in layouts.items()}
    assert len(set(sizes.values())) == len(sizes)  # every recipe hypothesis has its own file size
    assert sizes["sgd"] == 4 * 18_426_205 + 8
    assert keras.ops.shape(model.output) == (None, 157)
