"""The backbone and pooling registries (`actionvlad_tf.registration.Registry`: a dictionary that
refuses a second entry under a taken name) from the names the flags take (`--model_name`,
`--pooling`) to what builds them. The fusions are in
`actionvlad_tf.models.actionvlad.FUSIONS`, the datasets in `actionvlad_tf.data.datasets.DATASETS`.

Adding a pooling (docs/extending.md): write its layer in its own module, then one line here,
`POOLINGS["name"] = make_layer`, where `make_layer(spec, name)` gets the `ModelSpec` and the layer
name and returns a Keras layer taking per-frame maps [B, T, h, w, D] to a vector [B, P]. A layer
with a `set_centers(centres)` method is initialised from k-means centres when the model is built
with them. A backbone is one `Backbone` entry in `BACKBONES`, which owns its facts: how to build
it and load its weights, which built model is its, where stage 2 starts training, how to freeze
below that layer, its input channels per modality and its frame classifier, if it has one.
"""

import dataclasses
from typing import Callable, Mapping, Optional

from actionvlad_tf.layers import NetVLADPooling, SpatioTemporalPooling
from actionvlad_tf.models import bn_inception, vgg16
from actionvlad_tf.models.parts import set_trainable_from
from actionvlad_tf.registration import Registry
from actionvlad_tf.specs import INPUT_CHANNELS


@dataclasses.dataclass(frozen=True)
class Backbone:
    """One backbone and its facts.

    build(modality, conv_endpoint, weights, image_size, weight_decay, trainable_from, name, width)
        → a Keras model from frames [N, S, S, C] to the endpoint map [N, h, w, D].
    load_weights(backbone, weights): loads "imagenet" or a weights file into a built backbone.
    recognises(model): whether `model` is a backbone `build` made (so `set_training_stage` can find
        the entry of each backbone inside a built model).
    first_trainable(backbone): the layer stage 2 trains from by default, for the backbone's
        endpoint (the block before the pooling, paper Sec. 4.3).
    set_trainable_from(backbone, layer_name): freezes the layers before `layer_name`, trains the rest.
    input_channels: {modality: C} of the frames it takes.
    frame_classifier: None, or
        `frame_classifier(modality, num_classes, image_size, weights, weight_decay, fc_dropout,
        trainable_from, name, width)` → a model from frames [N, S, S, C] to per-frame logits
        [N, num_classes] (the two-stream frame baseline, conv_endpoint fc8).
    """

    build: Callable
    load_weights: Callable
    recognises: Callable
    first_trainable: Callable
    set_trainable_from: Callable = set_trainable_from
    input_channels: Mapping[str, int] = dataclasses.field(default_factory=lambda: dict(INPUT_CHANNELS))
    frame_classifier: Optional[Callable] = None


def _build_vgg16(modality, conv_endpoint, weights, image_size, weight_decay, trainable_from, name, width=1.0):
    return vgg16.build_vgg16(
        modality=modality,
        conv_endpoint=conv_endpoint,
        weights=weights,
        input_shape=(image_size, image_size) if conv_endpoint == "fc7" else None,
        weight_decay=weight_decay,
        trainable_from=trainable_from,
        width=width,
        name=name,
    )


def _build_bn_inception(modality, conv_endpoint, weights, image_size, weight_decay, trainable_from, name, width=1.0):
    del image_size  # fully convolutional
    if width != 1.0:
        raise ValueError(f"backbone bn_inception has no width multiplier (got width {width})")
    return bn_inception.build_bn_inception(
        modality=modality,
        conv_endpoint=conv_endpoint,
        weights=weights,
        weight_decay=weight_decay,
        trainable_from=trainable_from,
        name=name,
    )


def _vgg16_frame_classifier(
    modality, num_classes, image_size, weights, weight_decay, fc_dropout, trainable_from, name, width=1.0
):
    return vgg16.build_vgg16(
        modality=modality,
        weights=weights,
        input_shape=(image_size, image_size),
        weight_decay=weight_decay,
        include_top=True,
        num_classes=num_classes,
        fc_dropout=fc_dropout,
        trainable_from=trainable_from,
        width=width,
        name=name,
    )


BACKBONES = Registry(
    "backbone",
    {
        "vgg16": Backbone(
            _build_vgg16,
            vgg16.load_vgg16_weights,
            vgg16.is_vgg16,
            vgg16.first_trainable_layer,
            frame_classifier=_vgg16_frame_classifier,
        ),
        "bn_inception": Backbone(
            _build_bn_inception,
            bn_inception.load_bn_inception_weights,
            bn_inception.is_bn_inception,
            bn_inception.first_trainable_layer,
        ),
    },
)

POOLINGS = Registry(
    "pooling",
    {
        "netvlad": lambda spec, name: NetVLADPooling(spec.num_clusters, alpha=spec.netvlad_alpha, name=name),
        "avg": lambda spec, name: SpatioTemporalPooling("avg", name=name),
        "max": lambda spec, name: SpatioTemporalPooling("max", name=name),
    },
)


def backbone_entry(name):
    """The `Backbone` registered as `name`; an unknown name is an error listing the known ones."""
    return BACKBONES.lookup(name, flag="--model_name")


def backbone_of(model):
    """The `Backbone` entry whose `recognises(model)` holds; an error when none does."""
    for entry in BACKBONES.values():
        if entry.recognises(model):
            return entry
    raise ValueError(f"{model.name} is not a backbone of any registered kind {sorted(BACKBONES)}")


def pooling_layer(spec, name):
    """The pooling layer `spec.pooling` names, built for `spec`."""
    return POOLINGS.lookup(spec.pooling)(spec, name)
