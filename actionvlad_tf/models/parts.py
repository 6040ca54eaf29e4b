"""Finding the parts of a model built here: its pooling layers, backbones, release head variables
and the modality of each video input; what every backbone uses: freezing below a layer and the
cross-modality first conv."""

import keras
import numpy as np

from actionvlad_tf.layers import NetVLADPooling
from actionvlad_tf.specs import INPUT_CHANNELS

MODALITY_BY_CHANNELS = {channels: modality for modality, channels in INPUT_CHANNELS.items()}


def flow_kernel_from_rgb(kernel, num_channels=20):
    """Cross-modality first conv (release §4, TSN): average the RGB kernel over its input channels
    and tile it `num_channels` times, no rescaling. [3, 3, 3, 64] → [3, 3, num_channels, 64]."""
    kernel = np.asarray(kernel)
    return np.repeat(kernel.mean(axis=2, keepdims=True), num_channels, axis=2)


def set_trainable_from(model, first_trainable):
    """Freezes every layer of `model` before `first_trainable` and unfreezes the rest."""
    names = [layer.name for layer in model.layers]
    if first_trainable not in names:
        raise ValueError(f"{first_trainable!r} is not a layer of {model.name}: {names}")
    start = names.index(first_trainable)
    for index, layer in enumerate(model.layers):
        layer.trainable = index >= start


def pooling_layers(model):
    """The pooling layers of a model built here, any registered pooling (named "pooling" or
    "<stream>_pooling" by the model builders; nested models included)."""
    found = []
    for layer in model.layers:
        if layer.name == "pooling" or layer.name.endswith("_pooling"):
            found.append(layer)
        elif isinstance(layer, keras.Model):
            found.extend(pooling_layers(layer))
    return found


def backbones(model):
    """The per-frame backbone models of a model built here (nested models included)."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found.extend(backbones(layer) if any(isinstance(l, keras.Model) for l in layer.layers) else [layer])
    return found


def release_head_variables(model, prefix="stream0/"):
    """[(release checkpoint name, variable)] of the NetVLAD and the linear classifier of a
    single-stream model built here (release §1.7: `NetVLAD/{centers, vlad_W, vlad_B}`,
    `classifier/logits/{weights, biases}`; vlad_W is [1, 1, D, K] there, [D, K] here)."""
    pairs = []
    for layer in pooling_layers(model):
        if isinstance(layer, NetVLADPooling):
            pairs += [
                (f"{prefix}NetVLAD/centers", layer.centers),
                (f"{prefix}NetVLAD/vlad_W", layer.assignment_kernel),
                (f"{prefix}NetVLAD/vlad_B", layer.assignment_bias),
            ]
    for layer in model.layers:
        if layer.name == "classifier":
            pairs += [
                (f"{prefix}classifier/logits/weights", layer.kernel),
                (f"{prefix}classifier/logits/biases", layer.bias),
            ]
    return pairs


def model_streams(model):
    """{modality: (frames or None, image size, channels)} of a model's video input(s), in the
    order rgb, flow. Modality is read from the channel count (3 RGB, 20 flow)."""
    inputs = model.input if isinstance(model.input, dict) else {"single": model.input}
    streams = {}
    for tensor in inputs.values():
        shape = tuple(tensor.shape)
        if len(shape) != 5 or shape[2] is None or shape[2] != shape[3]:
            raise ValueError(
                f"{model.name}: input {tensor.name} has shape {shape}; expected videos "
                "[B, T, S, S, C] with a fixed square crop S"
            )
        modality = MODALITY_BY_CHANNELS.get(shape[-1])
        if modality is None or modality in streams:
            raise ValueError(
                f"{model.name}: cannot tell the modality of input {tensor.name} "
                f"({shape[-1]} channels; expected one 3-channel RGB and/or one 20-channel flow input)"
            )
        streams[modality] = (shape[1], shape[2], shape[-1])
    return {m: streams[m] for m in ("rgb", "flow") if m in streams}


def embedding_model(model, descriptors=False):
    """A model on `model`'s inputs whose outputs are `logits` (the model's) and `embedding`: the
    pooled vector its classifier reads (K·D for ActionVLAD, the paper's video descriptor; for a
    late-fusion model the RGB then flow streams' vectors, concatenated). With `descriptors`, also
    `descriptors_<i>`, the input of `pooling_layers(model)[i]` (the per-frame maps [B, F, h, w, D]).
    Shares `model`'s weights; the pooled vector is computed once, not by a second pass.
    Returns None for a model without a layer named `classifier` (the frame-averaging baseline)."""
    names = [layer.name for layer in model.layers]
    if "late_fusion" in names:
        streams = [m for m in ("rgb", "flow") if f"{m}_actionvlad" in names]
        inputs = model.input if isinstance(model.input, dict) else dict(zip(streams, model.inputs))
        parts = [embedding_model(model.get_layer(f"{m}_actionvlad"), descriptors)(inputs[m]) for m in streams]
        outputs = {
            "logits": model.get_layer("late_fusion")([p["logits"] for p in parts]),
            "embedding": keras.layers.Concatenate(name="embedding")([p["embedding"] for p in parts]),
        }
        maps = [p[key] for p in parts for key in sorted(k for k in p if k.startswith("descriptors_"))]
    elif "classifier" in names:
        outputs = {"logits": model.output, "embedding": model.get_layer("classifier").input}
        maps = [layer.input for layer in pooling_layers(model)]
    else:
        return None
    if descriptors:
        outputs.update({f"descriptors_{i}": tensor for i, tensor in enumerate(maps)})
    return keras.Model(model.input, outputs, name=f"{model.name}_embedding")
