"""Model files for runtimes without TensorFlow: LiteRT (`.tflite`: float32, float16 weights, or
dynamic-range int8 weights) and ONNX (tf2onnx, run by onnxruntime), each checked against the Keras
model by the runtime that will run it.

Both hold the SavedModel's `preprocessed` signature: per stream a float32 batch of preprocessed
frames [B, crops·T, S, S, C] (named `rgb` / `flow`; `data.augment.preprocess_for_eval` makes it
from raw frames: resize, crop, BGR minus the means, flow minus 128) in; `logits` [B, C],
`probabilities` [B, C] and `embedding` [B, E] out. The raw-frame signatures stay in the SavedModel:
string outputs and the in-graph JPEG decoding and resize are not LiteRT builtins. The ONNX file has
dynamic batch and frame axes (named `batch`, `frames`); the LiteRT file takes one video (B = 1) of
the model's frame count, as the interpreter allocates fixed shapes.

The converters need the `[export]` extra (`pip install actionvlad_tf[export]`): `tf2onnx`,
`onnxruntime`, `ai-edge-litert`; they are imported when used.
"""

import contextlib
import importlib
import os
import pathlib
import tempfile

import keras
import numpy as np
import tensorflow as tf

from actionvlad_tf.atomic import atomic_output, ensure_writable_dir, write_json
from actionvlad_tf.data.augment import preprocess_for_eval
from actionvlad_tf.export.predictor import video_inputs
from actionvlad_tf.export.saved_model import model_outputs, numeric_outputs
from actionvlad_tf.layers import NetVLADPooling
from actionvlad_tf.models import model_streams, pooling_layers
from actionvlad_tf.prep.extraction import DEFAULT_FLOW_BOUND
from actionvlad_tf.prep.video_inputs import DEFAULT_FRAMES_PER_VIDEO

PORTABLE_FORMATS = ("litert", "onnx")
# The float16 variant stores every constant in float16, whose smallest value is 6e-8: NetVLAD's
# ε = 1e-12 (tf.nn.l2_normalize's) would become 0, and a cluster that no descriptor chose, whose
# residual is 0, would normalise to 0 · rsqrt(0) = NaN. The float16 file floors ε at this instead.
FLOAT16_EPSILON = 1e-7
LITERT_VARIANTS = ("float32", "float16", "int8")
ONNX_OPSET = 17
_EXTRA = "install the [export] extra: pip install 'actionvlad_tf[export]'"


def _import(module):
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(f"{module} is missing ({error}); {_EXTRA}") from None


def _function(model, batch):
    """(python function of the preprocessed batches → logits, probabilities, embedding; its
    TensorSpecs with a batch axis of `batch` and, for a fixed batch, the model's frame count)."""
    streams = model_streams(model)
    call = model_outputs(model)

    def preprocessed(*batches):
        return numeric_outputs(call(dict(zip(streams, batches))))

    spec = [
        tf.TensorSpec([batch, f if batch else None, s, s, c], tf.float32, name=m) for m, (f, s, c) in streams.items()
    ]
    return preprocessed, spec


# Dynamic-range quantisation leaves a weight with fewer elements than this in float32 (the
# converter's minimum_elements_for_weights); one with more becomes int8 and its matmul's input is
# quantised to int8 on the fly.
MIN_QUANTISED_ELEMENTS = 1024


def _float32_assignment(layer, variant):
    """A stand-in for `layer.assignment_logits` that keeps NetVLAD's assignment weights W and b at
    float32 precision in a quantised file.

    With α = 1000 the logits are 2α·c·x̂ − α‖c‖², in the hundreds, and near-hard: a relative
    rounding ε of W, b or x̂ moves them by about 2α·ε, which is 1 (float16, ε = 2⁻¹¹) to 16 (int8,
    ε = 1/127), enough to move descriptors between clusters (on the demo's RGB model: top-1 agreement
    97.5 % for float16, 95.8 % for int8 before this). The logits are computed as x̂₁·W₁ with x̂₁ = [x̂, 1]
    and W₁ = [W; b], so that one weight holds both, and W₁ is stored so that the quantiser cannot round it:
    float16: as [hi, lo] with hi = float16(W₁) (exact in float16) and lo = W₁ − hi (stored with a
    relative error of 2⁻¹¹ of itself, 2⁻²² of W₁), the logits being the sum of the two halves of one
    matmul; int8: as column blocks of fewer than MIN_QUANTISED_ELEMENTS elements, one matmul each,
    which the converter leaves in float32 (so their input is not quantised either). The rest of the
    model (the backbone, the centres, the classifier) is quantised as usual."""

    def assignment_logits(x, scale=None):
        if scale is not None:
            x = x * scale
        x1 = tf.concat([x, tf.ones_like(x[..., :1])], axis=-1)
        w1 = tf.concat([layer.assignment_kernel, layer.assignment_bias[None]], axis=0)  # [D + 1, K + G]
        total = w1.shape[1]
        if variant == "float16":
            high = tf.cast(tf.cast(w1, tf.float16), tf.float32)
            both = tf.matmul(x1, tf.concat([high, w1 - high], axis=1))
            return both[..., :total] + both[..., total:]
        columns = max(1, (MIN_QUANTISED_ELEMENTS - 1) // w1.shape[0])
        return tf.concat([tf.matmul(x1, w1[:, j : j + columns]) for j in range(0, total, columns)], axis=-1)

    return assignment_logits


@contextlib.contextmanager
def _portable_netvlad(model, variant):
    """The model's NetVLAD layers made safe for a LiteRT `variant` while inside: in a quantised
    file, the assignment at float32 precision (`_float32_assignment`); in float16, ε at least
    FLOAT16_EPSILON."""
    layers = [layer for layer in pooling_layers(model) if isinstance(layer, NetVLADPooling)]
    saved = [layer.epsilon for layer in layers]
    for layer in layers:
        if variant != "float32":
            layer.assignment_logits = _float32_assignment(layer, variant)
        if variant == "float16":
            layer.epsilon = max(layer.epsilon, FLOAT16_EPSILON)
    try:
        yield
    finally:
        for layer, value in zip(layers, saved):
            layer.epsilon = value
            layer.__dict__.pop("assignment_logits", None)


def export_litert(model, path, variant="float32"):
    """Writes the LiteRT file of `model` (module docstring) at `path`; `variant` is float32,
    float16 (weights stored as float16, computed in float32; NetVLAD's ε floored, FLOAT16_EPSILON)
    or int8 (dynamic-range: int8 weights, activations quantised on the fly; no calibration data);
    in both quantised variants NetVLAD's assignment keeps float32 precision (`_float32_assignment`).
    Returns the path."""
    if variant not in LITERT_VARIANTS:
        raise ValueError(f"LiteRT variant must be one of {LITERT_VARIANTS}, got {variant!r}")
    if any(f is None for f, _, _ in model_streams(model).values()):
        raise ValueError(
            f"{model.name} takes any number of frames; LiteRT needs a fixed count: "
            "rebuild it with frames_per_video=T and load the weights"
        )
    function, spec = _function(model, 1)
    content = litert_content(model, function, spec, variant)
    with atomic_output(path) as partial:
        pathlib.Path(partial).write_bytes(content)
    return str(path)


def litert_content(model, function, spec, variant):
    """The LiteRT flatbuffer (bytes) of `function` (of `model`'s layers; input TensorSpecs `spec`)
    as `variant`, with the model's NetVLAD layers made safe for it (`_portable_netvlad`)."""
    with tempfile.TemporaryDirectory() as folder, _portable_netvlad(model, variant):
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint("serving_default", function, spec)
        # From a SavedModel: a concrete function's variables would not be frozen into the file.
        archive.write_out(folder, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder, signature_keys=["serving_default"])
        if variant != "float32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if variant == "float16":
            converter.target_spec.supported_types = [tf.float16]
        return converter.convert()


def export_onnx(model, path, opset=ONNX_OPSET):
    """Writes the ONNX file of `model` (module docstring), dynamic batch and frame axes. Returns the path."""
    tf2onnx = _import("tf2onnx")
    function, spec = _function(model, None)
    proto, _ = tf2onnx.convert.from_function(tf.function(function), input_signature=spec, opset=opset)
    for tensor in proto.graph.input:  # name the dynamic axes (tf2onnx writes unk__N)
        dims = tensor.type.tensor_type.shape.dim
        dims[0].dim_param, dims[1].dim_param = "batch", "frames"
    with atomic_output(path) as partial:
        pathlib.Path(partial).write_bytes(proto.SerializeToString())
    return str(path)


class Runner:
    """A LiteRT (`.tflite`) or ONNX (`.onnx`) file run by its own runtime: `runner(batches)` with
    batches {"rgb"/"flow": float32 [B, F, S, S, C]} → {output name: numpy}. LiteRT runs one video
    at a time (its file takes B = 1)."""

    def __init__(self, path):
        self.path = os.fspath(path)
        if self.path.endswith(".tflite"):
            interpreter = _import("ai_edge_litert.interpreter").Interpreter(model_path=self.path)
            self._litert = interpreter.get_signature_runner("serving_default")
            self.input_names = list(interpreter.get_signature_list()["serving_default"]["inputs"])
        elif self.path.endswith(".onnx"):
            onnxruntime = _import("onnxruntime")
            self._onnx = onnxruntime.InferenceSession(self.path, providers=["CPUExecutionProvider"])
            self.input_names = [i.name for i in self._onnx.get_inputs()]
        else:
            raise ValueError(f"{self.path}: not a .tflite or .onnx file")

    def __call__(self, batches):
        batches = {name: np.asarray(batches[name], np.float32) for name in self.input_names}
        if hasattr(self, "_onnx"):
            names = [o.name for o in self._onnx.get_outputs()]
            return dict(zip(names, self._onnx.run(names, batches)))
        size = len(next(iter(batches.values())))
        rows = [self._litert(**{name: b[i : i + 1] for name, b in batches.items()}) for i in range(size)]
        return {name: np.concatenate([row[name] for row in rows]) for name in rows[0]}


def parity(model, path, batches):
    """The file at `path` against the Keras model on `batches` (a list of {stream: [B, F, S, S, C]}
    preprocessed held-out videos): {"videos", "max_abs_probability" (max |Δp| over all classes),
    "max_abs_embedding", "top1_agreement" (fraction of videos with the same best class)}."""
    runner = Runner(path)
    call = model_outputs(model)
    deltas, embedding_deltas, agree, videos = [], [], 0, 0
    for batch in batches:
        expected = {k: keras.ops.convert_to_numpy(v) for k, v in call(batch).items()}
        got = runner(batch)
        probabilities = keras.ops.convert_to_numpy(tf.nn.softmax(expected["logits"], axis=-1))
        deltas.append(np.abs(got["probabilities"] - probabilities).max())
        if "embedding" in expected:
            embedding_deltas.append(np.abs(got["embedding"] - expected["embedding"]).max())
        agree += int(np.sum(got["probabilities"].argmax(-1) == probabilities.argmax(-1)))
        videos += len(probabilities)
    return {
        "videos": videos,
        "max_abs_probability": float(max(deltas)),
        "max_abs_embedding": float(max(embedding_deltas)) if embedding_deltas else None,
        "top1_agreement": agree / videos,
    }


def held_out_batches(
    model,
    jobs=(),
    num_crops=1,
    frames_per_video=DEFAULT_FRAMES_PER_VIDEO,
    flow_method="tvl1",
    flow_bound=DEFAULT_FLOW_BOUND,
    random_videos=4,
    seed=0,
):
    """Preprocessed one-video batches for `parity`: the videos `jobs` (`video_batch.find_inputs`;
    sampled as predict does, eval preprocessing with `num_crops` crops; an unreadable one is an
    error naming it) or, with no jobs, `random_videos` videos of uniform random frames."""
    streams = model_streams(model)
    frames = {f // num_crops if f else frames_per_video for f, _, _ in streams.values()}.pop()
    rng = np.random.default_rng(seed)
    if jobs:
        raw = [
            video_inputs(job.source, tuple(streams), frames, flow_method, where=job.source, flow_bound=flow_bound)
            for job in jobs
        ]
    else:
        raw = [
            {m: rng.integers(0, 256, (frames, 2 * s, 2 * s, c), dtype=np.uint8) for m, (_, s, c) in streams.items()}
            for _ in range(random_videos)
        ]
    return [
        {m: preprocess_for_eval(video[m], m, num_crops, streams[m][1]).numpy()[None] for m in streams} for video in raw
    ]


def export_portable(model, export_dir, formats, litert_variants=LITERT_VARIANTS, batches=()):
    """Writes `model` in each of `formats` ("litert": `model_<variant>.tflite` per variant; "onnx":
    `model.onnx`) into `export_dir`, checks each file on `batches` (`held_out_batches`) and writes
    the checks to `export_dir/portable.json`. Returns [{"file", "format", "variant", "bytes",
    "parity"}]."""
    unknown = set(formats) - set(PORTABLE_FORMATS)
    if unknown:
        raise ValueError(f"unknown formats {sorted(unknown)}; choose from {PORTABLE_FORMATS}")
    export_dir = pathlib.Path(ensure_writable_dir(export_dir, "export_dir"))
    files = []
    if "litert" in formats:
        files += [("litert", v, export_litert(model, export_dir / f"model_{v}.tflite", v)) for v in litert_variants]
    if "onnx" in formats:
        files.append(("onnx", "float32", export_onnx(model, export_dir / "model.onnx")))
    report = [
        {
            "file": path,
            "format": kind,
            "variant": variant,
            "bytes": os.path.getsize(path),
            "parity": parity(model, path, batches) if batches else None,
        }
        for kind, variant, path in files
    ]
    write_json(export_dir / "portable.json", report)
    return report
