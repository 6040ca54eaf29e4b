"""SavedModel export for serving (TF Serving's versioned layout) and the `.keras` file beside it.

`EXPORT_DIR/<version>/` is a SavedModel with two signatures:

* `serving_default`: one video as raw uint8 RGB frames `frames` [T, H, W, 3] of any H and W (and,
  for a two-stream model, flow stacks `flow` [T, H, W, 20] uint8, x/y interleaved, 128 = still).
  In the graph it does what evaluation does (`data.augment.preprocess_for_eval`, release §3.4-3.7):
  TF1 bilinear resize to 256 × 340, the release's 1 or 5 crops, RGB → BGR minus [104, 117, 123],
  flow minus 128, all crops·T frames in one bag. Outputs `logits` [C], `probabilities` [C] (softmax
  of the logits; of the fused logits for two streams), `top5_indices` [k] int32 and `top5_classes`
  [k] string (class names baked in), k = min(5, C).
* `preprocessed`: already preprocessed batches [B, crops·T, S, S, C] float32 (`rgb`, `flow` as the
  model's inputs), the same outputs with a batch axis.

T is the model's frame count (crops·T = the model's input frames) or any T if the model was built
with `frames_per_video=None`. The frames sent are the frames classified: sample them first (25 with
the release's step, `data.sampling`; `experiments/predict.py` does it).

`EXPORT_DIR/model.keras` holds the same Keras model (the latest version's). Both are written to a
temporary name in the same directory and renamed, so a server never sees half an export.
"""
import os
import pathlib
import secrets
import shutil

import keras
import tensorflow as tf

from actionvlad_tf.atomic import ensure_writable_dir, save_keras_atomic
from actionvlad_tf.data.augment import preprocess_for_eval
from actionvlad_tf.models import WeightedLogitFusion, model_streams
from actionvlad_tf.models.actionvlad import DEFAULT_FLOW_WEIGHT

SERVING_INPUT_NAMES = {"rgb": "frames", "flow": "flow"}
TOP_K = 5



def late_fuse(rgb_model, flow_model, flow_weight=DEFAULT_FLOW_WEIGHT, name="actionvlad_late_fusion"):
    """One Keras model from separately trained RGB and flow models (the release's way, §6.3): logits
    (1 − w)·rgb + w·flow on raw logits. The two models are renamed `rgb_actionvlad` and
    `flow_actionvlad`, as in `build_two_stream(fusion="late")`."""
    if list(model_streams(rgb_model)) != ["rgb"] or list(model_streams(flow_model)) != ["flow"]:
        raise ValueError("late_fuse needs a single-stream RGB model and a single-stream flow model")
    rgb_model.name, flow_model.name = "rgb_actionvlad", "flow_actionvlad"
    inputs = {m: keras.Input(tuple(model.input.shape[1:]), name=m)
              for m, model in (("rgb", rgb_model), ("flow", flow_model))}
    logits = WeightedLogitFusion([1.0 - flow_weight, flow_weight], name="late_fusion")(
        [rgb_model(inputs["rgb"]), flow_model(inputs["flow"])])
    return keras.Model(inputs, logits, name=name)


def load_model_or_late_fusion(model_path=None, rgb_path=None, flow_path=None, flow_weight=DEFAULT_FLOW_WEIGHT):
    """The `.keras` model at `model_path`, or the `late_fuse` of separately trained RGB and flow
    `.keras` models at `rgb_path` and `flow_path` (give one or the other)."""
    if bool(model_path) == bool(rgb_path or flow_path) or bool(rgb_path) != bool(flow_path):
        raise ValueError("give either one model, or both an RGB and a flow model")
    if model_path:
        return keras.saving.load_model(model_path)
    return late_fuse(keras.saving.load_model(rgb_path), keras.saving.load_model(flow_path), flow_weight)


def _outputs(logits, class_names):
    """The signature outputs from logits [..., C]."""
    k = min(TOP_K, len(class_names))
    top = tf.math.top_k(logits, k=k)
    return {
        "logits": logits,
        "probabilities": tf.nn.softmax(logits, axis=-1),
        "top5_indices": top.indices,
        "top5_classes": tf.gather(tf.constant(class_names, tf.string), top.indices),
    }


def _checked(tensor, name, axes):
    """`tensor` after runtime checks of its rank, fixed sizes and non-empty axes.

    `axes` is [(label, size or None)], e.g. [("T", 25), ("H", None), ("W", None), ("C", 3)]. The
    signature binds the dtype, but a loaded signature called with another shape falls back to a
    flat call that passes it through (and TF Serving checks no shapes), so the graph checks. The
    rank is computed from the shape's values: `tf.rank` would be folded to the spec's rank.
    """
    described = "[" + ", ".join(label if size is None else f"{label}={size}" for label, size in axes) + "]"
    shape = tf.shape(tensor)
    rank = tf.reduce_sum(tf.cast(shape >= 0, tf.int32))
    with tf.control_dependencies([tf.debugging.assert_equal(
            rank, len(axes), message=f"{name}: expected shape {described}, got rank")]):
        shape = tf.identity(shape)
    checks = [tf.debugging.assert_positive(
        shape, message=f"{name}: every axis of {described} must be > 0 (at least one frame, a "
                       "height and a width), got shape")]
    for axis, (label, size) in enumerate(axes):
        if size is not None:
            checks.append(tf.debugging.assert_equal(
                shape[axis], size, message=f"{name}: {label} must be {size} in {described}, got"))
    with tf.control_dependencies(checks):
        return tf.identity(tensor)


def serving_functions(model, class_names, num_crops=1, resize_shape=None,
                      half_pixel_centers=False):
    """(serving_default, preprocessed) python functions and their `tf.TensorSpec` signatures."""
    streams = model_streams(model)
    num_classes = model.output.shape[-1]
    if len(class_names) != num_classes:
        raise ValueError(f"{len(class_names)} class names for a model with {num_classes} classes")
    raw_frames = {}
    for modality, (frames, _, _) in streams.items():
        if frames is not None and frames % num_crops:
            raise ValueError(f"the model's {frames} input frames are not a multiple of num_crops={num_crops}")
        raw_frames[modality] = None if frames is None else frames // num_crops
    multi = isinstance(model.input, dict)

    def call(batch):
        return model(batch if multi else batch[next(iter(streams))], training=False)

    def serve(*videos):
        batch = {}
        for (modality, (_, size, channels)), video in zip(streams.items(), videos):
            video = _checked(video, SERVING_INPUT_NAMES[modality],
                             [("T", raw_frames[modality]), ("H", None), ("W", None), ("C", channels)])
            batch[modality] = preprocess_for_eval(video, modality, num_crops, size, resize_shape,
                                                  half_pixel_centers)[None]
        return _outputs(call(batch)[0], class_names)

    def preprocessed(*batches):
        batch = {m: _checked(b, m, [("B", None), ("T", f), ("S", s), ("S", s), ("C", c)])
                 for (m, (f, s, c)), b in zip(streams.items(), batches)}
        return _outputs(call(batch), class_names)

    serve_spec = [tf.TensorSpec([raw_frames[m], None, None, c], tf.uint8, name=SERVING_INPUT_NAMES[m])
                  for m, (_, _, c) in streams.items()]
    batch_spec = [tf.TensorSpec([None, f, s, s, c], tf.float32, name=m) for m, (f, s, c) in streams.items()]
    return (serve, serve_spec), (preprocessed, batch_spec)


def next_version(export_dir):
    """1 + the largest numeric version folder in `export_dir` (1 for a new export)."""
    versions = [int(p.name) for p in pathlib.Path(export_dir).glob("*") if p.is_dir() and p.name.isdigit()]
    return max(versions, default=0) + 1


def export_saved_model(model, export_dir, class_names, num_crops=1, version=None, overwrite=False,
                       resize_shape=None, half_pixel_centers=False, keras_file=True):
    """Writes `export_dir/<version>/` (SavedModel) and `export_dir/model.keras`.

    Args:
        model: an ActionVLAD model (`build_actionvlad`, `build_two_stream`, `late_fuse`, or loaded).
        export_dir: the model's folder in TF Serving's layout.
        class_names: C names in label order, baked into the graph.
        num_crops: test crops done by `serving_default` (1 or 5, release §3.7); the model's frame
            count must be crops·T (or None).
        version: integer version folder; None takes the next free one.
        overwrite: replace an existing version folder (otherwise an error).
        resize_shape, half_pixel_centers: the eval resize (default: (256, 340) for 224² models, scaled
            with the model's crop size otherwise; TF1 semantics).
        keras_file: also write `model.keras`.
    Returns {"saved_model": path, "keras": path or None}.
    """
    export_dir = pathlib.Path(ensure_writable_dir(export_dir, "export_dir"))
    version = next_version(export_dir) if version is None else int(version)
    target = export_dir / str(version)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass overwrite=True or another version")
    (serve, serve_spec), (preprocessed, batch_spec) = serving_functions(
        model, list(class_names), num_crops, resize_shape, half_pixel_centers)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serve, serve_spec)
    archive.add_endpoint("preprocessed", preprocessed, batch_spec)
    tmp = export_dir / f".{version}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        archive.write_out(str(tmp), verbose=False)
        if target.exists():
            old = target.with_name(f".{version}.old.{secrets.token_hex(4)}")
            os.replace(target, old)
            shutil.rmtree(old)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    keras_path = save_keras_atomic(model, export_dir / "model.keras") if keras_file else None
    return {"saved_model": str(target), "keras": keras_path}

