"""Average / max spatio-temporal pooling baselines (release §1.4 avg-conv, max-conv)."""
import keras
import numpy as np
import pytest

from actionvlad_tf.layers import SpatioTemporalPooling


@pytest.mark.parametrize("mode,reduce", [("avg", np.mean), ("max", np.max)])
def test_pools_every_axis_between_batch_and_channels(mode, reduce):
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 5, 6)).astype(np.float32)
    got = keras.ops.convert_to_numpy(SpatioTemporalPooling(mode)(x))
    np.testing.assert_allclose(got, reduce(x, axis=(1, 2, 3)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["avg", "max"])
def test_mask_equals_unpadded(mode):
    rng = np.random.default_rng(1)
    video = rng.normal(size=(1, 2, 3, 3, 4)).astype(np.float32)
    padded = np.concatenate([video, 100 + rng.normal(size=(1, 3, 3, 3, 4)).astype(np.float32)], axis=1)
    layer = SpatioTemporalPooling(mode)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(padded, mask=np.array([[1, 1, 0, 0, 0]], bool))),
        keras.ops.convert_to_numpy(layer(video)), rtol=1e-6,
    )


def test_config_and_validation():
    layer = SpatioTemporalPooling("max", name="p")
    assert SpatioTemporalPooling.from_config(layer.get_config()).mode == "max"
    assert layer.compute_output_shape((None, 25, 14, 14, 512)) == (None, 512)
    with pytest.raises(ValueError, match="mode"):
        SpatioTemporalPooling("median")
