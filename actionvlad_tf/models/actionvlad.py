"""The ActionVLAD video model, its pooling baselines, the two-stream fusions and the frame-level
two-stream baseline (paper Sec. 3, Fig. 2 and 4; release §1.3–§1.6, §2.5).

Video batches are [B, T, H, W, C]. The model folds T into the batch for the per-frame backbone and
unfolds it for pooling, so every descriptor of every frame (and crop, release §3.7) of a video lands
in one bag.
"""

import keras
from keras import ops

from actionvlad_tf.layers import SpatioTemporalPooling
from actionvlad_tf.models import registry
from actionvlad_tf.models.parts import backbones, pooling_layers, set_trainable_from
from actionvlad_tf.models.registry import BACKBONES, POOLINGS  # noqa: F401  (re-exported)
from actionvlad_tf.registration import Registry
from actionvlad_tf.specs import FLOW_WEIGHT, FRAME_BASELINE_ENDPOINT, INPUT_CHANNELS, ModelSpec

CLASSIFIER_STDDEV = 0.01  # truncated normal, release §1.3


@keras.saving.register_keras_serializable(package="actionvlad_tf")
class FoldFrames(keras.layers.Layer):
    """[B, T, ...] → [B·T, ...]: frames of video b occupy rows b·T … b·T + T − 1 (release §1.1)."""

    def call(self, video):
        shape = ops.shape(video)
        return ops.reshape(video, (-1,) + tuple(shape[2:]))

    def compute_output_shape(self, input_shape):
        batch, frames = input_shape[0], input_shape[1]
        folded = None if batch is None or frames is None else batch * frames
        return (folded,) + tuple(input_shape[2:])


@keras.saving.register_keras_serializable(package="actionvlad_tf")
class UnfoldFrames(keras.layers.Layer):
    """([B·T, ...] per-frame outputs, [B, T, ...] video) → [B, T, ...] per-frame outputs."""

    def call(self, inputs):
        features, video = inputs
        leading = ops.shape(video)[:2]
        return ops.reshape(features, tuple(leading) + tuple(ops.shape(features)[1:]))

    def compute_output_shape(self, input_shape):
        features_shape, video_shape = input_shape
        return tuple(video_shape[:2]) + tuple(features_shape[1:])


@keras.saving.register_keras_serializable(package="actionvlad_tf")
class WeightedLogitFusion(keras.layers.Layer):
    """Σ_s w_s · logits_s: late fusion of per-stream logits (release `wtd-avg-pool-logits`, §1.5)."""

    def __init__(self, stream_weights, **kwargs):
        super().__init__(**kwargs)
        self.stream_weights = [float(w) for w in stream_weights]

    def call(self, logits):
        return sum(w * x for w, x in zip(self.stream_weights, logits))

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "stream_weights": self.stream_weights}


def build_backbone(
    backbone,
    modality="rgb",
    conv_endpoint="conv5",
    weights=None,
    image_size=224,
    weight_decay=4e-5,
    trainable_from=None,
    name=None,
    width=1.0,
):
    """The per-frame feature extractor `registry.BACKBONES[backbone]` builds: frames
    [N, S, S, C] → endpoint map [N, h, w, D]."""
    name = name or f"{modality}_{backbone}"
    return registry.backbone_entry(backbone).build(
        modality, conv_endpoint, weights, image_size, weight_decay, trainable_from, name, width
    )


def _video_input(spec, stream):
    """The video input [B, crops·T, S, S, C] of one stream, C the backbone's channels for it."""
    channels = registry.backbone_entry(spec.backbone).input_channels[stream]
    return keras.Input(shape=(_frames(spec), spec.image_size, spec.image_size, channels), name=stream)


def _frame_features(video, backbone):
    return UnfoldFrames(name=f"{backbone.name}_unfold")(
        [backbone(FoldFrames(name=f"{backbone.name}_fold")(video)), video]
    )


def _pool(features, spec, initial_centers, name):
    """The registered pooling `spec.pooling` of [B, T, h, w, D] maps; k-means centres set after
    the model is built (`_set_initial_centers`) need a layer with `set_centers`."""
    layer = registry.pooling_layer(spec, name)
    if initial_centers is not None and not hasattr(layer, "set_centers"):
        raise ValueError(f"pooling {spec.pooling!r} takes no k-means centres")
    return layer(features)


def _classify(pooled, num_classes, pooled_dropout, weight_decay, name="classifier"):
    if pooled_dropout:
        pooled = keras.layers.Dropout(pooled_dropout, name="pooled_dropout")(pooled)
    regularizer = keras.regularizers.L2(weight_decay / 2.0) if weight_decay else None
    return keras.layers.Dense(
        num_classes,
        kernel_initializer=keras.initializers.TruncatedNormal(stddev=CLASSIFIER_STDDEV),
        bias_initializer="zeros",
        kernel_regularizer=regularizer,
        dtype="float32",  # logits in float32 under mixed precision
        name=name,
    )(pooled)


def _set_initial_centers(model, layer_name, centers):
    if centers is not None:
        model.get_layer(layer_name).set_centers(centers)


def build_actionvlad(
    num_classes, modality="rgb", *, backbone_weights=None, initial_centers=None, name="actionvlad", **spec_fields
):
    """ActionVLAD for one stream: [B, crops·T, S, S, C] → logits [B, num_classes]; the keyword
    front of `actionvlad_from_spec(ModelSpec(num_classes, modality=modality, **spec_fields))`.

    `spec_fields`: the other `ModelSpec` fields (frames_per_video, image_size, pooling, backbone,
    conv_endpoint, num_clusters ...; see its docstring). `backbone_weights`, `initial_centers`,
    `name`: see `actionvlad_from_spec`.
    """
    spec = ModelSpec(num_classes, modality=modality, **spec_fields)
    return actionvlad_from_spec(spec, backbone_weights, initial_centers, name)


def actionvlad_from_spec(spec, backbone_weights=None, initial_centers=None, name="actionvlad", stream=None):
    """ActionVLAD (or another registered pooling) on one stream of `spec`: [B, crops·T, S, S, C] →
    logits [B, num_classes]; all crops·T frames of a video form one bag (release §3.7).

    Args:
        spec: a `ModelSpec` of modality "rgb" or "flow" (or any modality with `stream`).
            `pooled_dropout` None is the release's 0 (an always-false condition, §1.3, §8 row 1).
        backbone_weights: None, "imagenet" or a weights file the backbone's loader reads.
        initial_centers: optional [K, D] k-means centres for the NetVLAD weights (release §5).
        name: model name.
        stream: the stream to build, "rgb" or "flow" (default: `spec.modality`).
    """
    stream = stream or spec.modality
    if stream not in INPUT_CHANNELS:
        raise ValueError(f"one stream is rgb or flow, got {stream!r}: build rgb+flow with two_stream_from_spec")
    video, features = _stream_features(spec, stream, backbone_weights)
    pooled = _pool(features, spec, initial_centers, "pooling")
    logits = _classify(pooled, spec.num_classes, spec.pooled_dropout or 0.0, spec.weight_decay)
    model = keras.Model(video, logits, name=name)
    _set_initial_centers(model, "pooling", initial_centers)
    return model


def _frames(spec):
    return None if spec.frames_per_video is None else spec.frames_per_video * spec.num_crops


def _stream_features(spec, stream, weights):
    """(video input, per-frame maps [B, T, h, w, D]) of one stream's backbone."""
    video = _video_input(spec, stream)
    backbone = build_backbone(
        spec.backbone,
        stream,
        spec.conv_endpoint,
        weights,
        spec.image_size,
        spec.weight_decay,
        name=f"{stream}_{spec.backbone}",
        width=spec.backbone_width,
    )
    return video, _frame_features(video, backbone)


def build_two_stream(
    num_classes,
    *,
    rgb_weights=None,
    flow_weights=None,
    flow_weight=FLOW_WEIGHT,
    initial_centers=None,
    name=None,
    **spec_fields,
):
    """Two-stream ActionVLAD; the keyword front of
    `two_stream_from_spec(ModelSpec(num_classes, modality="rgb+flow", **spec_fields))`.

    `spec_fields`: the other `ModelSpec` fields (fusion, frames_per_video, image_size, pooling,
    backbone ...; see its docstring). The other arguments: see `two_stream_from_spec`.
    """
    spec = ModelSpec(num_classes, modality="rgb+flow", **spec_fields)
    return two_stream_from_spec(spec, {"rgb": rgb_weights, "flow": flow_weights}, initial_centers, flow_weight, name)


def two_stream_from_spec(spec, weights=None, initial_centers=None, flow_weight=FLOW_WEIGHT, name=None):
    """Two-stream ActionVLAD of `spec` (modality "rgb+flow") on inputs {"rgb": [B, T, S, S, 3],
    "flow": [B, T, S, S, 20]}, each stream a `spec.backbone` backbone, pooled by `spec.pooling`
    (every fusion honours both).

    `spec.fusion` (paper Sec. 3.3, Fig. 4; release §1.5 `stream_pool_type`), a key of `FUSIONS`:
        "late": one ActionVLAD per stream, logits (1 − w)·rgb + w·flow with w = `flow_weight`
            (release wtd-avg-pool-logits; paper Late Fusion). No pooled dropout by default.
        "concat": maps concatenated on channels (2D), one pooling (Concat Fusion).
        "early": RGB and flow descriptors in one bag, one D-dim vocabulary (Early Fusion).
        "concat_vlad": one pooling per stream, the two vectors concatenated (2·K·D for NetVLAD,
            norm √2), one classifier (the release's `concat-netvlad`, no paper name).
    `spec.pooled_dropout` None is 0.5 for the single-classifier fusions, where the release's dropout
    is active (§1.5), and 0 for late fusion. `weights`: {stream: backbone weights} (None: random).
    `initial_centers`: for "late" and "concat_vlad" a pair (rgb, flow) of [K, D] arrays; for
    "concat" one [K, 2D] array; for "early" one [K, D] array.
    """
    build = FUSIONS.lookup(spec.fusion)
    if spec.pooled_dropout is None:
        spec = spec.replace(pooled_dropout=0.0 if spec.fusion == "late" else 0.5)
    weights = {"rgb": None, "flow": None, **(weights or {})}
    return build(spec, weights, initial_centers, flow_weight, name or f"actionvlad_{spec.fusion}_fusion")


def _late_fusion(spec, weights, initial_centers, flow_weight, name):
    centers = dict(zip(spec.streams, initial_centers or (None, None)))
    streams = {m: actionvlad_from_spec(spec, weights[m], centers[m], f"{m}_actionvlad", stream=m) for m in spec.streams}
    inputs = {m: _video_input(spec, m) for m in spec.streams}
    logits = WeightedLogitFusion([1.0 - flow_weight, flow_weight], name="late_fusion")(
        [streams[m](inputs[m]) for m in spec.streams]
    )
    return keras.Model(inputs, logits, name=name)


def _concat_vlad_fusion(spec, weights, initial_centers, flow_weight, name):
    del flow_weight
    inputs, features = _two_stream_features(spec, weights)
    centers = dict(zip(spec.streams, initial_centers or (None, None)))
    pooled = keras.layers.Concatenate(name="concat_vlad")(
        [_pool(features[m], spec, centers[m], f"{m}_pooling") for m in spec.streams]
    )
    model = keras.Model(inputs, _classify(pooled, spec.num_classes, spec.pooled_dropout, spec.weight_decay), name=name)
    for m in spec.streams:
        _set_initial_centers(model, f"{m}_pooling", centers[m])
    return model


def _joint_fusion(axis):
    """concat (axis −1: channels, assumes spatial correspondence) or early (axis 2: height, so both
    streams' descriptors share one bag and one vocabulary, release §1.5): one pooling."""

    def build(spec, weights, initial_centers, flow_weight, name):
        del flow_weight
        inputs, features = _two_stream_features(spec, weights)
        joint = keras.layers.Concatenate(axis=axis, name=f"{spec.fusion}_features")([features[m] for m in spec.streams])
        pooled = _pool(joint, spec, initial_centers, "pooling")
        model = keras.Model(
            inputs, _classify(pooled, spec.num_classes, spec.pooled_dropout, spec.weight_decay), name=name
        )
        _set_initial_centers(model, "pooling", initial_centers)
        return model

    return build


def _two_stream_features(spec, weights):
    pairs = {m: _stream_features(spec, m, weights[m]) for m in spec.streams}
    return {m: pair[0] for m, pair in pairs.items()}, {m: pair[1] for m, pair in pairs.items()}


# Two-stream fusions: name → build(spec, {stream: weights}, initial_centers, flow_weight, name).
FUSIONS = Registry(
    "fusion",
    {
        "late": _late_fusion,
        "concat": _joint_fusion(-1),
        "early": _joint_fusion(2),
        "concat_vlad": _concat_vlad_fusion,
    },
)


def build_frame_classifier(
    num_classes,
    modality="rgb",
    *,
    frames_per_video=1,
    weight_decay=5e-4,
    weights=None,
    trainable_from=None,
    name=None,
    **spec_fields,
):
    """The two-stream frame baseline; the keyword front of `frame_classifier_from_spec` with the
    release 005 scripts' defaults (T = 1 random frame per video in training, weight decay 5e-4).
    `spec_fields`: the other `ModelSpec` fields (image_size, fc_dropout, backbone_width, backbone).
    """
    spec = ModelSpec(
        num_classes,
        modality=modality,
        frames_per_video=frames_per_video,
        weight_decay=weight_decay,
        conv_endpoint=FRAME_BASELINE_ENDPOINT,
        **spec_fields,
    )
    return frame_classifier_from_spec(spec, weights, trainable_from, name)


def frame_classifier_from_spec(spec, weights=None, trainable_from=None, name=None):
    """The two-stream baseline (paper Tables 1–3 "2-Stream"; release §1.4 pooling None / avg): the
    backbone's frame classifier classifies each frame; a video's logits are the mean of its frames'
    logits. Train with T = 1 random frame per video; test with T = 25 (release 005 scripts).

    `trainable_from`: the first trainable layer (default: the backbone's, for VGG-16 fc6 onwards as
    the release's 005 scripts train fc6, fc7 and fc8). `spec.fc_dropout`: the rate after fc6 / fc7.
    """
    entry = registry.backbone_entry(spec.backbone)
    if spec.modality not in INPUT_CHANNELS or entry.frame_classifier is None:
        frame_backbones = sorted(n for n, e in registry.BACKBONES.items() if e.frame_classifier is not None)
        raise ValueError(
            f"the frame baseline (conv_endpoint fc8) is one stream, rgb or flow, of a backbone with a "
            f"frame classifier ({frame_backbones}); got {spec.modality!r} and {spec.backbone!r}"
        )
    video = _video_input(spec, spec.modality)
    backbone = entry.frame_classifier(
        spec.modality,
        spec.num_classes,
        spec.image_size,
        weights,
        spec.weight_decay,
        spec.fc_dropout,
        trainable_from,
        f"{spec.modality}_{spec.backbone}",
        spec.backbone_width,
    )
    frame_logits = _frame_features(video, backbone)  # [B, T, C]
    logits = SpatioTemporalPooling("avg", name="frame_average", dtype="float32")(frame_logits)
    return keras.Model(video, logits, name=name or f"{spec.modality}_two_stream_baseline")


def set_training_stage(model, stage, trainable_from=None):
    """Sets what trains in each stage of the release's recipe (§2.5; paper Sec. 3.4, 4.2).

    stage 1: only the classifier(s); the backbone and the k-means-initialised VLAD are fixed.
    stage 2: the backbone from `trainable_from` on (default: the endpoint's block, conv5_1 for
        conv5), the VLAD and the classifier(s).
    stage 0: everything (end-to-end; the paper notes the model is "completely capable" of it).
    A fresh optimiser should be built after changing stages (release: Adam state is not restored).
    """
    if stage not in (0, 1, 2):
        raise ValueError(f"stage must be 0, 1 or 2, got {stage!r}")
    model.trainable = True
    for backbone in backbones(model):
        backbone.trainable = stage != 1
        if stage == 1:
            continue
        if stage == 0:
            set_trainable_from(backbone, backbone.layers[1].name)
        else:
            entry = registry.backbone_of(backbone)
            entry.set_trainable_from(backbone, trainable_from or entry.first_trainable(backbone))
    for layer in pooling_layers(model):
        layer.trainable = stage != 1
    return model
