"""The model a `ModelSpec` describes, backbone weights per stream, and the descriptor model k-means
clusters (release §1.4, §1.5, §5):

* `conv_endpoint="fc8"`: the two-stream frame baseline (`frame_classifier_from_spec`): the
  backbone's frame classifier (VGG-16 to fc8) on each frame, the video's logits the mean over its
  frames (release `--pooling avg` over fc8);
* `modality="rgb+flow"`: a two-stream model with fusion late / concat / early / concat_vlad, every
  stream the spec's backbone and pooling;
* otherwise one stream of ActionVLAD (`pooling="netvlad"`) or another registered pooling.
"""

import os

import keras

from actionvlad_tf.models import registry
from actionvlad_tf.models.actionvlad import (
    FUSIONS,
    actionvlad_from_spec,
    backbones,
    build_backbone,
    frame_classifier_from_spec,
    two_stream_from_spec,
)
from actionvlad_tf.specs import STREAMS, ModelSpec


def build_model(spec, initial_centers=None):
    """The model of `spec` (module docstring), with random backbone weights (see
    `load_backbone_weights`). `spec.pooled_dropout` None: the release's default for the variant
    (off, except after the single-classifier two-stream fusions). `initial_centers`: k-means
    centres ([K, D]; a pair for the two-stream fusions with one pooling per stream)."""
    if spec.frame_baseline:
        return frame_classifier_from_spec(spec)
    if spec.modality == "rgb+flow":
        FUSIONS.lookup(spec.fusion)
        if (
            spec.fusion in ("late", "concat_vlad")
            and initial_centers is not None
            and not isinstance(initial_centers, (tuple, list))
        ):
            raise ValueError(
                f"fusion {spec.fusion!r} has one pooling per stream: train each stream's model "
                "and fuse (experiments/fuse.py), or use fusion concat / early"
            )
        return two_stream_from_spec(spec, initial_centers=initial_centers)
    return actionvlad_from_spec(spec, initial_centers=initial_centers)


def per_stream(value, modality):
    """A comma list with one entry per stream of `modality` (one entry serves every stream)."""
    streams = STREAMS[modality]
    values = [v.strip() or None for v in value.split(",")] if isinstance(value, str) else [value]
    if len(values) == 1:
        values = values * len(streams)
    if len(values) != len(streams):
        raise ValueError(f"{value!r}: give one value, or one per stream {streams}")
    return dict(zip(streams, values))


def load_backbone_weights(model_or_backbones, weights, modality, backbone=ModelSpec.backbone):
    """Loads per-stream backbone weights: "imagenet", a weights file the `backbone`'s registered
    loader reads (VGG16 `.h5` / `.weights.h5`, BN-Inception `.npz` ...), or a `.keras` model built
    here (e.g. the trained two-stream frame baseline, the release's initialisation of the flow
    ActionVLAD, §2.5): its backbone's layers are copied by name (fc layers only where the target has
    them). `weights`: one value or a comma list per stream of `modality` (rgb, flow)."""
    targets = backbones(model_or_backbones) if isinstance(model_or_backbones, keras.Model) else list(model_or_backbones)
    sources = per_stream(weights, modality)
    if len(targets) != len(sources):
        raise ValueError(f"{len(targets)} backbones but {len(sources)} streams in {modality!r}")
    loader = registry.backbone_entry(backbone).load_weights
    for target, (stream, source) in zip(targets, sources.items()):
        if source is None:
            continue
        if source.endswith(".keras"):
            _copy_backbone_layers(source, target)
        else:
            loader(target, source)


def _copy_backbone_layers(path, backbone):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"backbone weights file not found: {path}")
    (source,) = backbones(keras.saving.load_model(path, compile=False, safe_mode=True))[:1]
    copy_layers_by_name(source, backbone, f"{path}: its backbone")


def copy_layers_by_name(source, target, where="the source model"):
    """Copies into every layer of `target` that has weights the weights of `source`'s layer of the
    same name (`source` may have more layers, e.g. fc6–fc8), checking that each is there with the
    same shapes; `where` names `source` in the errors."""
    available = {layer.name: layer for layer in source.layers if layer.weights}
    for layer in target.layers:
        if not layer.weights:
            continue
        if layer.name not in available:
            raise ValueError(f"{where} has no layer {layer.name}")
        values = available[layer.name].get_weights()
        shapes = [tuple(v.shape) for v in values]
        if shapes != [tuple(w.shape) for w in layer.weights]:
            raise ValueError(
                f"{where}: layer {layer.name} has shapes {shapes}, the model needs "
                f"{[tuple(w.shape) for w in layer.weights]}"
            )
        layer.set_weights(values)


def descriptor_model(spec, weights=None):
    """frames → the maps k-means clusters (release §5): the frozen backbone of `spec` at its
    endpoint, or for rgb+flow the two streams' maps concatenated on channels ("concat", [K, 2D]
    centres) or on height ("early": both streams' descriptors in one bag, [K, D] centres)."""
    nets = [
        build_backbone(
            spec.backbone,
            stream,
            spec.conv_endpoint,
            None,
            spec.image_size,
            0.0,
            name=f"{stream}_{spec.backbone}",
            width=spec.backbone_width,
        )
        for stream in spec.streams
    ]
    if weights is not None:
        load_backbone_weights(nets, weights, spec.modality, spec.backbone)
    if len(nets) == 1:
        return nets[0]
    if spec.fusion not in ("concat", "early"):
        raise ValueError(f"k-means for rgb+flow needs fusion concat or early, got {spec.fusion!r}")
    inputs = {stream: keras.Input(net.input.shape[1:], name=stream) for stream, net in zip(spec.streams, nets)}
    maps = [net(inputs[stream]) for stream, net in zip(spec.streams, nets)]
    joined = keras.layers.Concatenate(axis=-1 if spec.fusion == "concat" else 1)(maps)
    return keras.Model(inputs, joined, name=f"{spec.fusion}_descriptors")
