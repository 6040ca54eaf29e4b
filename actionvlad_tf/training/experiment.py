"""What the entry points (`experiments/train.py`, `eval.py`, `cluster.py`) share, as functions of
plain arguments: dataset files, the model a flag set describes, backbone weights, precision.

The model a flag set describes (release §1.4, §1.5):
* `conv_endpoint="fc8"`: the two-stream frame baseline (`build_frame_classifier`): VGG-16 to fc8 on
  each frame, the video's logits the mean over its frames (release `--pooling avg` over fc8);
* `modality="rgb+flow"`: a two-stream model with `fusion` late / concat / early / concat_vlad;
* otherwise one stream of ActionVLAD (`pooling="netvlad"`) or its avg / max baselines.
"""
import os

import keras
import tensorflow as tf

from actionvlad_tf import hardware
from actionvlad_tf.models import (backbones, build_actionvlad, build_backbone, build_frame_classifier,
                                  build_two_stream)
from actionvlad_tf.models import bn_inception
from actionvlad_tf.models.vgg16 import load_vgg16_weights

NUM_CLASSES = {"hmdb51": 51, "ucf101": 101, "charades": 157}
CLASS_NAME_FILES = ("actions.txt", "classInd.txt")
FRAME_BASELINE_ENDPOINT = "fc8"
STREAMS = {"rgb": ("rgb",), "flow": ("flow",), "rgb+flow": ("rgb", "flow")}


def num_classes_of(dataset_name, num_classes=None):
    """`num_classes` if given, else the class count of a known dataset."""
    if num_classes:
        return int(num_classes)
    if dataset_name not in NUM_CLASSES:
        raise ValueError(f"unknown dataset_name {dataset_name!r} (known: {sorted(NUM_CLASSES)}); "
                         "give num_classes")
    return NUM_CLASSES[dataset_name]


def split_list_file(list_dir, split_name, split_id):
    """`<list_dir>/{train,test}_split{N}.txt` (release §3.2), which must exist."""
    path = os.path.join(list_dir, f"{split_name}_split{split_id}.txt")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"list file not found: {path}")
    return path


def class_names_file(list_dir):
    """`actions.txt` (HMDB51 order) or `classInd.txt` (UCF101) in `list_dir`, or None."""
    for name in CLASS_NAME_FILES:
        path = os.path.join(list_dir, name)
        if os.path.isfile(path):
            return path
    return None


def per_stream(value, modality):
    """A comma list with one entry per stream of `modality` (one entry serves every stream)."""
    streams = STREAMS[modality]
    values = [v.strip() or None for v in value.split(",")] if isinstance(value, str) else [value]
    if len(values) == 1:
        values = values * len(streams)
    if len(values) != len(streams):
        raise ValueError(f"{value!r}: give one value, or one per stream {streams}")
    return dict(zip(streams, values))


def build_model(num_classes, modality="rgb", pooling="netvlad", conv_endpoint="conv5", fusion="late",
                frames_per_video=25, num_crops=1, image_size=224, num_clusters=64, netvlad_alpha=1000.0,
                pooled_dropout=None, weight_decay=4e-5, model_name="vgg16", initial_centers=None,
                fc_dropout=0.8, backbone_width=1.0):
    """The model of a flag set (module docstring), with random backbone weights (see
    `load_backbone_weights`; `backbone_width`: VGG-16's width multiplier). `pooled_dropout` None: the release's default for the variant (off,
    except after the single-classifier two-stream fusions). `initial_centers`: [K, D] k-means centres."""
    if conv_endpoint == FRAME_BASELINE_ENDPOINT:
        if modality not in ("rgb", "flow") or model_name != "vgg16":
            raise ValueError("the frame baseline (conv_endpoint fc8) is one VGG-16 stream, rgb or flow")
        return build_frame_classifier(num_classes, modality=modality, frames_per_video=frames_per_video * num_crops,
                                      image_size=image_size, weight_decay=weight_decay, fc_dropout=fc_dropout,
                                      backbone_width=backbone_width)
    if modality == "rgb+flow":
        if fusion in ("late", "concat_vlad") and initial_centers is not None:
            raise ValueError(f"fusion {fusion!r} has one VLAD per stream: train each stream's model and "
                             "fuse (experiments/fuse.py), or use fusion concat / early")
        return build_two_stream(num_classes, fusion=fusion, frames_per_video=frames_per_video, num_crops=num_crops,
                                image_size=image_size, conv_endpoint=conv_endpoint, num_clusters=num_clusters,
                                netvlad_alpha=netvlad_alpha, pooled_dropout=pooled_dropout,
                                weight_decay=weight_decay, initial_centers=initial_centers,
                                backbone_width=backbone_width)
    return build_actionvlad(num_classes, modality=modality, frames_per_video=frames_per_video, num_crops=num_crops,
                            image_size=image_size, pooling=pooling, conv_endpoint=conv_endpoint,
                            num_clusters=num_clusters, netvlad_alpha=netvlad_alpha,
                            pooled_dropout=pooled_dropout or 0.0, weight_decay=weight_decay,
                            initial_centers=initial_centers, model_name=model_name,
                            backbone_width=backbone_width)


def load_backbone_weights(model_or_backbones, weights, modality):
    """Loads per-stream backbone weights: "imagenet", a VGG16 `.h5` / `.weights.h5`, or a `.keras`
    model built here (e.g. the trained two-stream frame baseline, the release's initialisation of
    the flow ActionVLAD, §2.5): its backbone's layers are copied by name (fc layers only where the
    target has them). `weights`: one value or a comma list per stream of `modality` (rgb, flow)."""
    targets = (backbones(model_or_backbones) if isinstance(model_or_backbones, keras.Model)
               else list(model_or_backbones))
    sources = per_stream(weights, modality)
    if len(targets) != len(sources):
        raise ValueError(f"{len(targets)} backbones but {len(sources)} streams in {modality!r}")
    for backbone, (stream, source) in zip(targets, sources.items()):
        if source is None:
            continue
        if source.endswith(".keras"):
            _copy_backbone_layers(source, backbone)
        elif bn_inception.is_bn_inception(backbone):
            bn_inception.load_bn_inception_weights(backbone, source)
        else:
            load_vgg16_weights(backbone, source)


def _copy_backbone_layers(path, backbone):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"backbone weights file not found: {path}")
    (source,) = backbones(keras.saving.load_model(path, compile=False, safe_mode=True))[:1]
    available = {layer.name: layer for layer in source.layers if layer.weights}
    for layer in backbone.layers:
        if not layer.weights:
            continue
        if layer.name not in available:
            raise ValueError(f"{path}: its backbone has no layer {layer.name}")
        values = available[layer.name].get_weights()
        shapes = [tuple(v.shape) for v in values]
        if shapes != [tuple(w.shape) for w in layer.weights]:
            raise ValueError(f"{path}: layer {layer.name} has shapes {shapes}, the model needs "
                             f"{[tuple(w.shape) for w in layer.weights]}")
        layer.set_weights(values)


def descriptor_model(modality, conv_endpoint="conv5", fusion="late", image_size=224, model_name="vgg16",
                     weights=None, backbone_width=1.0):
    """frames → the maps k-means clusters (release §5): the frozen backbone at `conv_endpoint`, or
    for rgb+flow the two streams' maps concatenated on channels ("concat", [K, 2D] centres) or on
    height ("early": both streams' descriptors in one bag, [K, D] centres)."""
    streams = STREAMS[modality]
    nets = [build_backbone(model_name, stream, conv_endpoint, None, image_size, 0.0, name=f"{stream}_{model_name}",
                           width=backbone_width)
            for stream in streams]
    if weights is not None:
        load_backbone_weights(nets, weights, modality)
    if len(nets) == 1:
        return nets[0]
    if fusion not in ("concat", "early"):
        raise ValueError(f"k-means for rgb+flow needs fusion concat or early, got {fusion!r}")
    inputs = {stream: keras.Input(net.input.shape[1:], name=stream) for stream, net in zip(streams, nets)}
    maps = [net(inputs[stream]) for stream, net in zip(streams, nets)]
    joined = keras.layers.Concatenate(axis=-1 if fusion == "concat" else 1)(maps)
    return keras.Model(inputs, joined, name=f"{fusion}_descriptors")


def set_precision(mixed_precision="auto"):
    """Sets the Keras dtype policy before building and prints it with the reason: `mixed_precision`
    is auto (bfloat16 on a CPU only where it has native bfloat16, bfloat16 or float16 on a GPU,
    float32 otherwise: `actionvlad_tf.hardware.choose_precision`), float32, bfloat16, float16, or a
    boolean (true: float16 on GPU with loss scaling in the trainer, bfloat16 on CPU). NetVLAD and the
    logits stay float32. Returns the policy name."""
    name, reason = hardware.choose_precision(mixed_precision)
    keras.mixed_precision.set_global_policy(name)
    print(f"precision: {name} ({reason})", flush=True)
    return name


def set_determinism(seed, deterministic):
    """Seeds Python, numpy and TF (`keras.utils.set_random_seed`); `deterministic` also makes TF's
    ops deterministic, so a resumed run ends with the weights of an uninterrupted one."""
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def has_checkpoint(train_dir):
    """Whether `train_dir` holds a checkpoint to resume from (then initial weights are not loaded)."""
    return bool(train_dir) and os.path.isdir(train_dir) and tf.train.latest_checkpoint(train_dir) is not None
