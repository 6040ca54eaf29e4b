"""tf.data pipelines of videos for ActionVLAD: list → frame numbers → JPEGs → crops → batches.

`make_dataset(spec, ...)` (or its keyword front `make_video_dataset`) reads a list file (§3.2) and
frame folders (§3.1), or packed shards (`actionvlad_tf.data.packed`) with identical outputs, and
yields `(video, label)` batches:

* video `[B, crops·T, S, S, 3]` (RGB: BGR minus means) or `[B, crops·T, S, S, 2L]` (flow stacks
  minus 128, channels x₁, y₁, …, x_L, y_L), float32; for "rgb+flow" a dict {"rgb", "flow"} whose
  frame numbers, crop and flip are shared by the two streams;
* label int32 `[B]`;
* with `return_metadata`, a third element {"index": int32 [B] position in the list, "path":
  string [B]} to write logits in list order and to name the videos of a bad batch.

Training (§3.8): the list is reshuffled every epoch and repeated; every video gets its own random
crop and flip (§3.6) and, for T = 1 or `temporal_jitter`, its own random frames; `shuffle_seed`
makes all of it reproducible. Evaluation: list order, one pass, deterministic (1 or 5 crops, §3.7).

Bad input: the sampling rule is checked against every list line first (a flow video needs n−1 ≥ L
flow images). `validate=True` scans every video folder up front and reports all missing or empty
files at once. While reading, empty, truncated and non-JPEG files are caught before decoding. With
`on_error="raise"` (default) each problem is an error naming the video, its list line and the
file (a missing file without `validate` is TF's NotFoundError, which names the path); with
`on_error="skip"` the video is dropped and recorded in `report` (a `DatasetReport`): never
silently. Decoded frames are uint8, so a bad frame can never reach the model as NaN.
"""

import glob
import os

import tensorflow as tf

from actionvlad_tf.data import augment, options
from actionvlad_tf.data.frames import (
    check_modality_and_error_policy,
    decode_flow_stacks,
    decode_frames,
    file_names,
    find_video_problems,
    flow_file_names,
    jpeg_ok,
)
from actionvlad_tf.data.lists import read_list
from actionvlad_tf.data.packed import parse_video_example
from actionvlad_tf.data.sampling import check_sampling_arguments, frame_numbers_tf, stack_numbers
from actionvlad_tf.specs import InputSpec

# tf.data hands every map function to AutoGraph, which parses its source and that of everything it
# calls. The pipeline's functions are plain TensorFlow ops with no Python control flow on tensors, so
# there is nothing to convert: skipping it saves seconds per process (the demo's flow evaluation
# dataset built in 0.9 s instead of 4.9 on a 2-core AMD EPYC, the same batches), in every training,
# evaluation and k-means step. A function that needed AutoGraph would fail at trace time, not differ.
_plain = tf.autograph.experimental.do_not_convert


def _sample(element, spec):
    """Frame numbers of one video and the file names they map to: {stream: [N] names}."""
    uniform = None
    if spec.random_frames:
        uniform = tf.random.stateless_uniform([spec.frames_per_video], element["frame_seed"], dtype=tf.float64)
    first = frame_numbers_tf(
        element["num_frames"],
        spec.frames_per_video,
        spec.modality,
        spec.flow_stack,
        element["start_frame"],
        spec.temporal_jitter,
        uniform,
    )
    names = {}
    if "rgb" in spec.streams:
        names["rgb"] = file_names(spec.rgb_template, first)
    if "flow" in spec.streams:
        names["flow"] = flow_file_names(spec.flow_template, stack_numbers(first, spec.flow_stack))
    return first, names


def _read_folder_files(element, spec):
    """Frame-folder source: the sampled JPEGs of one video, read from disk."""
    _, names = _sample(element, spec)
    for stream, stream_names in names.items():
        paths = tf.strings.join([element[f"{stream}_dir"], "/", stream_names])
        element[stream] = tf.stack([tf.io.read_file(p) for p in tf.unstack(paths)])
        element[f"{stream}_names"] = stream_names
    element["problem"] = tf.constant("")
    return element


def _select_packed_files(element, spec):
    """Packed source: the sampled JPEGs of one video, gathered from its record."""
    first, names = _sample(element, spec)
    positions = {"rgb": first - 1 - element["start_frame"]}
    if "flow" in spec.streams:  # x of flow number k at 2(k−1−start), y just after
        stacks = stack_numbers(first, spec.flow_stack) - 1 - element["start_frame"]
        positions["flow"] = tf.reshape(tf.stack([2 * stacks, 2 * stacks + 1], -1), [-1])
    problems = []
    for stream in spec.streams:
        stored = tf.size(element[stream], out_type=tf.int64)
        enough = (tf.reduce_min(positions[stream]) >= 0) & (tf.reduce_max(positions[stream]) < stored)
        element[stream] = tf.cond(
            enough,
            lambda s=stream: tf.gather(element[s], positions[s]),
            lambda s=stream: tf.fill(tf.shape(positions[s]), ""),
        )
        element[f"{stream}_names"] = names[stream]
        problems.append(
            tf.where(
                enough,
                "",
                tf.strings.join(
                    [
                        "the record holds ",
                        tf.strings.as_string(stored),
                        f" {stream} images, fewer than the "
                        "sampled files need (packed without this stream, or with too few frames)",
                    ]
                ),
            )
        )
    element["problem"] = tf.strings.reduce_join(problems)
    return element


def _check_contents(element, spec):
    """Sets `problem` when a sampled file is empty, truncated or not a JPEG."""
    bad = [tf.boolean_mask(element[f"{s}_names"], ~jpeg_ok(element[s])) for s in spec.streams]
    bad = tf.concat(bad, 0)
    element["problem"] = tf.where(
        (tf.size(bad) > 0) & (element["problem"] == ""),
        tf.strings.join(["corrupt, truncated or empty JPEG file(s): ", tf.strings.reduce_join(bad, separator=", ")]),
        element["problem"],
    )
    return element


def _raise_on_problem(element):
    check = tf.debugging.Assert(
        element["problem"] == "",
        ["bad input in video", element["path"], "(", element["where"], "):", element["problem"]],
    )
    with tf.control_dependencies([check]):
        element["index"] = tf.identity(element["index"])
    return element


def _keep_or_record(report):
    """A filter predicate: keeps good videos, records a bad one in `report` and drops it."""

    def record(index, path, where, problem):
        report.add(int(index), path.numpy().decode(), where.numpy().decode(), problem.numpy().decode())
        return False

    def keep(element):
        kept = tf.cond(
            element["problem"] == "",
            lambda: tf.constant(True),
            lambda: tf.py_function(record, [element[k] for k in ("index", "path", "where", "problem")], tf.bool),
        )
        return tf.ensure_shape(kept, [])

    return keep


def _decode_and_preprocess(element, spec):
    """JPEG bytes → the model input of one video, and its label and metadata."""
    frames = {}
    if "rgb" in spec.streams:
        frames["rgb"] = decode_frames(element["rgb"], 3)
    if "flow" in spec.streams:
        frames["flow"] = decode_flow_stacks(element["flow"], spec.flow_stack)
    frames = frames if spec.modality == "rgb+flow" else frames[spec.modality]
    if spec.raw_frames:  # the caller crops, e.g. the feature cache's recorded views
        video = frames
    elif spec.training:
        video = augment.preprocess_for_train(
            frames,
            spec.modality,
            element["crop_seed"],
            spec.image_size,
            spec.resize_shape,
            invert_flow_on_flip=spec.invert_flow_on_flip,
            half_pixel_centers=spec.half_pixel_centers,
        )
    else:
        video = augment.preprocess_for_eval(
            frames, spec.modality, spec.num_crops, spec.image_size, spec.resize_shape, spec.half_pixel_centers
        )
    metadata = {"index": tf.cast(element["index"], tf.int32), "path": element["path"]}
    return video, tf.cast(element["label"], tf.int32), metadata


def _entries_and_problems(list_file, spec, frames_root, flow_root, validate, num_classes):
    entries = list(list_file) if isinstance(list_file, (list, tuple)) else read_list(list_file, num_classes)
    problems = []
    for position, entry in enumerate(entries):
        try:
            check_sampling_arguments(
                entry.num_frames, spec.frames_per_video, spec.modality, spec.flow_stack, entry.where
            )
        except ValueError as error:
            problems.append((position, str(error)))
    if validate:
        problems += find_video_problems(
            entries, frames_root, flow_root, spec.modality, spec.rgb_template, spec.flow_template
        )
    return entries, problems


def _folder_source(entries, keep, frames_root, flow_root):
    """Dataset of per-video scalars for the kept list positions."""
    columns = {
        "index": [p for p in keep],
        "path": [entries[p].path for p in keep],
        "where": [entries[p].where for p in keep],
        "label": [entries[p].label for p in keep],
        "num_frames": [entries[p].num_frames for p in keep],
        "start_frame": [entries[p].start_frame for p in keep],
    }
    for stream, root in (("rgb", frames_root), ("flow", flow_root)):
        if root is not None:
            columns[f"{stream}_dir"] = [os.path.join(root, entries[p].path) for p in keep]
    return tf.data.Dataset.from_tensor_slices(
        {
            k: tf.constant(v, tf.int64 if k in ("index", "label", "num_frames", "start_frame") else tf.string)
            for k, v in columns.items()
        }
    )


def _check_shareable(global_batch, input_context, shuffle_seed):
    pipelines = input_context.num_input_pipelines
    if global_batch % pipelines:
        raise ValueError(f"the global batch of {global_batch} videos cannot be shared by {pipelines} input pipelines")
    if shuffle_seed is None:
        raise ValueError(
            f"training with {pipelines} input pipelines needs a shuffle_seed: every "
            "pipeline must draw the same order to take its share of it"
        )


def share_of_global_batches(dataset, global_batch, input_context):
    """The elements of `dataset` in this pipeline's rows of each global batch of `global_batch`:
    pipeline p keeps positions p·b … p·b + b − 1 of every global batch (b = global batch /
    pipelines), the rows its replicas train on (replica r of a global batch: rows r·b_r …)."""
    share = global_batch // input_context.num_input_pipelines
    first = input_context.input_pipeline_id * share
    return (
        dataset.enumerate()
        .filter(lambda position, _: (position % global_batch >= first) & (position % global_batch < first + share))
        .map(lambda _, element: element)
    )


def _packed_source(packed_files, spec, shuffle_seed, shuffle_buffer, input_context, num_parallel_calls, deterministic):
    """Dataset of parsed records from shard files, or from a dataset of parsed records."""
    if isinstance(packed_files, tf.data.Dataset):  # e.g. TFDS with SkipDecoding on the streams
        missing = [s for s in spec.streams if s not in packed_files.element_spec]
        if missing:
            raise ValueError(f"the packed records have no {missing} stream(s) for modality {spec.modality!r}")
        records = packed_files
        if input_context is not None:
            records = records.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    else:
        files = (
            sorted(glob.glob(packed_files)) if isinstance(packed_files, str) else [os.fspath(f) for f in packed_files]
        )
        if not files:
            raise ValueError(f"no packed shards match {packed_files!r}")
        for path in files:
            if not os.path.isfile(path):
                raise ValueError(f"packed shard {path} does not exist")
        files = tf.data.Dataset.from_tensor_slices(files)
        if input_context is not None:
            files = files.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        if spec.training:
            files = files.shuffle(len(files), seed=shuffle_seed, reshuffle_each_iteration=True)
            records = files.interleave(
                tf.data.TFRecordDataset, deterministic=deterministic, num_parallel_calls=num_parallel_calls
            )
        else:  # shard after shard: list order
            records = files.flat_map(tf.data.TFRecordDataset)
        records = records.map(
            _plain(lambda r: parse_video_example(r, spec.modality)),
            num_parallel_calls=num_parallel_calls,
            deterministic=deterministic,
        )
    if spec.training:
        records = records.shuffle(shuffle_buffer, seed=shuffle_seed, reshuffle_each_iteration=True)
    return records


def make_video_dataset(
    list_file=None,
    frames_root=None,
    flow_root=None,
    *,
    packed_files=None,
    report=None,
    input_context=None,
    **spec_fields,
):
    """The keyword front of `make_dataset`: `make_dataset(InputSpec(frames_root=frames_root,
    flow_root=flow_root, **spec_fields), list_file, packed_files, report, input_context)`.
    `spec_fields`: the other `InputSpec` fields (modality, frames_per_video, training, batch_size ...;
    see its docstring)."""
    spec = InputSpec(frames_root=frames_root, flow_root=flow_root, **spec_fields)
    return make_dataset(
        spec, list_file=list_file, packed_files=packed_files, report=report, input_context=input_context
    )


def make_dataset(spec, list_file=None, packed_files=None, report=None, input_context=None):
    """A `tf.data.Dataset` of `(video, label)` (or `(video, label, metadata)`) batches of the
    videos of `list_file` in the frame folders of `spec` (an `InputSpec`; its docstring describes
    each field), or of `packed_files`.

    Args:
        spec: the `InputSpec`.
        list_file: list file path (3 or 4 columns) or a list of `VideoEntry`; not with
            `packed_files`.
        packed_files: packed shards (a glob pattern or a list of paths) instead of a list and
            frame folders, or a dataset of parsed records (`packed.parse_video_example`, or
            the TFDS builder's records with `SkipDecoding` on the streams); they must hold the
            streams of `spec.modality`.
        report: a `DatasetReport` that collects skipped videos (`on_error="skip"`).
        input_context: a `tf.distribute.InputContext` (from `distribute_datasets_from_function`,
            or `training.worker_input_context`): this pipeline's share, batched by
            `get_per_replica_batch_size(batch_size)`. In training each pipeline keeps its rows of
            every GLOBAL batch of the one-pipeline stream (pipeline p: rows p·b … p·b + b − 1,
            b = batch_size / pipelines) and reads and decodes only those videos, so the pipelines
            together decode each global batch once and train on exactly what one pipeline would
            (this needs `shuffle_seed`); in evaluation each pipeline takes every p-th video.
    """
    check_modality_and_error_policy(spec.modality, spec.on_error, report)
    if spec.training and spec.num_crops != 1:
        raise ValueError("training takes one random crop per video (num_crops=1)")
    if (list_file is None) == (packed_files is None):
        raise ValueError("give either list_file (with frame folders) or packed_files")
    spec = spec.replace(
        flow_root=spec.flow_root if spec.flow_root is not None else spec.frames_root,
        resize_shape=tuple(spec.resize_shape or augment.default_resize_shape(spec.image_size)),
    )
    modality, training, frames_root, flow_root = spec.modality, spec.training, spec.frames_root, spec.flow_root
    on_error, shuffle_seed, batch_size = spec.on_error, spec.shuffle_seed, spec.batch_size
    num_parallel_calls = spec.num_parallel_calls
    augment.eval_crop_offsets(spec.num_crops, spec.image_size, spec.resize_shape)  # sizes fit, early
    for stream, root in (("rgb", frames_root), ("flow", flow_root)):
        if list_file is not None and stream in spec.streams and root is None:
            raise ValueError(f"modality {modality!r} needs the {stream} root folder")
    global_batch = batch_size
    shared = training and input_context is not None and input_context.num_input_pipelines > 1
    if shared:
        _check_shareable(global_batch, input_context, shuffle_seed)
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    eval_shard = input_context if not training else None
    deterministic = not training or shuffle_seed is not None

    if list_file is not None:
        entries, problems = _entries_and_problems(
            list_file, spec, frames_root, flow_root, spec.validate or on_error == "skip", spec.num_classes
        )
        if problems and on_error == "raise":
            raise ValueError(
                f"{len(problems)} video(s) cannot be read:\n"
                + "\n".join(f"{entries[p].path} ({entries[p].where}): {reason}" for p, reason in problems)
            )
        for position, reason in problems:
            report.add(position, entries[position].path, entries[position].where, reason)
        bad = {p for p, _ in problems}
        keep = [p for p in range(len(entries)) if p not in bad]
        if eval_shard is not None:
            keep = keep[eval_shard.input_pipeline_id :: eval_shard.num_input_pipelines]
        if not keep:
            raise ValueError(f"no readable video left in {list_file}")
        dataset = _folder_source(entries, keep, frames_root, flow_root)
        if training:
            dataset = dataset.shuffle(len(keep), seed=shuffle_seed, reshuffle_each_iteration=True)
        read = _read_folder_files
    else:
        dataset = _packed_source(
            packed_files, spec, shuffle_seed, spec.shuffle_buffer, eval_shard, num_parallel_calls, deterministic
        )
        read = _select_packed_files

    if training:
        seeds = tf.data.Dataset.random(seed=shuffle_seed).batch(4)
        dataset = tf.data.Dataset.zip(dataset.repeat(), seeds).map(
            _plain(lambda e, s: {**e, "frame_seed": s[:2], "crop_seed": s[2:]})
        )
        if shared:  # before any file is read: the other rows are never opened or decoded
            dataset = share_of_global_batches(dataset, global_batch, input_context)
    dataset = dataset.map(
        _plain(lambda e: _check_contents(read(e, spec), spec)),
        num_parallel_calls=num_parallel_calls,
        deterministic=deterministic,
    )
    dataset = (
        dataset.map(_plain(_raise_on_problem))
        if on_error == "raise"
        else dataset.filter(_plain(_keep_or_record(report)))
    )
    dataset = dataset.map(
        _plain(lambda e: _decode_and_preprocess(e, spec)),
        num_parallel_calls=num_parallel_calls,
        deterministic=deterministic,
    )
    dataset = dataset.batch(batch_size, drop_remainder=training)
    if not spec.return_metadata:
        dataset = dataset.map(_plain(lambda video, label, metadata: (video, label)))
    return options.finish(dataset.prefetch(tf.data.AUTOTUNE))
