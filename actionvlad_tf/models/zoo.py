"""Backbone weights this project makes itself: the offline stand-in for ImageNet, and a seeded
random VGG-16 (what the demo measured before there was a stand-in)."""
import json
import os

from actionvlad_tf.atomic import atomic_keras_output
from actionvlad_tf.models.vgg16 import build_vgg16

PIXEL_SCALE = 64.0  # about the standard deviation of mean-subtracted 0-255 pixels
PRETRAINED = {}  # name -> weights file shipped in the package (with a JSON card beside it)


def weights_path(name):
    if name not in PRETRAINED:
        raise KeyError(f"no pretrained backbone named {name!r}; known: {', '.join(PRETRAINED) or 'none'}")
    return PRETRAINED[name]


def card(name):
    """The JSON card beside a shipped weights file: how it was made and what it scores."""
    path = weights_path(name)
    with open(os.path.splitext(os.path.splitext(path)[0])[0] + ".json", encoding="utf-8") as f:
        return json.load(f)


def write_random_vgg16(path, image_size, seed, width=1.0):
    """A seeded He-initialised VGG-16 (fc6/fc7 sized for `image_size`), written once to `path`.
    Glorot-initialised (Keras's default) plain VGG-16 features shrink ~2× per layer; He keeps their
    scale, and the first kernel is divided by the pixel scale (inputs are 0-255 minus means) so
    activations stay near unit variance."""
    if os.path.exists(path):
        return path
    import keras

    keras.utils.set_random_seed(seed)
    kwargs = {} if width == 1.0 else {"width": width}
    model = build_vgg16(conv_endpoint="fc7", input_shape=(image_size, image_size), **kwargs)
    initializer = keras.initializers.HeNormal(seed=seed)
    for layer in model.layers:
        if layer.weights:
            scale = 1.0 / PIXEL_SCALE if layer.name == "block1_conv1" else 1.0
            layer.weights[0].assign(initializer(layer.weights[0].shape) * scale)
    with atomic_keras_output(path) as temporary:
        model.save_weights(temporary)
    return path
