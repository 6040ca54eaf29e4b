"""One test harness for the project's Keras layers and models, in the spirit of keras-hub's
`run_layer_test` / `run_model_saving_test`: every layer gets the same checks (config round trip,
eager = symbolic, compute_output_shape, one fitted step, `.keras` round trip, mixed precision,
masks), on whatever Keras backend the run uses."""

import keras
import numpy as np

MIXED_POLICIES = ("mixed_bfloat16", "mixed_float16")


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


def check_config_round_trip(obj, init_kwargs=()):
    """`from_config(get_config())` gives the same config; every constructor argument is in it."""
    config = obj.get_config()
    missing = [key for key in init_kwargs if key not in config]
    assert not missing, f"{type(obj).__name__}.get_config() lacks {missing}"
    clone = type(obj).from_config(config)
    assert clone.get_config() == config
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(obj))
    assert type(restored) is type(obj)  # registered serializable: no custom_objects
    return clone


def run_model_saving_test(model, inputs, tmp_path, name="model"):
    """A model saved as `.keras` reloads (no custom_objects) and predicts exactly the same; its
    functional config rebuilds it. Returns the reloaded model."""
    path = tmp_path / f"{name}.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(to_numpy(reloaded(inputs)), to_numpy(model(inputs)))
    rebuilt = keras.Model.from_config(model.get_config())
    assert [layer.name for layer in rebuilt.layers] == [layer.name for layer in model.layers]
    return reloaded


def _mixed_precision_outputs(layer_cls, init_kwargs, input_data, weights):
    outputs = {}
    for policy in MIXED_POLICIES:
        keras.mixed_precision.set_global_policy(policy)
        try:
            layer = layer_cls(**init_kwargs)
            layer(input_data)
            layer.set_weights(weights)
            assert all(w.dtype == "float32" for w in layer.weights), f"{policy}: variables are not float32"
            output = layer(input_data)
            assert keras.backend.standardize_dtype(output.dtype) == layer.compute_dtype, policy
            outputs[policy] = to_numpy(keras.ops.cast(output, "float32"))
        finally:
            keras.mixed_precision.set_global_policy("float32")
    return outputs


def run_layer_test(
    layer_cls,
    init_kwargs,
    input_data,
    expected_output_shape,
    tmp_path,
    *,
    mixed_precision_atol=None,
    padded_input=None,
    mask=None,
    num_classes=3,
):
    """The checks every layer gets. Returns the tested layer (built, trained one step).

    Args:
        layer_cls, init_kwargs: the layer and its constructor arguments.
        input_data: a float32 numpy batch [B, ...].
        expected_output_shape: the output shape for `input_data`.
        mixed_precision_atol: if set, the layer runs under each of MIXED_POLICIES with the float32
            layer's weights: variables stay float32, the output has the compute dtype, is finite
            and within this of the float32 output (inputs are rounded to the compute dtype).
        padded_input, mask: if set, `layer(padded_input, mask=mask)` must equal `layer(input_data)`
            (masked positions are ignored exactly).
    """
    layer = layer_cls(**init_kwargs)
    check_config_round_trip(layer, init_kwargs)

    eager = to_numpy(layer(input_data))
    assert eager.shape == tuple(expected_output_shape)
    assert tuple(layer.compute_output_shape(input_data.shape)) == tuple(expected_output_shape)

    inputs = keras.Input(input_data.shape[1:])
    outputs = layer(inputs)
    assert tuple(outputs.shape[1:]) == tuple(expected_output_shape[1:])
    np.testing.assert_allclose(to_numpy(keras.Model(inputs, outputs)(input_data)), eager, rtol=1e-6, atol=1e-6)

    if mask is not None:
        np.testing.assert_allclose(to_numpy(layer(padded_input, mask=mask)), eager, rtol=1e-5, atol=1e-6)

    if mixed_precision_atol is not None:
        for policy, got in _mixed_precision_outputs(layer_cls, init_kwargs, input_data, layer.get_weights()).items():
            assert np.isfinite(got).all(), policy
            np.testing.assert_allclose(got, eager, atol=mixed_precision_atol, err_msg=policy)

    model = keras.Model(inputs, keras.layers.Dense(num_classes, name="head")(outputs))
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = [to_numpy(w).copy() for w in layer.trainable_weights]
    labels = np.arange(len(input_data)) % num_classes
    history = model.fit(input_data, labels, epochs=1, batch_size=len(input_data), verbose=0)
    assert np.isfinite(history.history["loss"][0])
    if before:
        assert any(not np.array_equal(b, to_numpy(w)) for b, w in zip(before, layer.trainable_weights)), (
            "one fitted step left every trainable weight unchanged"
        )
    run_model_saving_test(model, input_data, tmp_path, name=layer.name)
    return layer


def run_backbone_test(
    name, endpoint_shapes, stage2_first, tmp_path, *, image_size=32, width=1.0, frame_classifier_shape=None
):
    """keras-hub's `run_backbone_test` for the backbone registered as `name`, built at a tiny size:

    * `endpoint_shapes` {conv_endpoint: (h, w, D)}: the map each endpoint gives on
      `image_size`² frames, eagerly and symbolically, and the entry recognises what it built;
    * `stage2_first` {conv_endpoint: layer}: the first layer stage 2 trains (`set_training_stage`
      on an ActionVLAD model of that endpoint); stage 1 trains none of the backbone, stage 0 all of
      what can train, and nothing before the stage-2 layer trains;
    * a `.keras` round trip of an ActionVLAD model on the backbone predicts the same;
    * a flow model takes the entry's flow channels (`input_channels["flow"]`) and predicts;
    * the frame baseline (fc8) gives per-frame logits of `frame_classifier_shape` when the entry
      has a frame classifier, else a clear error.
    """
    from actionvlad_tf.models import backbones, build_model, set_training_stage
    from actionvlad_tf.models.registry import backbone_entry
    from actionvlad_tf.specs import ModelSpec

    entry = backbone_entry(name)
    rng = np.random.default_rng(0)
    frames = rng.normal(size=(2, image_size, image_size, entry.input_channels["rgb"])).astype("float32")
    for endpoint, shape in endpoint_shapes.items():
        net = entry.build("rgb", endpoint, None, image_size, 0.0, None, f"rgb_{name}", width)
        assert entry.recognises(net), f"{name}: its entry does not recognise the {endpoint} backbone it built"
        assert tuple(net(frames).shape) == (2,) + tuple(shape), endpoint
        assert tuple(net.compute_output_shape(frames.shape)) == (2,) + tuple(shape), endpoint

    def trained_layers(backbone):
        return [layer.name for layer in backbone.layers if layer.trainable_weights]

    spec = ModelSpec(3, backbone=name, num_clusters=2, image_size=image_size, frames_per_video=2, backbone_width=width)
    for endpoint, first in stage2_first.items():
        model = build_model(spec.replace(conv_endpoint=endpoint))
        (backbone,) = backbones(model)
        with_weights = [layer.name for layer in backbone.layers if layer.weights]
        set_training_stage(model, 1)
        assert trained_layers(backbone) == [], endpoint
        set_training_stage(model, 2)
        assert entry.first_trainable(backbone) == first, endpoint
        start = [layer.name for layer in backbone.layers].index(first)
        trained = trained_layers(backbone)
        assert trained and all([layer.name for layer in backbone.layers].index(n) >= start for n in trained), endpoint
        set_training_stage(model, 0)
        assert trained_layers(backbone)[0] == with_weights[0], endpoint

    endpoint = next(iter(stage2_first))
    videos = {
        stream: rng.normal(size=(1, 2, image_size, image_size, channels)).astype("float32")
        for stream, channels in entry.input_channels.items()
    }
    model = build_model(spec.replace(conv_endpoint=endpoint))
    run_model_saving_test(model, videos["rgb"], tmp_path, name=f"{name}_actionvlad")

    flow = build_model(spec.replace(conv_endpoint=endpoint, modality="flow"))
    assert flow.input.shape[-1] == entry.input_channels["flow"]
    assert backbones(flow)[0].input.shape[-1] == entry.input_channels["flow"]
    assert tuple(flow(videos["flow"]).shape) == (1, 3)

    baseline = spec.replace(conv_endpoint="fc8", frames_per_video=1)
    if entry.frame_classifier is None:
        try:
            build_model(baseline)
        except ValueError as error:
            assert "frame baseline" in str(error) and name in str(error), error
        else:
            raise AssertionError(f"{name} has no frame classifier but the frame baseline built")
        return
    model = build_model(baseline)
    (classifier,) = backbones(model)
    assert tuple(classifier(frames).shape) == (2,) + tuple(frame_classifier_shape)
    assert tuple(model(videos["rgb"][:, :1]).shape) == (1, 3)
