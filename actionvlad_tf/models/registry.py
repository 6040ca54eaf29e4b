"""The backbone and pooling registries: plain dictionaries from the names the flags take
(`--model_name`, `--pooling`) to what builds them. The fusions are in
`actionvlad_tf.models.actionvlad.FUSIONS`, the datasets in `actionvlad_tf.data.datasets.DATASETS`.

Adding a pooling (docs/extending.md): write its layer in its own module, then one line here,
`POOLINGS["name"] = make_layer`, where `make_layer(spec, name)` gets the `ModelSpec` and the layer
name and returns a Keras layer taking per-frame maps [B, T, h, w, D] to a vector [B, P]. A layer
with a `set_centers(centres)` method is initialised from k-means centres when the model is built
with them. A backbone is one `Backbone(build, load_weights)` entry in `BACKBONES`.
"""
import dataclasses
from typing import Callable

from actionvlad_tf.layers import NetVLADPooling, SpatioTemporalPooling
from actionvlad_tf.models import bn_inception, vgg16


@dataclasses.dataclass(frozen=True)
class Backbone:
    """How to build one backbone and load weights into it.

    build(modality, conv_endpoint, weights, image_size, weight_decay, trainable_from, name, width)
        → a Keras model from frames [N, S, S, C] to the endpoint map [N, h, w, D].
    load_weights(backbone, weights): loads "imagenet" or a weights file into a built backbone.
    """

    build: Callable
    load_weights: Callable


def _build_vgg16(modality, conv_endpoint, weights, image_size, weight_decay, trainable_from, name, width=1.0):
    return vgg16.build_vgg16(
        modality=modality, conv_endpoint=conv_endpoint, weights=weights,
        input_shape=(image_size, image_size) if conv_endpoint == "fc7" else None,
        weight_decay=weight_decay, trainable_from=trainable_from, width=width, name=name)


def _build_bn_inception(modality, conv_endpoint, weights, image_size, weight_decay, trainable_from, name,
                        width=1.0):
    del image_size  # fully convolutional
    if width != 1.0:
        raise ValueError(f"backbone bn_inception has no width multiplier (got width {width})")
    return bn_inception.build_bn_inception(
        modality=modality, conv_endpoint=conv_endpoint, weights=weights, weight_decay=weight_decay,
        trainable_from=trainable_from, name=name)


BACKBONES = {
    "vgg16": Backbone(_build_vgg16, vgg16.load_vgg16_weights),
    "bn_inception": Backbone(_build_bn_inception, bn_inception.load_bn_inception_weights),
}

POOLINGS = {
    "netvlad": lambda spec, name: NetVLADPooling(spec.num_clusters, alpha=spec.netvlad_alpha, name=name),
    "avg": lambda spec, name: SpatioTemporalPooling("avg", name=name),
    "max": lambda spec, name: SpatioTemporalPooling("max", name=name),
}


def backbone_entry(name):
    """The `Backbone` registered as `name`; an unknown name is an error listing the known ones."""
    if name not in BACKBONES:
        raise ValueError(f"backbone (model_name) must be one of {sorted(BACKBONES)}, got {name!r}")
    return BACKBONES[name]


def pooling_layer(spec, name):
    """The pooling layer `spec.pooling` names, built for `spec`."""
    if spec.pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {sorted(POOLINGS)}, got {spec.pooling!r}")
    return POOLINGS[spec.pooling](spec, name)
