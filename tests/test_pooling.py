"""Average / max spatio-temporal pooling baselines (release §1.4 avg-conv, max-conv)."""

import keras
import numpy as np
import pytest
from harness import run_layer_test

from actionvlad_tf.layers import SpatioTemporalPooling


@pytest.mark.parametrize("mode,reduce", [("avg", np.mean), ("max", np.max)])
def test_pools_every_axis_between_batch_and_channels(mode, reduce):
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 5, 6)).astype(np.float32)
    got = keras.ops.convert_to_numpy(SpatioTemporalPooling(mode)(x))
    np.testing.assert_allclose(got, reduce(x, axis=(1, 2, 3)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["avg", "max"])
def test_layer_harness(mode, tmp_path):
    """Config and `.keras` round trips, eager = symbolic, one fitted step, mixed precision, and a
    mask over padded frames (far from the data, so a leak shows) equal to the unpadded video."""
    rng = np.random.default_rng(1)
    video = rng.normal(size=(2, 2, 3, 3, 4)).astype(np.float32)
    padded = np.concatenate([video, 100 + rng.normal(size=(2, 3, 3, 3, 4)).astype(np.float32)], axis=1)
    mask = np.array([[1, 1, 0, 0, 0]] * 2, bool)
    run_layer_test(
        SpatioTemporalPooling,
        dict(mode=mode),
        video,
        (2, 4),
        tmp_path,
        mixed_precision_atol=0.05,
        padded_input=padded,
        mask=mask,
    )


def test_validation():
    assert SpatioTemporalPooling("max").compute_output_shape((None, 25, 14, 14, 512)) == (None, 512)
    with pytest.raises(ValueError, match="mode"):
        SpatioTemporalPooling("median")
