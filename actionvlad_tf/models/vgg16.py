"""VGG-16 feature extractor with the release's pre-ReLU taps (release §1.1, §4).

The topology and layer names are Keras's `keras.applications.VGG16` (`block1_conv1` … `block5_conv3`,
`fc1`, `fc2`), so its ImageNet weight files load by name. Three convolutions differ from Keras: the
ReLU of conv4_3 (`block4_conv3`), conv5_3 (`block5_conv3`) and fc7 (`fc2`) is a separate layer
(`*_relu`), so the pre-ReLU maps that ActionVLAD pools can be tapped (release §1.1: NetVLAD on the
post-ReLU map "led to low performance").

Expected input (release §3.5): RGB frames as BGR in [0, 255] minus [104, 117, 123]; flow stacks of
20 channels (x1, y1, …, x10, y10) in [0, 255] minus 128. Keras's ImageNet VGG16 weights are the
original Caffe weights and expect the same BGR convention.
"""

import os

import keras
import numpy as np

from actionvlad_tf import zoo
from actionvlad_tf.atomic import atomic_keras_output
from actionvlad_tf.models.parts import flow_kernel_from_rgb, set_trainable_from
from actionvlad_tf.specs import INPUT_CHANNELS

IMAGENET_WEIGHTS = {
    # (url, md5) exactly as keras.applications.vgg16 downloads them.
    False: (
        "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
        "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "6d6bbae143d832006294945121d1f1fc",
    ),
    True: (
        "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
        "vgg16_weights_tf_dim_ordering_tf_kernels.h5",
        "64373286793e3c8b2b4e3219cbf3544b",
    ),
}

# (block, number of convs, channels), as VGG-16 (times the width multiplier, `scaled_width`).
VGG16_BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512))
PRE_RELU_LAYERS = ("block4_conv3", "block5_conv3", "fc2")
CONV_ENDPOINTS = {"conv4": "block4_conv3", "conv5": "block5_conv3", "fc7": "fc2"}
# The first trained layer for each endpoint: the paper trains "until the block of layers just before
# the ActionVLAD layer" (Sec. 4.3): conv5_1 for conv5, conv4_1 for conv4, fc7 for fc7.
FIRST_TRAINABLE = {"conv5": "block5_conv1", "conv4": "block4_conv1", "fc7": "fc2"}


FC_WIDTH = 4096  # fc6 (`fc1`) and fc7 (`fc2`)


def scaled_width(channels, width=1.0):
    """`channels` (a VGG-16 layer width) times the width multiplier, rounded, at least 1."""
    if not width > 0:
        raise ValueError(f"width must be positive, got {width!r}")
    return max(1, int(round(channels * width)))


def conv_layer_names():
    return [f"block{b}_conv{i}" for b, n, _ in VGG16_BLOCKS for i in range(1, n + 1)]


def build_vgg16(
    modality="rgb",
    conv_endpoint="conv5",
    weights=None,
    input_shape=None,
    weight_decay=0.0,
    include_top=False,
    num_classes=None,
    fc_dropout=0.8,
    trainable_from=None,
    width=1.0,
    name="vgg16",
):
    """A VGG-16 model from frames [N, H, W, C] to the pre-ReLU `conv_endpoint` map.

    Args:
        modality: "rgb" (3 channels) or "flow" (20 channels), or an int number of channels.
        conv_endpoint: "conv5" (pre-ReLU conv5_3, [N, H/16, W/16, 512], the ActionVLAD default),
            "conv4" (pre-ReLU conv4_3, [N, H/8, W/8, 512]) or "fc7" (pre-ReLU fc7, [N, 1, 1, 4096];
            needs a fixed `input_shape`). Ignored when `include_top` is set.
        weights: None (random), "imagenet" (Keras's file, downloaded where a network is reachable),
            a shipped name (`actionvlad_tf.zoo`, e.g. "demo_standin", the offline stand-in) or a
            path to a `.h5` / `.weights.h5` weights file with Keras VGG16 layer names.
        input_shape: (H, W, C) or (H, W); default (None, None, C) for conv endpoints.
        weight_decay: the release's slim L2 (wd·Σw²/2, release §1.6), applied as L2(wd/2) to conv
            and FC kernels only.
        include_top: build fc6–fc8 and return per-frame logits [N, num_classes] (the frame-level
            two-stream network, release §1.4 pooling None).
        num_classes: classes of fc8 (`predictions`) with include_top.
        fc_dropout: drop rate after fc6 and fc7 (release `--dropout` 0.8, i.e. keep 0.2); also
            used after fc6 for the fc7 endpoint (release §8 row 21).
        trainable_from: name of the first trainable layer; earlier layers are frozen. Default: the
            layer before the endpoint's block (conv5 → block5_conv1, paper Sec. 3.4).
        width: width multiplier: conv widths 64·w … 512·w, fc6 / fc7 4096·w (`scaled_width`);
            1.0 is the paper's VGG-16. The built layers carry their widths, so a saved `.keras`
            model reloads at its width.
        name: the model name.
    """
    channels = INPUT_CHANNELS[modality] if isinstance(modality, str) else int(modality)
    if conv_endpoint not in CONV_ENDPOINTS:
        raise ValueError(f"conv_endpoint must be one of {sorted(CONV_ENDPOINTS)}, got {conv_endpoint!r}")
    needs_fc = include_top or conv_endpoint == "fc7"
    if input_shape is None:
        input_shape = (224, 224, channels) if needs_fc else (None, None, channels)
    elif len(input_shape) == 2:
        input_shape = tuple(input_shape) + (channels,)
    if input_shape[-1] != channels:
        raise ValueError(f"modality {modality!r} has {channels} channels, input_shape says {input_shape[-1]}")
    if needs_fc and None in input_shape[:2]:
        raise ValueError("fc6/fc7 need a fixed input_shape (H, W)")
    if include_top and not num_classes:
        raise ValueError("include_top needs num_classes")

    regularizer = keras.regularizers.L2(weight_decay / 2.0) if weight_decay else None
    stop_at = None if include_top else CONV_ENDPOINTS[conv_endpoint]

    inputs = keras.Input(shape=input_shape, name="frames")
    x = inputs
    endpoint = None
    for block, num_convs, channels_out in VGG16_BLOCKS:
        for i in range(1, num_convs + 1):
            layer_name = f"block{block}_conv{i}"
            pre_relu = layer_name in PRE_RELU_LAYERS
            x = keras.layers.Conv2D(
                scaled_width(channels_out, width),
                3,
                padding="same",
                activation=None if pre_relu else "relu",
                kernel_regularizer=regularizer,
                name=layer_name,
            )(x)
            if layer_name == stop_at:
                endpoint = x
                break
            if pre_relu:
                x = keras.layers.ReLU(name=f"{layer_name}_relu")(x)
        if endpoint is not None:
            break
        x = keras.layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)
    if endpoint is None:
        x = keras.layers.Flatten(name="flatten")(x)
        x = keras.layers.Dense(
            scaled_width(FC_WIDTH, width), activation="relu", kernel_regularizer=regularizer, name="fc1"
        )(x)
        x = keras.layers.Dropout(fc_dropout, name="fc1_dropout")(x)
        x = keras.layers.Dense(scaled_width(FC_WIDTH, width), kernel_regularizer=regularizer, name="fc2")(x)
        if include_top:
            x = keras.layers.ReLU(name="fc2_relu")(x)
            x = keras.layers.Dropout(fc_dropout, name="fc2_dropout")(x)
            endpoint = keras.layers.Dense(
                num_classes, kernel_regularizer=regularizer, dtype="float32", name="predictions"
            )(x)
        else:
            endpoint = keras.layers.Reshape((1, 1, scaled_width(FC_WIDTH, width)), name="fc7_map")(x)
    model = keras.Model(inputs, endpoint, name=name)

    if weights is not None:
        load_vgg16_weights(model, weights)
    if include_top:
        # Frame-level two-stream network (release §2.5 005 script): fc6, fc7 and fc8 trained.
        trainable_from = trainable_from or "fc1"
    set_trainable_from(model, trainable_from or FIRST_TRAINABLE[conv_endpoint])
    return model


def is_vgg16(model):
    """Whether `model` is a model built by `build_vgg16`."""
    return any(layer.name == "block1_conv1" for layer in model.layers)


def first_trainable_layer(backbone):
    """The first layer stage 2 trains in a model built by `build_vgg16`: `FIRST_TRAINABLE` of its
    endpoint; for the frame classifier (fc8) the last conv, conv5_3."""
    names = [layer.name for layer in backbone.layers]
    if "fc2" in names and "predictions" not in names:
        return FIRST_TRAINABLE["fc7"]
    output_layer = backbone.layers[-1].name
    for endpoint, layer_name in CONV_ENDPOINTS.items():
        if output_layer == layer_name:
            return FIRST_TRAINABLE[endpoint]
    return conv_layer_names()[-1]


def imagenet_weights_file(include_top=False):
    """Path of Keras's ImageNet VGG16 weights, downloading them where a network is reachable."""
    url, md5 = IMAGENET_WEIGHTS[include_top]
    fname = os.path.basename(url)
    try:
        return keras.utils.get_file(fname, url, cache_subdir="models", file_hash=md5)
    except Exception as error:  # noqa: BLE001 - any download failure gets the same advice
        cache = os.path.join(os.path.expanduser("~"), ".keras", "models", fname)
        raise RuntimeError(
            f"Could not obtain the ImageNet VGG16 weights ({error}). Download {url} on a machine "
            f"with network access and place it at {cache}, or pass weights=<path to the .h5 file>."
        ) from error


def load_vgg16_weights(model, weights):
    """Loads ImageNet, shipped (`actionvlad_tf.zoo`) or file weights into a model built by
    `build_vgg16`, by layer name.

    A 20-channel flow model receives the RGB first-layer kernel converted by
    `flow_kernel_from_rgb` (release §4) when the file holds a 3-channel one.
    """
    include_top = any(layer.name == "fc1" for layer in model.layers)
    path = imagenet_weights_file(include_top) if weights == "imagenet" else zoo.resolve(weights)
    if not os.path.exists(path):
        raise FileNotFoundError(f"VGG16 weights file not found: {path}")
    source = _read_h5_weights(path)
    for layer in model.layers:
        if not layer.weights or layer.name == "predictions":
            continue
        if layer.name not in source:
            if layer.name in ("fc1", "fc2") and weights == "imagenet":
                raise ValueError(f"{path} has no {layer.name} weights")
            if layer.name in conv_layer_names():
                raise ValueError(f"{path} has no weights for layer {layer.name}")
            continue
        values = source[layer.name]
        kernel, bias = values[0], values[1]
        expected = tuple(layer.weights[0].shape)
        if layer.name == "block1_conv1" and kernel.shape[2] == 3 and expected[2] != 3:
            kernel = flow_kernel_from_rgb(kernel, expected[2])
        if kernel.shape != expected:
            file_width = source["block1_conv1"][0].shape[-1] / VGG16_BLOCKS[0][2]
            model_width = model.get_layer("block1_conv1").weights[0].shape[-1] / VGG16_BLOCKS[0][2]
            hint = (
                f" (the file is a width-{file_width:g} VGG-16, the model width {model_width:g}: "
                f"build it with width={file_width:g}, --backbone_width={file_width:g})"
                if file_width != model_width
                else ""
            )
            raise ValueError(
                f"{path}: layer {layer.name} kernel has shape {kernel.shape}, the model needs {expected}{hint}"
            )
        layer.set_weights([kernel, bias])


def _read_h5_weights(path):
    """{layer name: [kernel, bias]} from a Keras 2 `.h5` (keras.applications) or Keras 3
    `.weights.h5` file."""
    import h5py

    weights = {}
    with h5py.File(path, "r") as f:
        if "layer_names" in f.attrs:  # Keras 2 / legacy h5 weights, as keras.applications ships
            for name in f.attrs["layer_names"]:
                name = name.decode() if isinstance(name, bytes) else name
                group = f[name]
                names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
                if names:
                    weights[name] = [np.asarray(group[n]) for n in names]
            return weights
        # Keras 3 `.weights.h5` (save_weights): layers are stored under class-based names in
        # creation order (conv2d, conv2d_1, …; dense, dense_1, …), which is VGG-16's layer order.
        groups = {"conv2d": [], "dense": []}
        for key, item in f["layers"].items():
            prefix, _, index = key.rpartition("_") if key[-1].isdigit() else (key, "", "0")
            if prefix in groups and "vars" in item and len(item["vars"]) >= 2:
                groups[prefix].append(
                    (int(index), [np.asarray(item["vars"][str(i)]) for i in range(len(item["vars"]))])
                )
        names = {"conv2d": conv_layer_names(), "dense": ["fc1", "fc2", "predictions"]}
        for prefix, found in groups.items():
            for name, (_, values) in zip(names[prefix], sorted(found, key=lambda pair: pair[0])):
                weights[name] = values
    return weights


PIXEL_SCALE = 64.0  # about the standard deviation of mean-subtracted 0-255 pixels


def he_initialise(model, seed, pixel_scale=PIXEL_SCALE):
    """He-normal kernels and zero biases for every conv / dense layer of `model`; the first conv's
    kernel divided by `pixel_scale` (inputs are 0-255 minus means) so activations start near unit
    variance. Plain VGG-16 (no batch norm) under Keras's default Glorot init shrinks ~2× per layer.
    Returns `model`."""
    initializer = keras.initializers.HeNormal(seed=seed)
    first = True
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            he_initialise(layer, seed, pixel_scale if first else 1.0)
            first = False
        elif isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            scale = 1.0 / pixel_scale if first else 1.0
            layer.kernel.assign(initializer(layer.kernel.shape) * scale)
            layer.bias.assign(keras.ops.zeros_like(layer.bias))
            first = False
    return model


def write_random_vgg16(path, image_size, seed, width=1.0):
    """A seeded He-initialised VGG-16 (`he_initialise`; fc6/fc7 sized for `image_size`), written once
    to `path`: what a backbone trained from nothing starts from."""
    if os.path.exists(path):
        return path
    keras.utils.set_random_seed(seed)
    model = he_initialise(build_vgg16(conv_endpoint="fc7", input_shape=(image_size, image_size), width=width), seed)
    with atomic_keras_output(path) as temporary:
        model.save_weights(temporary)
    return path
