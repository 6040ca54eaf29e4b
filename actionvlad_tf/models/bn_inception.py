"""BN-Inception (TSN) backbone of the Charades ActionVLAD, as the release's `inception_v2_tsn`
(release §7; paper appendix F).

Every convolution is the release's `conv_set`: explicit zero padding → VALID conv with bias →
BatchNorm(scale, ε = 1e-5, momentum 0.9) → ReLU. BatchNorm is frozen everywhere: the release builds
it with `is_training=False, trainable=False`, so moving statistics are used and γ, β stay fixed even
while the convolutions train. `FrozenBatchNormalization` keeps it so whatever `trainable` is set on
the model later.

Keras layer names are TSN's Caffe layer names with "/" → "_" (`conv1_7x7_s2`, `inception_3a_1x1`,
BN `inception_3a_1x1_bn`): the names of the release's `cuhk-action-tsn` .npy and of the usual
PyTorch ports. The release's TF names are `InceptionV2_TSN/<block>/<branch>/Conv/{weights,biases}`
and `.../BatchNorm/{gamma,beta,moving_mean,moving_variance}`; `release_weight_map` gives the mapping
and `load_release_bn_inception` loads a {release name: array} dict or checkpoint onto a model.

Expected input: as VGG (release §3.5, vgg_ucf preprocessing), BGR in [0, 255] minus [104, 117, 123]
for RGB; 20-channel flow stacks minus 128.
"""

import os
import re
import warnings

import keras
import numpy as np

from actionvlad_tf.layers import NetVLADPooling
from actionvlad_tf.models.parts import flow_kernel_from_rgb, release_head_variables, set_trainable_from
from actionvlad_tf.specs import INPUT_CHANNELS

RELEASE_SCOPE = "InceptionV2_TSN"
# Widths [1×1, 3×3 reduce, 3×3, pool proj, double 3×3 reduce, double 3×3 a, double 3×3 b] and the
# pool branch of each Inception block (release §7 table). "small" = the reduction modules: no 1×1
# branch, stride 2 in the last 3×3 of both 3×3 branches, 3×3/2 max-pool without projection.
INCEPTION_BLOCKS = (
    ("inception_3a", (64, 64, 64, 32, 64, 96, 96), "avg"),
    ("inception_3b", (64, 64, 96, 64, 64, 96, 96), "avg"),
    ("inception_3c", (None, 128, 160, None, 64, 96, 96), "small"),
    ("inception_4a", (224, 64, 96, 128, 96, 128, 128), "avg"),
    ("inception_4b", (192, 96, 128, 128, 96, 128, 128), "avg"),
    ("inception_4c", (160, 128, 160, 128, 128, 160, 160), "avg"),
    ("inception_4d", (96, 128, 192, 128, 160, 192, 192), "avg"),
    ("inception_4e", (None, 128, 192, None, 192, 256, 256), "small"),
    ("inception_5a", (352, 192, 320, 128, 160, 224, 224), "avg"),
    ("inception_5b", (352, 192, 320, 128, 192, 224, 224), "max"),
)
STEM_ENDPOINTS = ("conv1/7x7_s2", "pool1/3x3_s2", "conv2/3x3_reduce", "conv2/3x3", "pool2/3x3_s2")
ENDPOINTS = STEM_ENDPOINTS + tuple(block for block, _, _ in INCEPTION_BLOCKS)
DEFAULT_ENDPOINT = "inception_5a"  # release §7: the Charades model pools inception_5a (7×7×1024)
BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9
CONV_BIAS_INIT = 0.2  # release arg scope; irrelevant once weights are loaded
BN_WEIGHTS = ("gamma", "beta", "moving_mean", "moving_variance")  # Keras attributes = release names
# TSN Caffe BN blobs → release names (release `var_name_mapper.cuhk_action_tsn`).
TSN_BN_NAMES = {"scale": "gamma", "shift": "beta", "mean": "moving_mean", "variance": "moving_variance"}
CONV_RELEASE_NAMES = {"kernel": "weights", "bias": "biases"}
# PyTorch ports of TSN's BN-Inception (same layer names; OIHW kernels) → release names.
TORCH_BN_NAMES = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}
TORCH_CONV_NAMES = {"weight": "weights", "bias": "biases"}
# Keras hosts no BN-Inception: "imagenet" means this file in Keras's cache, made once by the user.
IMAGENET_FILE = "bn_inception_imagenet.npz"
# A conv layer name: block or stem conv, then the branch ("inception_3a" + "double_3x3_1").
CONV_LAYER = re.compile(r"(inception_\d[a-e]|conv\d)_(.+)")


@keras.saving.register_keras_serializable(package="actionvlad_tf")
class FrozenBatchNormalization(keras.layers.BatchNormalization):
    """BatchNormalization that always normalises with its moving statistics and never trains γ, β or
    the statistics, whatever `trainable` or `training` says (release §7: `is_training=False,
    trainable=False` on every BN of the TSN backbone)."""

    def __init__(self, **kwargs):
        kwargs["trainable"] = False
        super().__init__(**kwargs)

    @property
    def trainable(self):
        return False

    @trainable.setter
    def trainable(self, value):
        # model.trainable = True or a stage change reaches every layer; the BN stays frozen.
        self._trainable = False

    def build(self, input_shape):
        super().build(input_shape)
        for variable in self.weights:
            variable.trainable = False

    def call(self, inputs, training=None, mask=None):
        return super().call(inputs, training=False, mask=mask)


def keras_name(scope):
    """Release scope → Keras layer name (= TSN Caffe layer name): "inception_3a/1x1" → "inception_3a_1x1"."""
    return scope.replace("/", "_")


def release_scope(layer_name):
    """Keras conv layer name → release scope: "inception_3a_double_3x3_1" → "inception_3a/double_3x3_1",
    "conv1_7x7_s2" → "conv1/7x7_s2" (the split `var_name_mapper.cuhk_action_tsn` makes)."""
    match = CONV_LAYER.fullmatch(layer_name)
    if not match:
        raise ValueError(f"{layer_name!r} is not a BN-Inception conv layer name")
    return f"{match.group(1)}/{match.group(2)}"


def endpoint_layer_name(conv_endpoint):
    """The Keras layer whose output is the endpoint `conv_endpoint` (release or Keras spelling)."""
    endpoint = _canonical_endpoint(conv_endpoint)
    if endpoint.startswith("conv"):
        return f"{keras_name(endpoint)}_relu"
    return keras_name(endpoint)


def _canonical_endpoint(conv_endpoint):
    by_keras_name = {keras_name(e): e for e in ENDPOINTS}
    endpoint = by_keras_name.get(conv_endpoint, conv_endpoint)
    if endpoint not in ENDPOINTS:
        raise ValueError(f"conv_endpoint must be one of {ENDPOINTS}, got {conv_endpoint!r}")
    return endpoint


def _conv_set(x, scope, filters, kernel, stride=1, padding=0, regularizer=None):
    """Release `conv_set`: zero-pad p → conv VALID with bias → frozen BN → ReLU."""
    name = keras_name(scope)
    if padding:
        x = keras.layers.ZeroPadding2D(padding, name=f"{name}_pad")(x)
    x = keras.layers.Conv2D(
        filters,
        kernel,
        strides=stride,
        padding="valid",
        kernel_initializer="glorot_uniform",  # slim xavier_initializer (uniform)
        bias_initializer=keras.initializers.Constant(CONV_BIAS_INIT),
        kernel_regularizer=regularizer,
        name=name,
    )(x)
    x = FrozenBatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def _inception_module(x, block, widths, pool, regularizer):
    one, reduce3, out3, proj, reduce_d, out_d1, out_d2 = widths
    small = pool == "small"
    stride = 2 if small else 1
    branches = [] if small else [_conv_set(x, f"{block}/1x1", one, 1, regularizer=regularizer)]
    branch = _conv_set(x, f"{block}/3x3_reduce", reduce3, 1, regularizer=regularizer)
    branches.append(_conv_set(branch, f"{block}/3x3", out3, 3, stride, 1, regularizer))
    branch = _conv_set(x, f"{block}/double_3x3_reduce", reduce_d, 1, regularizer=regularizer)
    branch = _conv_set(branch, f"{block}/double_3x3_1", out_d1, 3, 1, 1, regularizer)
    branches.append(_conv_set(branch, f"{block}/double_3x3_2", out_d2, 3, stride, 1, regularizer))
    # TF SAME pooling (release §8 row 30): the average excludes the zero padding, unlike Caffe.
    if pool == "avg":
        pooled = keras.layers.AveragePooling2D(3, strides=1, padding="same", name=f"{block}_pool")(x)
    else:
        pooled = keras.layers.MaxPooling2D(3, strides=stride, padding="same", name=f"{block}_pool")(x)
    branches.append(pooled if small else _conv_set(pooled, f"{block}/pool_proj", proj, 1, regularizer=regularizer))
    return keras.layers.Concatenate(name=block)(branches)


def build_bn_inception(
    modality="rgb",
    conv_endpoint=DEFAULT_ENDPOINT,
    weights=None,
    input_shape=None,
    weight_decay=0.0,
    trainable_from=None,
    name="bn_inception",
):
    """BN-Inception from frames [N, H, W, C] to the (post-ReLU) `conv_endpoint` map.

    Args:
        modality: "rgb" (3 channels) or "flow" (20), or an int number of channels.
        conv_endpoint: a block name of `ENDPOINTS` ("inception_5a", the Charades default:
            [N, H/32, W/32, 1024], 7×7×1024 at 224²), release spelling ("conv2/3x3") or Keras
            spelling ("conv2_3x3").
        weights: None (random), "imagenet" (`imagenet_weights_file()`), a Keras `.weights.h5` of
            this model, or anything `load_release_bn_inception` reads (a {release name: array}
            dict, an `.npz` of one or of a PyTorch port's state dict, a TF checkpoint prefix, the
            release's TSN `.npy`). A 3-channel conv1 kernel is converted for flow (release §4).
        input_shape: (H, W) or (H, W, C); default (None, None, C).
        weight_decay: slim L2 (wd·Σw²/2) on conv kernels, as Keras L2(wd/2) (release §1.6, §7).
        trainable_from: name of the first trainable layer; default the endpoint's block (see
            `first_trainable_layer`). BatchNorm never trains.
        name: model name.
    """
    channels = INPUT_CHANNELS[modality] if isinstance(modality, str) else int(modality)
    endpoint = _canonical_endpoint(conv_endpoint)
    if input_shape is None:
        input_shape = (None, None, channels)
    elif len(input_shape) == 2:
        input_shape = tuple(input_shape) + (channels,)
    if input_shape[-1] != channels:
        raise ValueError(f"modality {modality!r} has {channels} channels, input_shape says {input_shape[-1]}")
    regularizer = keras.regularizers.L2(weight_decay / 2.0) if weight_decay else None

    inputs = keras.Input(shape=input_shape, name="frames")
    x = inputs
    for scope, stage in _stages(regularizer):
        x = stage(x)
        if scope == endpoint:
            break
    model = keras.Model(inputs, x, name=name)
    if weights is not None:
        load_bn_inception_weights(model, weights)
    set_trainable_from(model, trainable_from or first_trainable_layer(model))
    return model


def _stages(regularizer):
    """(endpoint, x → output) in network order: the stem (release §7), then the Inception blocks."""

    def max_pool(name):
        # TF SAME max-pool 3×3/2, as the release's stem (not Caffe's ceil-mode pooling).
        return lambda x: keras.layers.MaxPooling2D(3, 2, padding="same", name=name)(x)

    yield "conv1/7x7_s2", lambda x: _conv_set(x, "conv1/7x7_s2", 64, 7, 2, 3, regularizer)
    yield "pool1/3x3_s2", max_pool("pool1_3x3_s2")
    yield "conv2/3x3_reduce", lambda x: _conv_set(x, "conv2/3x3_reduce", 64, 1, regularizer=regularizer)
    yield "conv2/3x3", lambda x: _conv_set(x, "conv2/3x3", 192, 3, 1, 1, regularizer)
    yield "pool2/3x3_s2", max_pool("pool2_3x3_s2")
    for block, widths, pool in INCEPTION_BLOCKS:
        yield block, lambda x, b=block, w=widths, p=pool: _inception_module(x, b, w, p, regularizer)


def first_trainable_layer(backbone):
    """First layer of the endpoint's block, the default start of training in stage 2.

    The release's Charades recipe is unreleased (§7). Like VGG, where stage 2 trains the block just
    before ActionVLAD (conv5_1–conv5_3, paper Sec. 4.3), stage 2 here trains the convolutions of the
    endpoint's block (all of inception_5a for the default endpoint); BatchNorm stays frozen. For a
    stem endpoint it is that conv (or the conv before that pool).
    """
    names = [layer.name for layer in backbone.layers]
    output = backbone.layers[-1].name
    if output.startswith("inception_"):
        return next(n for n in names if n.startswith(f"{output}_"))
    conv_names = [n for n in names if isinstance(backbone.get_layer(n), keras.layers.Conv2D)]
    last_conv = conv_names[-1]
    for candidate in (f"{last_conv}_pad", last_conv):
        if candidate in names:
            return candidate
    raise ValueError(f"{backbone.name} has no conv layer")


def is_bn_inception(backbone):
    """Whether `backbone` is a model built by `build_bn_inception`."""
    return any(layer.name == "conv1_7x7_s2" for layer in backbone.layers)


def _find_bn_inception(model):
    """The BN-Inception backbone inside `model` (or `model` itself)."""
    if is_bn_inception(model):
        return model
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found = _find_bn_inception(layer)
            if found is not None:
                return found
    return None


def release_weight_map(model, stream="stream0"):
    """[(release name, Keras variable, release shape)] for a BN-Inception backbone or an ActionVLAD
    model built on one (its NetVLAD `pooling` and `classifier` included; release §1.7, §7).

    Names carry the `stream` prefix ("stream0/InceptionV2_TSN/inception_5a/1x1/Conv/weights",
    "stream0/NetVLAD/vlad_W", "stream0/classifier/logits/weights"); `stream=None` drops it.
    """
    prefix = f"{stream}/" if stream else ""
    backbone = _find_bn_inception(model)
    if backbone is None:
        raise ValueError(f"{model.name} holds no BN-Inception backbone")
    entries = []
    for layer in backbone.layers:
        if isinstance(layer, keras.layers.Conv2D):
            scope = f"{prefix}{RELEASE_SCOPE}/{release_scope(layer.name)}/Conv"
            for attr, leaf in CONV_RELEASE_NAMES.items():
                variable = getattr(layer, attr)
                entries.append((f"{scope}/{leaf}", variable, tuple(variable.shape)))
        elif isinstance(layer, FrozenBatchNormalization):
            scope = f"{prefix}{RELEASE_SCOPE}/{release_scope(layer.name[: -len('_bn')])}/BatchNorm"
            for leaf in BN_WEIGHTS:
                variable = getattr(layer, leaf)
                entries.append((f"{scope}/{leaf}", variable, tuple(variable.shape)))
    if backbone is model:
        return entries
    vlad = [layer for layer in model.layers if isinstance(layer, NetVLADPooling)]
    classifier = [layer for layer in model.layers if layer.name == "classifier"]
    if len(vlad) > 1 or len(classifier) > 1:
        raise ValueError(f"{model.name}: the release's BN-Inception model has one stream, one NetVLAD, one classifier")
    for name, variable in release_head_variables(model, prefix):
        shape = tuple(variable.shape)
        entries.append((name, variable, (1, 1) + shape if name.endswith("NetVLAD/vlad_W") else shape))
    return entries


def tsn_npy_to_release(tsn_weights):
    """The release's TSN Caffe conversion {caffe layer: {blob: array}} (keys like
    "inception_3a_1x1_bn" / "scale") → {release name: array}, as `var_name_mapper.cuhk_action_tsn`.
    Blobs of other layers (TSN's `fc-action` classifier) keep their "layer/blob" name, so a load
    reports them as unused."""
    converted = {}
    for layer, blobs in tsn_weights.items():
        is_bn = layer.endswith("_bn")
        for blob, value in blobs.items():
            if not CONV_LAYER.fullmatch(layer):
                converted[f"{layer}/{blob}"] = np.asarray(value)
                continue
            scope = release_scope(layer[: -len("_bn")] if is_bn else layer)
            leaf = f"BatchNorm/{TSN_BN_NAMES[blob]}" if is_bn else f"Conv/{blob}"
            converted[f"{RELEASE_SCOPE}/{scope}/{leaf}"] = np.asarray(value)
    return converted


def torch_state_to_release(state):
    """A PyTorch port's state dict of TSN's BN-Inception ("inception_3a_1x1.weight" OIHW,
    "inception_3a_1x1_bn.running_var", …, as numpy arrays) → {release name: array}, kernels HWIO.
    Other entries (the port's classifier, BN step counters) keep their names and are reported as
    unused by a load."""
    converted = {}
    for key, value in state.items():
        layer, _, leaf = key.rpartition(".")
        value = np.asarray(value)
        if not CONV_LAYER.fullmatch(layer) or leaf == "num_batches_tracked":
            converted[key] = value
        elif layer.endswith("_bn"):
            converted[f"{RELEASE_SCOPE}/{release_scope(layer[: -len('_bn')])}/BatchNorm/{TORCH_BN_NAMES[leaf]}"] = value
        else:
            kernel = value.transpose(2, 3, 1, 0) if value.ndim == 4 else value
            converted[f"{RELEASE_SCOPE}/{release_scope(layer)}/Conv/{TORCH_CONV_NAMES[leaf]}"] = kernel
    return converted


def imagenet_weights_file():
    """`~/.keras/models/bn_inception_imagenet.npz`: TSN's ImageNet BN-Inception, converted once."""
    path = os.path.join(os.path.expanduser("~"), ".keras", "models", IMAGENET_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"no ImageNet BN-Inception weights at {path}. Keras hosts none: save TSN's ImageNet "
            "BN-Inception there as an .npz, e.g. from a PyTorch port (pretrainedmodels' "
            "bninception): np.savez(path, **{k: v.numpy() for k, v in torch.load(pth).items()}); "
            "or pass the file itself (docs/charades.md)"
        )
    return path


def _read_source(source):
    """A {name: array} view of a dict, an .npz, a TSN .npy or a TF checkpoint (reader or prefix)."""
    if isinstance(source, dict):
        return source
    if hasattr(source, "get_variable_to_shape_map"):
        return {name: source.get_tensor(name) for name in source.get_variable_to_shape_map()}
    path = os.fspath(source)
    if path.endswith(".npz"):
        with np.load(path) as data:
            values = {name: data[name] for name in data.files}
        # Release names are scoped ("…/Conv/weights"); a PyTorch state dict's are dotted.
        return values if any("/" in name for name in values) else torch_state_to_release(values)
    if path.endswith(".npy"):
        # The release's Caffe conversion is a pickled dict, and unpickling runs code from the file.
        warnings.warn(
            f"unpickling {path} runs code stored in the file; load only files you trust", UserWarning, stacklevel=3
        )
        return tsn_npy_to_release(np.load(path, allow_pickle=True, encoding="latin1").item())
    import tensorflow as tf  # only a TF checkpoint needs TensorFlow: the models build on any Keras backend

    return _read_source(tf.train.load_checkpoint(path))


def _strip_stream(name):
    return re.sub(r"^stream\d+/", "", name)


def load_release_bn_inception(model, source):
    """Loads release-named weights onto a BN-Inception backbone or ActionVLAD model, in place.

    `source`: a {release name: array} dict (names with or without the "streamN/" prefix, release
    §2.4), a `tf.train.load_checkpoint` reader, a checkpoint prefix, an `.npz` (release names, or a
    PyTorch port's state dict), or the release's TSN `.npy` (a pickle: loading it warns). Every
    backbone variable must be present; the NetVLAD and classifier weights are loaded when the source
    has them all and left as they are when it has none (an ImageNet/TSN backbone). A 3-channel conv1
    kernel is converted for a 20-channel flow model (release §4).

    Returns {"loaded": [names], "kept": [model weights left unchanged], "unused": [source names not
    used, e.g. optimizer slots and global_step]}.
    """
    values = {}
    for name, value in _read_source(source).items():
        if _strip_stream(name) in values:
            raise ValueError(f"{name}: the source holds several streams; give one stream's variables")
        values[_strip_stream(name)] = value
    entries = [(_strip_stream(name), variable, shape) for name, variable, shape in release_weight_map(model)]
    backbone_names = {name for name, _, _ in entries if name.startswith(f"{RELEASE_SCOPE}/")}
    head = [name for name, _, _ in entries if name not in backbone_names]
    missing = sorted(name for name in backbone_names if name not in values)
    if missing:
        raise ValueError(f"the source lacks {len(missing)} BN-Inception weights, e.g. {missing[:5]}")
    head_present = [name for name in head if name in values]
    if head_present and len(head_present) != len(head):
        raise ValueError(f"the source has only part of the head: {head_present}, the model needs {head}")
    loaded, kept = [], []
    for name, variable, release_shape in entries:
        if name not in values:
            kept.append(name)
            continue
        value = np.asarray(values[name])
        is_first_conv = name == f"{RELEASE_SCOPE}/conv1/7x7_s2/Conv/weights"
        if is_first_conv and value.shape[2] == 3 and release_shape[2] != 3:
            value = flow_kernel_from_rgb(value, release_shape[2])
        if value.shape != release_shape:
            raise ValueError(f"{name}: the source has shape {value.shape}, the model needs {release_shape}")
        variable.assign(value.reshape(tuple(variable.shape)).astype(variable.dtype))
        loaded.append(name)
    used = set(loaded)
    return {"loaded": loaded, "kept": kept, "unused": sorted(n for n in values if n not in used)}


def load_bn_inception_weights(model, weights):
    """Loads `weights` (see `build_bn_inception`) onto a model built by `build_bn_inception`."""
    if weights == "imagenet":
        weights = imagenet_weights_file()
    if isinstance(weights, (str, os.PathLike)) and os.fspath(weights).endswith(".weights.h5"):
        if not os.path.exists(weights):
            raise FileNotFoundError(f"BN-Inception weights file not found: {weights}")
        model.load_weights(weights)
        return
    if isinstance(weights, (str, os.PathLike)) and os.fspath(weights).endswith((".npz", ".npy")):
        if not os.path.exists(weights):
            raise FileNotFoundError(f"BN-Inception weights file not found: {weights}")
    load_release_bn_inception(model, weights)
