"""Average and max spatio-temporal pooling baselines (paper Sec. 4.4, release §1.4 `avg-conv` / `max-conv`)."""

import keras
from keras import ops

from actionvlad_tf.layers.netvlad import flatten_pooled_axes

POOLING_MODES = ("avg", "max")


@keras.saving.register_keras_serializable(package="actionvlad_tf")
class SpatioTemporalPooling(keras.layers.Layer):
    """Mean or max over every axis between batch and channels, with no normalisation (release §1.4).

    Args:
        mode: "avg" or "max".

    Call arguments:
        inputs: [B, ..., D], e.g. [B, T, H, W, D].
        mask: optional boolean [B, ...] over the pooled axes (or a prefix of them); masked positions
            are ignored exactly.

    Example:

    >>> import numpy as np
    >>> from actionvlad_tf.layers import SpatioTemporalPooling
    >>> SpatioTemporalPooling("max")(np.ones((2, 3, 4, 4, 8), "float32")).shape
    (2, 8)
    """

    def __init__(self, mode="avg", **kwargs):
        super().__init__(**kwargs)
        if mode not in POOLING_MODES:
            raise ValueError(f"mode must be one of {POOLING_MODES}, got {mode!r}")
        self.mode = mode
        self.supports_masking = True

    def call(self, inputs, mask=None):
        x, weights = flatten_pooled_axes(inputs, mask)
        if self.mode == "avg":
            if weights is None:
                return ops.mean(x, axis=1)
            weights = ops.expand_dims(weights, -1)
            return ops.sum(x * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1.0)
        if weights is not None:
            lowest = ops.cast(ops.convert_to_tensor(-3.0e38 if x.dtype == "float32" else -6.0e4), x.dtype)
            x = ops.where(ops.expand_dims(weights, -1) > 0, x, lowest)
        return ops.max(x, axis=1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config["mode"] = self.mode
        return config
