"""Backbones and the ActionVLAD video models."""

from actionvlad_tf.models.actionvlad import (
    FUSIONS,
    FoldFrames,
    UnfoldFrames,
    WeightedLogitFusion,
    actionvlad_from_spec,
    build_actionvlad,
    build_backbone,
    build_frame_classifier,
    build_two_stream,
    frame_classifier_from_spec,
    set_training_stage,
    two_stream_from_spec,
)
from actionvlad_tf.models.bn_inception import (  # registers FrozenBatchNormalization for load_model
    FrozenBatchNormalization,
    build_bn_inception,
    load_release_bn_inception,
)
from actionvlad_tf.models.builder import build_model, descriptor_model, load_backbone_weights
from actionvlad_tf.models.parts import backbones, embedding_model, model_streams, pooling_layers, release_head_variables
from actionvlad_tf.models.registry import BACKBONES, POOLINGS, Backbone
from actionvlad_tf.models.vgg16 import build_vgg16, flow_kernel_from_rgb, load_vgg16_weights

__all__ = [
    "BACKBONES",
    "Backbone",
    "FUSIONS",
    "POOLINGS",
    "build_model",
    "descriptor_model",
    "load_backbone_weights",
    "FoldFrames",
    "FrozenBatchNormalization",
    "UnfoldFrames",
    "WeightedLogitFusion",
    "backbones",
    "build_actionvlad",
    "build_backbone",
    "build_bn_inception",
    "build_frame_classifier",
    "build_two_stream",
    "build_vgg16",
    "embedding_model",
    "flow_kernel_from_rgb",
    "load_release_bn_inception",
    "load_vgg16_weights",
    "model_streams",
    "pooling_layers",
    "release_head_variables",
    "set_training_stage",
    "actionvlad_from_spec",
    "frame_classifier_from_spec",
    "two_stream_from_spec",
]
