"""Keras layers of ActionVLAD: trainable VLAD pooling and the avg/max baselines."""

from actionvlad_tf.layers.netvlad import NetVLADPooling, l2_normalize
from actionvlad_tf.layers.pooling import SpatioTemporalPooling

__all__ = ["NetVLADPooling", "SpatioTemporalPooling", "l2_normalize"]
