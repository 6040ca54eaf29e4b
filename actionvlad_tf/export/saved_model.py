"""SavedModel export for serving (TF Serving's versioned layout) and the `.keras` file beside it.

`EXPORT_DIR/<version>/` is a SavedModel with three signatures:

* `serving_default`: one video as raw uint8 RGB frames `frames` [T, H, W, 3] of any H and W (and,
  for a two-stream model, flow stacks `flow` [T, H, W, 20] uint8, x/y interleaved, 128 = still).
  In the graph it does what evaluation does (`data.augment.preprocess_for_eval`, release §3.4-3.7):
  TF1 bilinear resize to 256 × 340, the release's 1 or 5 crops, RGB → BGR minus [104, 117, 123],
  flow minus 128, all crops·T frames in one bag. Outputs `logits` [C], `probabilities` [C] (softmax
  of the logits; of the fused logits for two streams), `top5_indices` [k] int32 and `top5_classes`
  [k] string (class names baked in), k = min(5, C).
* `clips`: a batch of whole clips of any length, TF Model Garden's video-classification
  convention (`[B, N, H, W, 3]` uint8 in, per-video scores out): `frames` [B, N, H, W, 3] and
  `num_frames` int32 [B] (video b is frames 0 … num_frames[b]−1, the rest is padding, so clips of
  different lengths share a batch), and for flow models `flow` [B, M, H, W, 2] uint8 (flow image
  k from frame k to k+1, x then y; num_frames[b]−1 of them valid; flow-only models take no
  `frames`). In the graph each video's T frames (and flow stacks of L = 10 images from each) are
  picked with the release's formula (`data.sampling`, §3.3: step ⌊(n−1)/(T−1)⌋ for RGB,
  ⌊(n−L)/T⌋ with flow; the middle frame for T = 1) and preprocessed as `serving_default` does.
  Outputs as `serving_default` with a batch axis.
* `jpeg_clips`: `clips` on JPEG-encoded frames: `jpeg_frames` string [B, N] (and for flow models
  TSN's grayscale `jpeg_flow_x`, `jpeg_flow_y` [B, M]) and `num_frames`; only the sampled frames
  are decoded, in the graph. The outputs of `clips`.
* `preprocessed`: already preprocessed batches [B, crops·T, S, S, C] float32 (`rgb`, `flow` as the
  model's inputs), the same outputs with a batch axis.

Every signature also outputs `embedding`, the pooled vector the classifier reads (K·D for
ActionVLAD; `models.embedding_model`), computed in the same pass as the logits.

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
from actionvlad_tf.data.sampling import frame_numbers_tf, stack_numbers
from actionvlad_tf.layers import NetVLADPooling
from actionvlad_tf.models import WeightedLogitFusion, embedding_model, model_streams, pooling_layers
from actionvlad_tf.specs import FLOW_WEIGHT

SERVING_INPUT_NAMES = {"rgb": "frames", "flow": "flow"}
CLIPS_SIGNATURE = "clips"
JPEG_CLIPS_SIGNATURE = "jpeg_clips"
# jpeg_clips inputs: RGB frames, and flow as TSN's grayscale flow_x / flow_y JPEGs (§3.1).
JPEG_INPUT_NAMES = {"rgb": ("jpeg_frames",), "flow": ("jpeg_flow_x", "jpeg_flow_y")}
DEFAULT_CLIP_FRAMES = 25  # T of the `clips` signature for a model built for any T (the release's)
TOP_K = 5


def late_fuse(rgb_model, flow_model, flow_weight=FLOW_WEIGHT, name="actionvlad_late_fusion"):
    """One Keras model from separately trained RGB and flow models (the release's way, §6.3): logits
    (1 − w)·rgb + w·flow on raw logits. The two models are renamed `rgb_actionvlad` and
    `flow_actionvlad`, as in `build_two_stream(fusion="late")`."""
    if list(model_streams(rgb_model)) != ["rgb"] or list(model_streams(flow_model)) != ["flow"]:
        raise ValueError("late_fuse needs a single-stream RGB model and a single-stream flow model")
    rgb_model.name, flow_model.name = "rgb_actionvlad", "flow_actionvlad"
    inputs = {
        m: keras.Input(tuple(model.input.shape[1:]), name=m) for m, model in (("rgb", rgb_model), ("flow", flow_model))
    }
    logits = WeightedLogitFusion([1.0 - flow_weight, flow_weight], name="late_fusion")(
        [rgb_model(inputs["rgb"]), flow_model(inputs["flow"])]
    )
    return keras.Model(inputs, logits, name=name)


def load_model_or_late_fusion(model_path=None, rgb_path=None, flow_path=None, flow_weight=FLOW_WEIGHT):
    """The `.keras` model at `model_path`, or the `late_fuse` of separately trained RGB and flow
    `.keras` models at `rgb_path` and `flow_path` (give one or the other)."""
    if bool(model_path) == bool(rgb_path or flow_path) or bool(rgb_path) != bool(flow_path):
        raise ValueError("give either one model, or both an RGB and a flow model")
    if model_path:
        return keras.saving.load_model(model_path)
    return late_fuse(keras.saving.load_model(rgb_path), keras.saving.load_model(flow_path), flow_weight)


def numeric_outputs(outputs):
    """`logits`, their softmax `probabilities`, and the model's other outputs (`embedding`, soft
    assignments) as float32: the signature outputs a non-TensorFlow runtime can hold too."""
    logits = outputs["logits"]
    result = {"logits": logits, "probabilities": tf.nn.softmax(logits, axis=-1)}
    result.update({name: tf.cast(value, tf.float32) for name, value in outputs.items() if name != "logits"})
    return result


def _outputs(outputs, class_names):
    """The signature outputs: `numeric_outputs` and the top-k classes [..., k], k = min(5, C)."""
    result = numeric_outputs(outputs)
    top = tf.math.top_k(result["logits"], k=min(TOP_K, len(class_names)))
    result.update(top5_indices=top.indices, top5_classes=tf.gather(tf.constant(class_names, tf.string), top.indices))
    return result


def model_outputs(model, assignments=False):
    """batch {modality: [B, F, S, S, C]} → {"logits" [B, C], "embedding" [B, E]}: the model and,
    where it has one, its pooled vector (`models.embedding_model`), in one pass. With
    `assignments`, also each NetVLAD's soft assignments [B, F, h, w, K] (paper Eq. 1): `assignments`
    for one NetVLAD, `assignments_<stream>` for one per stream (late and concat_vlad fusion)."""
    heads = embedding_model(model, descriptors=assignments)
    multi = isinstance(model.input, dict)
    poolings = pooling_layers(model)
    names = ["assignments"] if len(poolings) == 1 else [f"assignments_{m}" for m in model_streams(model)]
    if assignments and (heads is None or not all(isinstance(p, NetVLADPooling) for p in poolings)):
        raise ValueError(f"{model.name}: soft assignments need NetVLAD pooling")

    def call(batch):
        inputs = batch if multi else next(iter(batch.values()))
        if heads is None:
            return {"logits": model(inputs, training=False)}
        outputs = dict(heads(inputs, training=False))
        for i, (pooling, name) in enumerate(zip(poolings, names) if assignments else ()):
            outputs[name] = pooling.soft_assignment(outputs.pop(f"descriptors_{i}"))
        return outputs

    return call


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
    with tf.control_dependencies(
        [tf.debugging.assert_equal(rank, len(axes), message=f"{name}: expected shape {described}, got rank")]
    ):
        shape = tf.identity(shape)
    checks = [
        tf.debugging.assert_positive(
            shape,
            message=f"{name}: every axis of {described} must be > 0 (at least one frame, a "
            "height and a width), got shape",
        )
    ]
    for axis, (label, size) in enumerate(axes):
        if size is not None:
            checks.append(
                tf.debugging.assert_equal(
                    shape[axis], size, message=f"{name}: {label} must be {size} in {described}, got"
                )
            )
    with tf.control_dependencies(checks):
        return tf.identity(tensor)


def serving_functions(model, class_names, num_crops=1, resize_shape=None, half_pixel_centers=False, assignments=False):
    """(serving_default, preprocessed) python functions and their `tf.TensorSpec` signatures
    (`assignments`: see `model_outputs`)."""
    streams = model_streams(model)
    num_classes = model.output.shape[-1]
    if len(class_names) != num_classes:
        raise ValueError(f"{len(class_names)} class names for a model with {num_classes} classes")
    raw_frames = {}
    for modality, (frames, _, _) in streams.items():
        if frames is not None and frames % num_crops:
            raise ValueError(f"the model's {frames} input frames are not a multiple of num_crops={num_crops}")
        raw_frames[modality] = None if frames is None else frames // num_crops
    call = model_outputs(model, assignments)

    def serve(*videos):
        batch = {}
        for (modality, (_, size, channels)), video in zip(streams.items(), videos):
            video = _checked(
                video,
                SERVING_INPUT_NAMES[modality],
                [("T", raw_frames[modality]), ("H", None), ("W", None), ("C", channels)],
            )
            batch[modality] = preprocess_for_eval(video, modality, num_crops, size, resize_shape, half_pixel_centers)[
                None
            ]
        return {name: value[0] for name, value in _outputs(call(batch), class_names).items()}

    def preprocessed(*batches):
        batch = {
            m: _checked(b, m, [("B", None), ("T", f), ("S", s), ("S", s), ("C", c)])
            for (m, (f, s, c)), b in zip(streams.items(), batches)
        }
        return _outputs(call(batch), class_names)

    serve_spec = [
        tf.TensorSpec([raw_frames[m], None, None, c], tf.uint8, name=SERVING_INPUT_NAMES[m])
        for m, (_, _, c) in streams.items()
    ]
    batch_spec = [tf.TensorSpec([None, f, s, s, c], tf.float32, name=m) for m, (f, s, c) in streams.items()]
    return (serve, serve_spec), (preprocessed, batch_spec)


def _clip_sampler(model, class_names, num_crops, resize_shape, half_pixel_centers, frames_per_video):
    """What `clips` and `jpeg_clips` share: (streams, check(n, lengths), first(n), outputs(sampled)).

    `check` asserts the clip lengths n [B] against the frames given per stream ({stream: N or M});
    `first(n)` is the release's first frame numbers [B, T] (1-based); `outputs` takes the sampled
    {stream: [B, T, H, W, C]} (flow as [B, T, L, H, W, 2]) to the signature's outputs.
    """
    streams = model_streams(model)
    if len(class_names) != model.output.shape[-1]:
        raise ValueError(f"{len(class_names)} class names for a model with {model.output.shape[-1]} classes")
    counts = {None if f is None else f // num_crops for f, _, _ in streams.values()}
    if len(counts) != 1:
        raise ValueError(
            f"the streams take different frame counts {sorted(counts)}; the clips "
            "signature samples one set of frame numbers for both"
        )
    frames_per_video = counts.pop() or frames_per_video or DEFAULT_CLIP_FRAMES
    modality = "+".join(streams)
    flow_stack = streams["flow"][2] // 2 if "flow" in streams else 10
    call = model_outputs(model)

    def check(n, lengths):
        checks = [
            tf.debugging.assert_equal(
                tf.shape(n)[0], tf.shape(v)[0], message=(f"num_frames and {name} must have one entry per video (B)")
            )
            for name, v in lengths.items()
        ]
        checks.append(tf.debugging.assert_positive(n, message="num_frames must be ≥ 1"))
        for name, given in lengths.items():
            if name.endswith(SERVING_INPUT_NAMES["rgb"]):
                checks.append(
                    tf.debugging.assert_less_equal(
                        n, tf.shape(given, tf.int64)[1], message=(f"num_frames exceeds the frames given (N of {name})")
                    )
                )
            else:
                checks += [
                    tf.debugging.assert_greater_equal(
                        n - 1,
                        tf.constant(flow_stack, tf.int64),
                        message=(f"flow needs num_frames − 1 ≥ {flow_stack} flow images (one stack)"),
                    ),
                    tf.debugging.assert_less_equal(
                        n - 1,
                        tf.shape(given, tf.int64)[1],
                        message=(f"num_frames − 1 exceeds the flow images given (M of {name})"),
                    ),
                ]
        return checks

    def first(n, checks):
        with tf.control_dependencies(checks):
            return frame_numbers_tf(n[:, None], frames_per_video, modality, flow_stack)  # [B, T], 1-based

    def outputs(sampled):
        batch = {}
        for stream, video in sampled.items():
            size, channels = streams[stream][1], streams[stream][2]
            if stream == "flow":  # [B, T, L, H, W, 2] → [B, T, H, W, 2L], channels x1, y1, …, xL, yL
                shape = tf.shape(video)
                video = tf.reshape(
                    tf.transpose(video, [0, 1, 3, 4, 2, 5]), tf.concat([shape[:2], shape[3:5], [channels]], 0)
                )
            shape = tf.shape(video)
            # All B·T frames as one video: frame-major crops keep each video's frames together.
            frames = preprocess_for_eval(
                tf.reshape(video, tf.concat([[-1], shape[2:]], 0)),
                stream,
                num_crops,
                size,
                resize_shape,
                half_pixel_centers,
            )
            batch[stream] = tf.reshape(frames, [shape[0], num_crops * frames_per_video, size, size, channels])
        return _outputs(call(batch), class_names)

    return streams, check, first, outputs, flow_stack


def clips_function(model, class_names, num_crops=1, resize_shape=None, half_pixel_centers=False, frames_per_video=None):
    """The `clips` signature's python function and its `tf.TensorSpec`s (module docstring).

    T is the model's frame count per crop, or `frames_per_video` (default 25) for a model built
    for any T; the streams of a two-stream model share the frame numbers (release §3.3).
    """
    streams, check, first, outputs, flow_stack = _clip_sampler(
        model, class_names, num_crops, resize_shape, half_pixel_centers, frames_per_video
    )

    def clips(*inputs):
        *videos, num_frames = inputs
        videos = dict(zip(streams, videos))
        n = tf.cast(num_frames, tf.int64)
        numbers = first(n, check(n, {SERVING_INPUT_NAMES[m]: v for m, v in videos.items()}))
        return outputs(
            {
                m: tf.gather(v, (numbers if m == "rgb" else stack_numbers(numbers, flow_stack)) - 1, batch_dims=1)
                for m, v in videos.items()
            }
        )

    spec = [
        tf.TensorSpec([None, None, None, None, 3 if m == "rgb" else 2], tf.uint8, name=SERVING_INPUT_NAMES[m])
        for m in streams
    ]
    spec.append(tf.TensorSpec([None], tf.int32, name="num_frames"))
    return clips, spec


def _decode_jpegs(encoded, channels):
    """[...] JPEG strings → uint8 [..., H, W, channels]; every image of the call the same size."""
    flat = tf.reshape(encoded, [-1])
    images = tf.map_fn(
        lambda image: tf.io.decode_jpeg(image, channels=channels),
        flat,
        fn_output_signature=tf.TensorSpec([None, None, channels], tf.uint8),
    )
    return tf.reshape(images, tf.concat([tf.shape(encoded), tf.shape(images)[1:]], 0))


def jpeg_clips_function(
    model, class_names, num_crops=1, resize_shape=None, half_pixel_centers=False, frames_per_video=None
):
    """The `jpeg_clips` signature (module docstring): `clips` on JPEG-encoded frames, of which only
    the sampled ones are decoded. Python function and `tf.TensorSpec`s."""
    streams, check, first, outputs, flow_stack = _clip_sampler(
        model, class_names, num_crops, resize_shape, half_pixel_centers, frames_per_video
    )
    names = [name for m in streams for name in JPEG_INPUT_NAMES[m]]

    def jpeg_clips(*inputs):
        *encoded, num_frames = inputs
        encoded = dict(zip(names, encoded))
        n = tf.cast(num_frames, tf.int64)
        numbers = first(n, check(n, encoded))
        sampled = {}
        if "rgb" in streams:
            sampled["rgb"] = _decode_jpegs(tf.gather(encoded[JPEG_INPUT_NAMES["rgb"][0]], numbers - 1, batch_dims=1), 3)
        if "flow" in streams:  # [B, T, L, H, W, 2]: x and y images of each stack
            stacks = stack_numbers(numbers, flow_stack) - 1
            sampled["flow"] = tf.concat(
                [_decode_jpegs(tf.gather(encoded[name], stacks, batch_dims=1), 1) for name in JPEG_INPUT_NAMES["flow"]],
                axis=-1,
            )
        return outputs(sampled)

    spec = [tf.TensorSpec([None, None], tf.string, name=name) for name in names]
    spec.append(tf.TensorSpec([None], tf.int32, name="num_frames"))
    return jpeg_clips, spec


def next_version(export_dir):
    """1 + the largest numeric version folder in `export_dir` (1 for a new export)."""
    versions = [int(p.name) for p in pathlib.Path(export_dir).glob("*") if p.is_dir() and p.name.isdigit()]
    return max(versions, default=0) + 1


def export_saved_model(
    model,
    export_dir,
    class_names,
    num_crops=1,
    version=None,
    overwrite=False,
    resize_shape=None,
    half_pixel_centers=False,
    keras_file=True,
    clip_frames=None,
):
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
        clip_frames: T sampled by the `clips` signature for a model built for any T (default 25);
            a model with a fixed T samples its T.
    Returns {"saved_model": path, "keras": path or None}.
    """
    export_dir = pathlib.Path(ensure_writable_dir(export_dir, "export_dir"))
    version = next_version(export_dir) if version is None else int(version)
    target = export_dir / str(version)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass overwrite=True or another version")
    (serve, serve_spec), (preprocessed, batch_spec) = serving_functions(
        model, list(class_names), num_crops, resize_shape, half_pixel_centers
    )
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serve, serve_spec)
    archive.add_endpoint("preprocessed", preprocessed, batch_spec)
    for name, function in ((CLIPS_SIGNATURE, clips_function), (JPEG_CLIPS_SIGNATURE, jpeg_clips_function)):
        archive.add_endpoint(
            name, *function(model, list(class_names), num_crops, resize_shape, half_pixel_centers, clip_frames)
        )
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
