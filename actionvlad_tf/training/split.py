"""Splitting a video model at its frozen boundary, so the frozen part can be computed once (a
feature cache) and only the trainable part is trained.

Stage 1 (release §2.5: only the classifier trains): prefix = frames → pooled vector (the VLAD,
or the avg/max pool), suffix = vector → (dropout) → classifier → logits.
Stage 2 (conv5_1 onwards trains): prefix = frames → per-frame pool4 output [B, T, h, w, 512],
suffix = pool4 maps → conv5_1 … conv5_3 → ActionVLAD → classifier → logits.
The two-stream frame baseline (fc6 onwards trains): prefix = frames → flattened pool5.

`bridge(model, start, end)` is the frozen model between two splits' features (pool4 maps → conv5
→ pooled vector): stage 1's cache can be computed from stage 2's without reading the frames again.

Both parts share the model's layers (and so its weights): training the suffix trains the model.
"""

import dataclasses

import keras

from actionvlad_tf.models import FoldFrames, UnfoldFrames


@dataclasses.dataclass
class FrozenSplit:
    """prefix: frozen model, inputs as the model's → features (None when nothing is frozen);
    suffix: trainable model, features → logits (the model itself when nothing is frozen);
    boundary: the name of the layer whose input (inside the backbone) or output (after it) the
    features are."""

    prefix: keras.Model
    suffix: keras.Model
    boundary: str


def _back_over_dropout(layers, index):
    """Index of the last layer before `index` that is not a Dropout: the features must be
    deterministic, so a dropout right before the first trained layer belongs to the suffix."""
    index -= 1
    while index >= 0 and isinstance(layers[index], keras.layers.Dropout):
        index -= 1
    return index


def split_at_frozen_boundary(model):
    """Splits a single-stream model of `actionvlad_tf.models` (ActionVLAD with any pooling, or the
    frame classifier) where its frozen layers end, as its current trainable flags say (set them
    with `set_training_stage` first).

    `suffix(prefix(x))` equals `model(x)`, and `suffix.trainable_variables` are the model's. A
    backbone boundary must cut its graph (true for VGG-16, a chain).

    Raises:
        ValueError for a multi-input model (split each stream's model instead) or one with nothing
        trainable.
    """
    backbone = _backbone(model)
    weighted = [layer for layer in backbone.layers if layer.weights]
    first = next((layer for layer in weighted if layer.trainable), None)
    if first is weighted[0]:
        return FrozenSplit(None, model, weighted[0].name)
    if first is not None:
        return _split_inside_backbone(model, backbone, first)
    layers = model.layers
    trained = [i for i, layer in enumerate(layers) if layer.weights and layer.trainable and layer is not backbone]
    if not trained:
        raise ValueError(f"{model.name} has no trainable layer")
    boundary = layers[_back_over_dropout(layers, trained[0])]
    prefix = keras.Model(model.input, boundary.output, name=f"{model.name}_frozen")
    features = keras.Input(shape=boundary.output.shape[1:], name=f"{boundary.name}_features")
    suffix = keras.Model(
        features, _replay(layers[layers.index(boundary) + 1 :], features), name=f"{model.name}_trainable"
    )
    return FrozenSplit(prefix, suffix, boundary.name)


def split_before(model, layer_name):
    """Splits a single-stream model inside its backbone before the backbone layer `layer_name`,
    whatever its trainable flags: prefix = frames → that layer's input per frame [B, T, h, w, C],
    suffix = the rest (the model's own layers, trainable as they are). E.g. the frame baseline cut
    where ActionVLAD's stage 2 starts, to train it on the maps of ActionVLAD's cache."""
    backbone = _backbone(model)
    return _split_inside_backbone(model, backbone, backbone.get_layer(layer_name))


def bridge(model, start, end):
    """The frozen model from the features of `start` (a `FrozenSplit` of `model` cut inside its
    backbone, per-frame maps [B, T, h, w, C]) to those of `end` (one cut after the backbone, e.g.
    stage 1's pooled vector): `end.prefix(x)` equals `bridge(start.prefix(x))`. Its layers are the
    model's (shared weights); call it with training=False."""
    backbone = _backbone(model)
    inner = {layer.name for layer in backbone.layers}
    if start.prefix is None or start.boundary not in inner:
        raise ValueError(f"{model.name}: the bridge starts at a split inside the backbone, not at {start.boundary!r}")
    if end.prefix is None or end.boundary in inner:
        raise ValueError(f"{model.name}: the bridge ends at a split after the backbone, not at {end.boundary!r}")
    features = keras.Input(shape=start.prefix.output.shape[1:], name=f"{start.boundary}_features")
    x = _from_inside(model, backbone, backbone.get_layer(start.boundary), features, until=end.boundary)
    return keras.Model(features, x, name=f"{model.name}_{start.boundary}_to_{end.boundary}")


def _backbone(model):
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if len(model.inputs) != 1 or len(nested) != 1:
        raise ValueError(f"{model.name}: only single-stream models (one input, one backbone) can be split")
    return nested[0]


def _from_inside(model, backbone, boundary, features, until=None, name=None):
    """The model's graph replayed from per-frame maps `features` (the input of the backbone's
    layer `boundary`) to the output of its top-level layer `until` (default: its output); `name`:
    the backbone's rest as a model."""
    rest = keras.Model(boundary.input, backbone.output, name=name or f"{backbone.name}_from_{boundary.name}")
    per_frame = rest(FoldFrames(name=f"{rest.name}_fold")(features))
    x = UnfoldFrames(name=f"{rest.name}_unfold")([per_frame, features])
    top = model.layers
    unfold = next(i for i, layer in enumerate(top) if isinstance(layer, UnfoldFrames))
    last = len(top) if until is None else top.index(model.get_layer(until)) + 1
    return _replay(top[unfold + 1 : last], x)


def _replay(layers, x):
    for layer in layers:
        x = layer(x)
    return x


def _split_inside_backbone(model, backbone, first):
    layers = backbone.layers
    boundary = layers[_back_over_dropout(layers, layers.index(first)) + 1]
    frozen = keras.Model(backbone.input, boundary.input, name=f"{backbone.name}_frozen")
    video = keras.Input(shape=model.input.shape[1:], name=model.input.name)
    per_frame = frozen(FoldFrames(name=f"{frozen.name}_fold")(video))
    prefix = keras.Model(
        video, UnfoldFrames(name=f"{frozen.name}_unfold")([per_frame, video]), name=f"{model.name}_frozen"
    )
    features = keras.Input(shape=prefix.output.shape[1:], name=f"{boundary.name}_features")
    rest = _from_inside(model, backbone, boundary, features, name=f"{backbone.name}_trainable")
    suffix = keras.Model(features, rest, name=f"{model.name}_trainable")
    return FrozenSplit(prefix, suffix, boundary.name)
