"""The ActionVLAD video model, its pooling baselines, the two-stream fusions and the frame-level
two-stream baseline (paper Sec. 3, Fig. 2 and 4; release §1.3–§1.6, §2.5).

Video batches are [B, T, H, W, C]. The model folds T into the batch for the per-frame backbone and
unfolds it for pooling, so every descriptor of every frame (and crop, release §3.7) of a video lands
in one bag.
"""
import keras
from keras import ops

from actionvlad_tf.layers import NetVLADPooling, SpatioTemporalPooling
from actionvlad_tf.models import bn_inception, vgg16
from actionvlad_tf.models.parts import backbones, pooling_layers

POOLINGS = ("netvlad", "avg", "max")
FUSIONS = ("late", "concat", "early", "concat_vlad")
BACKBONES = ("vgg16", "bn_inception")
CLASSIFIER_STDDEV = 0.01  # truncated normal, release §1.3
DEFAULT_FLOW_WEIGHT = 0.667  # late fusion RGB:flow = 1:2 on raw logits (release §6.3)


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
    model_name="vgg16", modality="rgb", conv_endpoint="conv5", weights=None, image_size=224,
    weight_decay=4e-5, trainable_from=None, name=None, width=1.0,
):
    """The per-frame feature extractor: frames [N, S, S, C] → pre-ReLU endpoint map [N, h, w, D].
    `width`: VGG-16's width multiplier (`vgg16.build_vgg16`); bn_inception has only width 1."""
    name = name or f"{modality}_{model_name}"
    if model_name == "vgg16":
        input_shape = (image_size, image_size) if conv_endpoint == "fc7" else None
        return vgg16.build_vgg16(
            modality=modality, conv_endpoint=conv_endpoint, weights=weights, input_shape=input_shape,
            weight_decay=weight_decay, trainable_from=trainable_from, width=width, name=name,
        )
    if model_name == "bn_inception":
        if width != 1.0:
            raise ValueError(f"bn_inception has no width multiplier (width {width!r})")
        return bn_inception.build_bn_inception(
            modality=modality, conv_endpoint=conv_endpoint, weights=weights,
            weight_decay=weight_decay, trainable_from=trainable_from, name=name,
        )
    raise ValueError(f"model_name must be one of {BACKBONES}, got {model_name!r}")


def _video_input(modality, frames, image_size, name):
    channels = vgg16.MODALITY_CHANNELS[modality]
    return keras.Input(shape=(frames, image_size, image_size, channels), name=name)


def _frame_features(video, backbone):
    return UnfoldFrames(name=f"{backbone.name}_unfold")([backbone(FoldFrames(name=f"{backbone.name}_fold")(video)), video])


def _pool(features, pooling, num_clusters, netvlad_alpha, initial_centers, name):
    if pooling == "netvlad":
        return NetVLADPooling(num_clusters, alpha=netvlad_alpha, name=name)(features), initial_centers
    if pooling in ("avg", "max"):
        return SpatioTemporalPooling(pooling, name=name)(features), None
    raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")


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
    num_classes,
    modality="rgb",
    frames_per_video=25,
    num_crops=1,
    image_size=224,
    pooling="netvlad",
    conv_endpoint="conv5",
    num_clusters=64,
    netvlad_alpha=1000.0,
    pooled_dropout=0.0,
    weight_decay=4e-5,
    backbone_weights=None,
    initial_centers=None,
    model_name="vgg16",
    backbone_width=1.0,
    name="actionvlad",
):
    """ActionVLAD for one stream: [B, crops·T, S, S, C] → logits [B, num_classes].

    Args:
        num_classes: number of action classes.
        modality: "rgb" (3 channels, BGR minus [104, 117, 123]) or "flow" (20 channels minus 128).
        frames_per_video: T (25); None accepts any number of frames.
        num_crops: crops per frame at test time; all crops·T frames form one bag (release §3.7).
        image_size: S, the crop side (224).
        pooling: "netvlad" (ActionVLAD), "avg" or "max" over the pre-ReLU map (release §1.4).
        conv_endpoint: "conv5" (pre-ReLU conv5_3), "conv4" or "fc7" (paper Table 2a); a block name
            for bn_inception ("inception_5a").
        num_clusters: K (64).
        netvlad_alpha: α (1000).
        pooled_dropout: dropout on the pooled vector. The release never applies it (an
            always-false condition, §1.3, §8 row 1): default 0; the paper's 0.5 by argument.
        weight_decay: slim L2 on conv and classifier kernels as L2(wd/2); none on the VLAD weights
            and biases (release §1.6).
        backbone_weights: None, "imagenet" or a weights file (see `vgg16.build_vgg16`).
        initial_centers: optional [K, D] k-means centres for the NetVLAD weights (release §5).
        model_name: "vgg16" or "bn_inception" (the Charades backbone, release §7).
        backbone_width: VGG-16's width multiplier (1.0: the paper's; `vgg16.build_vgg16`).
        name: model name.
    """
    frames = None if frames_per_video is None else frames_per_video * num_crops
    video = _video_input(modality, frames, image_size, name=modality)
    backbone = build_backbone(
        model_name, modality, conv_endpoint, backbone_weights, image_size, weight_decay,
        name=f"{modality}_{model_name}", width=backbone_width,
    )
    features = _frame_features(video, backbone)
    pooled, centers = _pool(features, pooling, num_clusters, netvlad_alpha, initial_centers, "pooling")
    logits = _classify(pooled, num_classes, pooled_dropout, weight_decay)
    model = keras.Model(video, logits, name=name)
    _set_initial_centers(model, "pooling", centers)
    return model


def build_two_stream(
    num_classes,
    fusion="late",
    frames_per_video=25,
    num_crops=1,
    image_size=224,
    conv_endpoint="conv5",
    num_clusters=64,
    netvlad_alpha=1000.0,
    pooled_dropout=None,
    weight_decay=4e-5,
    rgb_weights=None,
    flow_weights=None,
    flow_weight=DEFAULT_FLOW_WEIGHT,
    initial_centers=None,
    backbone_width=1.0,
    name=None,
):
    """Two-stream ActionVLAD on inputs {"rgb": [B, T, S, S, 3], "flow": [B, T, S, S, 20]}.

    fusion (paper Sec. 3.3, Fig. 4; release §1.5 `stream_pool_type`):
        "late": one ActionVLAD per stream, logits (1 − w)·rgb + w·flow with w = `flow_weight`
            (release wtd-avg-pool-logits; paper Late Fusion). No pooled dropout by default.
        "concat": pre-ReLU maps concatenated on channels (2D), one ActionVLAD (Concat Fusion).
        "early": RGB and flow descriptors in one bag, one D-dim vocabulary (Early Fusion).
        "concat_vlad": one ActionVLAD per stream, the two vectors concatenated (2·K·D, norm √2),
            one classifier (the release's `concat-netvlad`, no paper name).
    `pooled_dropout` defaults to 0.5 for the single-classifier fusions, where the release's dropout
    is active (§1.5), and to 0 for late fusion. `initial_centers`: for "late" and "concat_vlad" a
    pair (rgb, flow) of [K, D] arrays; for "concat" one [K, 2D] array; for "early" one [K, D] array.
    `backbone_width`: both VGG-16s' width multiplier.
    """
    if fusion not in FUSIONS:
        raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
    frames = None if frames_per_video is None else frames_per_video * num_crops
    name = name or f"actionvlad_{fusion}_fusion"
    if pooled_dropout is None:
        pooled_dropout = 0.0 if fusion == "late" else 0.5
    streams = {"rgb": rgb_weights, "flow": flow_weights}
    if fusion == "late":
        centers = initial_centers or (None, None)
        kwargs = dict(
            num_classes=num_classes, frames_per_video=frames_per_video, num_crops=num_crops,
            image_size=image_size, conv_endpoint=conv_endpoint, num_clusters=num_clusters,
            netvlad_alpha=netvlad_alpha, pooled_dropout=pooled_dropout, weight_decay=weight_decay,
            backbone_width=backbone_width,
        )
        rgb = build_actionvlad(modality="rgb", backbone_weights=rgb_weights, initial_centers=centers[0], name="rgb_actionvlad", **kwargs)
        flow = build_actionvlad(modality="flow", backbone_weights=flow_weights, initial_centers=centers[1], name="flow_actionvlad", **kwargs)
        inputs = {"rgb": _video_input("rgb", frames, image_size, "rgb"), "flow": _video_input("flow", frames, image_size, "flow")}
        logits = WeightedLogitFusion([1.0 - flow_weight, flow_weight], name="late_fusion")(
            [rgb(inputs["rgb"]), flow(inputs["flow"])]
        )
        return keras.Model(inputs, logits, name=name)

    inputs = {m: _video_input(m, frames, image_size, m) for m in streams}
    features = {
        m: _frame_features(
            inputs[m],
            build_backbone("vgg16", m, conv_endpoint, streams[m], image_size, weight_decay, name=f"{m}_vgg16",
                           width=backbone_width),
        )
        for m in streams
    }
    if fusion == "concat_vlad":
        pooled = [
            NetVLADPooling(num_clusters, alpha=netvlad_alpha, name=f"{m}_pooling")(features[m]) for m in streams
        ]
        pooled = keras.layers.Concatenate(name="concat_vlad")(pooled)
    else:
        # concat: channels (assumes spatial correspondence); early: height, so both streams'
        # descriptors share one bag and one vocabulary (release §1.5).
        axis = -1 if fusion == "concat" else 2
        joint = keras.layers.Concatenate(axis=axis, name=f"{fusion}_features")([features["rgb"], features["flow"]])
        pooled = NetVLADPooling(num_clusters, alpha=netvlad_alpha, name="pooling")(joint)
    logits = _classify(pooled, num_classes, pooled_dropout, weight_decay)
    model = keras.Model(inputs, logits, name=name)
    if initial_centers is not None:
        if fusion == "concat_vlad":
            for m, c in zip(streams, initial_centers):
                _set_initial_centers(model, f"{m}_pooling", c)
        else:
            _set_initial_centers(model, "pooling", initial_centers)
    return model


def build_frame_classifier(
    num_classes,
    modality="rgb",
    frames_per_video=1,
    image_size=224,
    weights=None,
    weight_decay=5e-4,
    fc_dropout=0.8,
    trainable_from="fc1",
    backbone_width=1.0,
    name=None,
):
    """The two-stream baseline (paper Tables 1–3 "2-Stream"; release §1.4 pooling None / avg): a
    full VGG-16 classifies each frame; a video's logits are the mean of its frames' logits. Train with
    T = 1 random frame per video; test with T = 25 (release 005 scripts).

    `trainable_from` (default fc6, i.e. `fc1`; release 005: fc6, fc7 and fc8 trained) selects the
    first trainable layer; "block1_conv1" trains everything (from scratch, as the demo does).
    `backbone_width`: VGG-16's width multiplier.
    """
    video = _video_input(modality, frames_per_video, image_size, name=modality)
    backbone = vgg16.build_vgg16(
        modality=modality, weights=weights, input_shape=(image_size, image_size),
        weight_decay=weight_decay, include_top=True, num_classes=num_classes,
        fc_dropout=fc_dropout, trainable_from=trainable_from, width=backbone_width, name=f"{modality}_vgg16",
    )
    frame_logits = _frame_features(video, backbone)  # [B, T, C]
    logits = SpatioTemporalPooling("avg", name="frame_average", dtype="float32")(frame_logits)
    return keras.Model(video, logits, name=name or f"{modality}_two_stream_baseline")





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
            vgg16_or_other_first = backbone.layers[1].name
            vgg16.set_trainable_from(backbone, vgg16_or_other_first)
        else:
            vgg16.set_trainable_from(backbone, trainable_from or _first_trainable(backbone))
    for layer in pooling_layers(model):
        layer.trainable = stage != 1
    return model


def _first_trainable(backbone):
    names = [layer.name for layer in backbone.layers]
    if "fc2" in names and "predictions" not in names:
        return vgg16.FIRST_TRAINABLE["fc7"]
    output_layer = backbone.layers[-1].name
    for endpoint, layer_name in vgg16.CONV_ENDPOINTS.items():
        if output_layer == layer_name:
            return vgg16.FIRST_TRAINABLE[endpoint]
    first = getattr(backbone, "first_trainable", None)
    if first:
        return first
    return bn_inception.first_trainable_layer(backbone)
