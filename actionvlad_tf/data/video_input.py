"""tf.data pipelines of videos for ActionVLAD: list → frame numbers → JPEGs → crops → batches.

`make_video_dataset` reads a list file (§3.2) and frame folders (§3.1), or packed shards
(`actionvlad_tf.data.packed`) with identical outputs, and yields `(video, label)` batches:

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

from actionvlad_tf.data import augment
from actionvlad_tf.data.frames import (FLOW_TEMPLATE, RGB_TEMPLATE,
                                       check_modality_and_error_policy, decode_flow_stacks,
                                       decode_frames, file_names, find_video_problems,
                                       flow_file_names, jpeg_ok)
from actionvlad_tf.data.lists import read_list
from actionvlad_tf.data.packed import parse_video_example
from actionvlad_tf.data.sampling import check_sampling_arguments, frame_numbers_tf, stack_numbers
from actionvlad_tf.specs import FLOW_STACK, InputSpec


def _sample(element, config):
    """Frame numbers of one video and the file names they map to: {stream: [N] names}."""
    uniform = None
    if config.random_frames:
        uniform = tf.random.stateless_uniform([config.frames_per_video], element["frame_seed"],
                                              dtype=tf.float64)
    first = frame_numbers_tf(element["num_frames"], config.frames_per_video, config.modality,
                             config.flow_stack, element["start_frame"], config.temporal_jitter,
                             uniform)
    names = {}
    if "rgb" in config.streams:
        names["rgb"] = file_names(config.rgb_template, first)
    if "flow" in config.streams:
        names["flow"] = flow_file_names(config.flow_template,
                                        stack_numbers(first, config.flow_stack))
    return first, names


def _read_folder_files(element, config):
    """Frame-folder source: the sampled JPEGs of one video, read from disk."""
    _, names = _sample(element, config)
    for stream, stream_names in names.items():
        paths = tf.strings.join([element[f"{stream}_dir"], "/", stream_names])
        element[stream] = tf.stack([tf.io.read_file(p) for p in tf.unstack(paths)])
        element[f"{stream}_names"] = stream_names
    element["problem"] = tf.constant("")
    return element


def _select_packed_files(element, config):
    """Packed source: the sampled JPEGs of one video, gathered from its record."""
    first, names = _sample(element, config)
    positions = {"rgb": first - 1 - element["start_frame"]}
    if "flow" in config.streams:  # x of flow number k at 2(k−1−start), y just after
        stacks = stack_numbers(first, config.flow_stack) - 1 - element["start_frame"]
        positions["flow"] = tf.reshape(tf.stack([2 * stacks, 2 * stacks + 1], -1), [-1])
    problems = []
    for stream in config.streams:
        stored = tf.size(element[stream], out_type=tf.int64)
        enough = ((tf.reduce_min(positions[stream]) >= 0)
                  & (tf.reduce_max(positions[stream]) < stored))
        element[stream] = tf.cond(
            enough, lambda s=stream: tf.gather(element[s], positions[s]),
            lambda s=stream: tf.fill(tf.shape(positions[s]), ""))
        element[f"{stream}_names"] = names[stream]
        problems.append(tf.where(enough, "", tf.strings.join([
            "the record holds ", tf.strings.as_string(stored), f" {stream} images, fewer than the "
            "sampled files need (packed without this stream, or with too few frames)"])))
    element["problem"] = tf.strings.reduce_join(problems)
    return element


def _check_contents(element, config):
    """Sets `problem` when a sampled file is empty, truncated or not a JPEG."""
    bad = [tf.boolean_mask(element[f"{s}_names"], ~jpeg_ok(element[s])) for s in config.streams]
    bad = tf.concat(bad, 0)
    element["problem"] = tf.where(
        (tf.size(bad) > 0) & (element["problem"] == ""),
        tf.strings.join(["corrupt, truncated or empty JPEG file(s): ",
                         tf.strings.reduce_join(bad, separator=", ")]),
        element["problem"])
    return element


def _raise_on_problem(element):
    check = tf.debugging.Assert(element["problem"] == "", [
        "bad input in video", element["path"], "(", element["where"], "):", element["problem"]])
    with tf.control_dependencies([check]):
        element["index"] = tf.identity(element["index"])
    return element


def _keep_or_record(report):
    """A filter predicate: keeps good videos, records a bad one in `report` and drops it."""
    def record(index, path, where, problem):
        report.add(int(index), path.numpy().decode(), where.numpy().decode(),
                   problem.numpy().decode())
        return False

    def keep(element):
        kept = tf.cond(element["problem"] == "", lambda: tf.constant(True), lambda: tf.py_function(
            record, [element[k] for k in ("index", "path", "where", "problem")], tf.bool))
        return tf.ensure_shape(kept, [])
    return keep


def _decode_and_preprocess(element, config):
    """JPEG bytes → the model input of one video, and its label and metadata."""
    frames = {}
    if "rgb" in config.streams:
        frames["rgb"] = decode_frames(element["rgb"], 3)
    if "flow" in config.streams:
        frames["flow"] = decode_flow_stacks(element["flow"], config.flow_stack)
    frames = frames if config.modality == "rgb+flow" else frames[config.modality]
    if config.raw_frames:  # the caller crops, e.g. the feature cache's recorded views
        video = frames
    elif config.training:
        video = augment.preprocess_for_train(
            frames, config.modality, element["crop_seed"], config.image_size, config.resize_shape,
            invert_flow_on_flip=config.invert_flow_on_flip,
            half_pixel_centers=config.half_pixel_centers)
    else:
        video = augment.preprocess_for_eval(frames, config.modality, config.num_crops,
                                            config.image_size, config.resize_shape,
                                            config.half_pixel_centers)
    metadata = {"index": tf.cast(element["index"], tf.int32), "path": element["path"]}
    return video, tf.cast(element["label"], tf.int32), metadata


def _entries_and_problems(list_file, config, frames_root, flow_root, validate, num_classes):
    entries = list(list_file) if isinstance(list_file, (list, tuple)) else read_list(
        list_file, num_classes)
    problems = []
    for position, entry in enumerate(entries):
        try:
            check_sampling_arguments(entry.num_frames, config.frames_per_video, config.modality,
                                     config.flow_stack, entry.where)
        except ValueError as error:
            problems.append((position, str(error)))
    if validate:
        problems += find_video_problems(entries, frames_root, flow_root, config.modality,
                                        config.rgb_template, config.flow_template)
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
        {k: tf.constant(v, tf.int64 if k in ("index", "label", "num_frames", "start_frame")
                        else tf.string) for k, v in columns.items()})


def _packed_source(packed_files, config, shuffle_seed, shuffle_buffer, input_context,
                   num_parallel_calls, deterministic):
    """Dataset of parsed records from shard files, or from a dataset of parsed records."""
    if isinstance(packed_files, tf.data.Dataset):  # e.g. TFDS with SkipDecoding on the streams
        missing = [s for s in config.streams if s not in packed_files.element_spec]
        if missing:
            raise ValueError(f"the packed records have no {missing} stream(s) for modality "
                             f"{config.modality!r}")
        records = packed_files
        if input_context is not None:
            records = records.shard(input_context.num_input_pipelines,
                                    input_context.input_pipeline_id)
    else:
        files = sorted(glob.glob(packed_files)) if isinstance(packed_files, str) else [
            os.fspath(f) for f in packed_files]
        if not files:
            raise ValueError(f"no packed shards match {packed_files!r}")
        for path in files:
            if not os.path.isfile(path):
                raise ValueError(f"packed shard {path} does not exist")
        files = tf.data.Dataset.from_tensor_slices(files)
        if input_context is not None:
            files = files.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        if config.training:
            files = files.shuffle(len(files), seed=shuffle_seed, reshuffle_each_iteration=True)
            records = files.interleave(tf.data.TFRecordDataset, deterministic=deterministic,
                                       num_parallel_calls=num_parallel_calls)
        else:  # shard after shard: list order
            records = files.flat_map(tf.data.TFRecordDataset)
        records = records.map(lambda r: parse_video_example(r, config.modality),
                              num_parallel_calls=num_parallel_calls, deterministic=deterministic)
    if config.training:
        records = records.shuffle(shuffle_buffer, seed=shuffle_seed, reshuffle_each_iteration=True)
    return records


def make_video_dataset(list_file=None, frames_root=None, flow_root=None, modality="rgb",
                       frames_per_video=25, training=False, batch_size=1, num_crops=1,
                       image_size=augment.RELEASE_IMAGE_SIZE,
                       resize_shape=None, flow_stack=FLOW_STACK,
                       rgb_template=RGB_TEMPLATE, flow_template=FLOW_TEMPLATE, shuffle_seed=None,
                       temporal_jitter=False, invert_flow_on_flip=False, half_pixel_centers=False,
                       num_classes=None, on_error="raise", report=None, validate=False,
                       return_metadata=False, packed_files=None, shuffle_buffer=64,
                       input_context=None, num_parallel_calls=tf.data.AUTOTUNE,
                       raw_frames=False):
    """A `tf.data.Dataset` of `(video, label)` (or `(video, label, metadata)`) batches: `make_dataset`
    of the `InputSpec` of these arguments.

    Args:
        list_file: list file path (3 or 4 columns) or a list of `VideoEntry`; not with
            `packed_files`.
        packed_files: packed shards (a glob pattern or a list of paths) instead of a list and
            frame folders, or a dataset of parsed records (`packed.parse_video_example`, or
            the TFDS builder's records with `SkipDecoding` on the streams); they must hold the
            streams of `modality`.
        report: a `DatasetReport` that collects skipped videos (`on_error="skip"`).
        input_context: a `tf.distribute.InputContext` (from `distribute_datasets_from_function`):
            this pipeline's shard of the videos, with the per-replica batch size.
        the others: the `InputSpec` fields of the same names (`make_dataset`).
    """
    spec = InputSpec(
        modality=modality, frames_per_video=frames_per_video, training=training, batch_size=batch_size,
        num_crops=num_crops, image_size=image_size, resize_shape=resize_shape, flow_stack=flow_stack,
        rgb_template=rgb_template, flow_template=flow_template, shuffle_seed=shuffle_seed,
        temporal_jitter=temporal_jitter, invert_flow_on_flip=invert_flow_on_flip,
        half_pixel_centers=half_pixel_centers, num_classes=num_classes, on_error=on_error, validate=validate,
        return_metadata=return_metadata, shuffle_buffer=shuffle_buffer, num_parallel_calls=num_parallel_calls,
        raw_frames=raw_frames, frames_root=frames_root, flow_root=flow_root)
    return make_dataset(spec, list_file=list_file, packed_files=packed_files, report=report,
                        input_context=input_context)


def make_dataset(spec, list_file=None, packed_files=None, report=None, input_context=None):
    """A `tf.data.Dataset` of `(video, label)` (or `(video, label, metadata)`) batches of the
    videos of `list_file` in the frame folders of `spec`, or of `packed_files`.

    `spec` (an `InputSpec`) fields:
        frames_root: root of `<video>/image_%05d.jpg` folders (RGB).
        flow_root: root of `<video>/flow_{x,y}_%05d.jpg` folders; defaults to `frames_root` (TSN
            dumps keep frames and flow in one folder).
        modality: "rgb", "flow" or "rgb+flow".
        frames_per_video: T (25 in the release).
        training: random crop/flip, per-epoch shuffle, repeat; else list order, one pass.
        batch_size: videos per batch; the GLOBAL batch when `input_context` is given.
        num_crops: 1 or 5 test crops (evaluation only).
        image_size, resize_shape: S and the (H, W) frames are resized to first (§3.4); the
            default resize is the release's 256×340 for S = 224, scaled with S otherwise.
        flow_stack: L, flow images per direction in a stack.
        rgb_template, flow_template: file names (`img_%05d.jpg` for TSN folders).
        shuffle_seed: seed of shuffling, crops, flips and random frames (None: random).
        temporal_jitter: TSN segment sampling in training (evaluation: segment centres).
        invert_flow_on_flip: x-flow → 255 − x on flipped videos (the release does not, §8 row 7).
        half_pixel_centers: modern resize instead of the release's TF1 resize.
        num_classes: labels ≥ num_classes are list errors.
        on_error: "raise" or "skip" (needs `report`; implies `validate`).
        validate: scan every video folder before building the dataset; all problems at once.
        return_metadata: add {"index", "path"} per video.
        shuffle_buffer: videos in the shuffle buffer of packed records in training (shard files
            are also shuffled every epoch).
        num_parallel_calls: parallel reads/decodes (AUTOTUNE).
        raw_frames: yield the decoded uint8 frames [B, T, H, W, C] (a dict for rgb+flow) with no
            resize, crop or means, for callers that crop themselves (the feature cache); with
            frames of different sizes keep batch_size 1.
    `list_file`, `packed_files`, `report`, `input_context`: see `make_video_dataset`.
    """
    check_modality_and_error_policy(spec.modality, spec.on_error, report)
    if spec.training and spec.num_crops != 1:
        raise ValueError("training takes one random crop per video (num_crops=1)")
    if (list_file is None) == (packed_files is None):
        raise ValueError("give either list_file (with frame folders) or packed_files")
    config = spec.replace(
        flow_root=spec.flow_root if spec.flow_root is not None else spec.frames_root,
        resize_shape=tuple(spec.resize_shape or augment.default_resize_shape(spec.image_size)))
    modality, training, frames_root, flow_root = config.modality, config.training, config.frames_root, config.flow_root
    on_error, shuffle_seed, batch_size = config.on_error, config.shuffle_seed, config.batch_size
    num_parallel_calls = config.num_parallel_calls
    augment.eval_crop_offsets(config.num_crops, config.image_size, config.resize_shape)  # sizes fit, early
    for stream, root in (("rgb", frames_root), ("flow", flow_root)):
        if list_file is not None and stream in config.streams and root is None:
            raise ValueError(f"modality {modality!r} needs the {stream} root folder")
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    deterministic = not training or shuffle_seed is not None

    if list_file is not None:
        entries, problems = _entries_and_problems(list_file, config, frames_root, flow_root,
                                                  config.validate or on_error == "skip", config.num_classes)
        if problems and on_error == "raise":
            raise ValueError(f"{len(problems)} video(s) cannot be read:\n" + "\n".join(
                f"{entries[p].path} ({entries[p].where}): {reason}" for p, reason in problems))
        for position, reason in problems:
            report.add(position, entries[position].path, entries[position].where, reason)
        bad = {p for p, _ in problems}
        keep = [p for p in range(len(entries)) if p not in bad]
        if input_context is not None:
            keep = keep[input_context.input_pipeline_id::input_context.num_input_pipelines]
        if not keep:
            raise ValueError(f"no readable video left in {list_file}")
        dataset = _folder_source(entries, keep, frames_root, flow_root)
        if training:
            dataset = dataset.shuffle(len(keep), seed=shuffle_seed, reshuffle_each_iteration=True)
        read = _read_folder_files
    else:
        dataset = _packed_source(packed_files, config, shuffle_seed, config.shuffle_buffer,
                                 input_context, num_parallel_calls, deterministic)
        read = _select_packed_files

    if training:
        seeds = tf.data.Dataset.random(seed=shuffle_seed).batch(4)
        dataset = tf.data.Dataset.zip(dataset.repeat(), seeds).map(
            lambda e, s: {**e, "frame_seed": s[:2], "crop_seed": s[2:]})
    dataset = dataset.map(lambda e: _check_contents(read(e, config), config),
                          num_parallel_calls=num_parallel_calls, deterministic=deterministic)
    dataset = (dataset.map(_raise_on_problem) if on_error == "raise"
               else dataset.filter(_keep_or_record(report)))
    dataset = dataset.map(lambda e: _decode_and_preprocess(e, config),
                          num_parallel_calls=num_parallel_calls, deterministic=deterministic)
    dataset = dataset.batch(batch_size, drop_remainder=training)
    if not config.return_metadata:
        dataset = dataset.map(lambda video, label, metadata: (video, label))
    return dataset.prefetch(tf.data.AUTOTUNE)
