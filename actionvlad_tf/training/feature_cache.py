"""Feature cache: the frozen part of a training stage computed once per video and view.

In stage 2 (release §2.5: conv5_1 onwards trains) every step recomputes conv1_1 … pool4, about
four fifths of VGG-16's work, on weights that never change; in stage 1 (only the classifier trains)
everything but the classifier is frozen. `split_at_frozen_boundary` (training/split.py) cuts a
model into a frozen prefix and a trainable suffix; this module runs the prefix once per video and
augmentation view, stores the result, and serves (features, label) batches for the suffix:

    stage 2: frames → per-frame pool4 maps [T, h, w, 512]  (10 MB per view at T = 25, 224², float32)
    stage 1: frames → pooled ActionVLAD vector [K·D]        (128 KB per view)

Views. The release draws a fresh crop and flip for every video at every visit (§3.6). A cache
holds V views per video instead, each one train-mode draw of `augment.preprocess_for_train` with
the recorded stateless seed (seed, i·V + v) for view v of list position i; each visit of a video
picks one of its V views at random. That is the one behaviour it changes, which is why it is
opt-in (`--feature_cache_dir`).

Staleness. The cache folder is named by a SHA-256 key over everything the stored features depend
on: the prefix's layer configurations and weight values, the list file's bytes, the modality,
V, the seed, the augmentation arguments, the caller's description of the frames (root, T, templates,
…) and the storage dtype. Any change gives another folder, so a stale cache is never read; an old
folder is left for the user to delete.

Layout and resumption. `<cache_root>/<key[:16]>/meta.json` (the key and its inputs, shapes,
labels) and `features/<position:06d>_<view:02d>.npy`, one standard `.npy` per view (memory-map it
with `np.load(..., mmap_mode="r")`). Every file is written to a temporary name and renamed
(atomic); a rebuild computes only the views whose file is missing or has the wrong size, so an
interrupted build is completed. One file per view (rather than one array per shard) lets the
training dataset read a random view with TF ops alone (`tf.io.read_file`): parallel, without the
GIL, and checkpointable with the trainer's iterator.

Evaluation. `build_eval_cache` stores the same prefix over the deterministic test input of a list
(T frames, 1 or 5 crops: one view per video, no seed) from the evaluation pipeline, and
`FeatureCache.eval_dataset` serves it in list order with the metadata `evaluation.run` checks:
every model that shares the prefix (avg, max and ActionVLAD at both stages over one backbone's
frozen conv1_1 … pool4) is then evaluated without running it again (eval.py `--feature_cache_dir`).
Its key holds the evaluation's crop settings in place of the augmentation; a training cache and an
evaluation cache never share a folder, and each refuses the other's dataset.

One pass over the frames for both stages. Stage 1's prefix is stage 2's followed by conv5 and the
pooling, so its features can be computed from stage 2's cache instead of from the frames
(`cached_training_inputs(..., maps_split=...)`, `split.bridge`): the frames are decoded and run
through conv1_1 … pool4 once per stream, and every pooling's stage 1 and stage 2 read that
cache (train.py `--cache_via_stage2`). The stage-1 cache's key is the same either way.
"""

import functools
import hashlib
import io
import json
import os

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from actionvlad_tf.atomic import atomic_output
from actionvlad_tf.data import augment, options
from actionvlad_tf.data.lists import read_list
from actionvlad_tf.training.split import bridge, split_at_frozen_boundary

FORMAT_VERSION = 1
META_FILE = "meta.json"
FEATURES_DIR = "features"
KEY_LENGTH = 16  # hex digits of the key in the folder name; meta.json holds all 64
AUGMENTATION_ARGUMENTS = ("image_size", "resize_shape", "scales", "invert_flow_on_flip", "half_pixel_centers")


# Layer settings that do not change what a frozen layer computes: left out of the key, so that
# models with another weight decay (the frame baseline's recipe, ActionVLAD's) share a cache.
NOT_IN_KEY = ("name", "trainable", "kernel_regularizer", "bias_regularizer", "activity_regularizer")


def _layer_signature(model):
    """[(class, config without `NOT_IN_KEY`)] of every layer, nested models walked, in layer order."""
    signature = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            signature.append(["model", _layer_signature(layer)])
            continue
        config = {k: v for k, v in layer.get_config().items() if k not in NOT_IN_KEY}
        signature.append([type(layer).__name__, config])
    return signature


def cache_key(prefix, list_file, modality, views, seed, augmentation, description, dtype):
    """SHA-256 hex key of everything the cached features depend on (module docstring)."""
    with open(list_file, "rb") as handle:
        list_digest = hashlib.sha256(handle.read()).hexdigest()
    inputs = {
        "format_version": FORMAT_VERSION,
        "prefix_layers": _layer_signature(prefix),
        "prefix_output_shape": list(prefix.output.shape[1:]),
        "list_sha256": list_digest,
        "modality": modality,
        "views": views,
        "seed": seed,
        "augmentation": augmentation,
        "description": description,
        "dtype": dtype,
    }
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode())
    for weight in prefix.weights:
        value = np.ascontiguousarray(weight.numpy())
        digest.update(f"{value.dtype}{value.shape}".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def _header_bytes(shape, dtype):
    """Length of the `.npy` (format 1.0) header written before the array data."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": tuple(shape)}
    )
    return buffer.tell()


class FeatureCache:
    """A cache folder made by `build_feature_cache`: its metadata, files and training dataset."""

    def __init__(self, directory):
        self.directory = os.fspath(directory)
        meta_path = os.path.join(self.directory, META_FILE)
        if not os.path.isfile(meta_path):
            raise FileNotFoundError(f"{meta_path} does not exist: not a feature cache folder")
        with open(meta_path, encoding="utf-8") as handle:
            self.meta = json.load(handle)
        if self.meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{meta_path}: cache format {self.meta.get('format_version')}, this "
                f"code reads format {FORMAT_VERSION}; rebuild the cache"
            )
        if not self.meta["key"].startswith(os.path.basename(os.path.normpath(self.directory))):
            raise ValueError(f"{meta_path}: key {self.meta['key']} does not match its folder name")
        self.views = int(self.meta["views"])
        self.feature_shape = tuple(self.meta["feature_shape"])
        self.dtype = np.dtype(self.meta["dtype"])
        self.labels = np.asarray(self.meta["labels"], np.int32)
        self.paths = list(self.meta["paths"])
        self.evaluation = self.meta.get("mode") == "evaluation"
        self.header_bytes = _header_bytes(self.feature_shape, self.dtype)
        self.file_bytes = self.header_bytes + int(np.prod(self.feature_shape)) * self.dtype.itemsize

    @property
    def num_videos(self):
        return len(self.labels)

    def file(self, position, view):
        """Path of the features of view `view` of list position `position`."""
        return os.path.join(self.directory, FEATURES_DIR, f"{position:06d}_{view:02d}.npy")

    def missing(self):
        """[(position, view)] whose file is absent or has the wrong size (a foreign partial file)."""
        missing = []
        for position in range(self.num_videos):
            for view in range(self.views):
                path = self.file(position, view)
                if not os.path.isfile(path) or os.path.getsize(path) != self.file_bytes:
                    missing.append((position, view))
        return missing

    def is_complete(self):
        return not self.missing()

    def require_complete(self):
        """Raises ValueError naming the first missing view file unless every view is stored."""
        missing = self.missing()
        if missing:
            position, view = missing[0]
            raise ValueError(
                f"feature cache {self.directory} is incomplete: {len(missing)} view "
                f"file(s) missing, first {self.file(position, view)}; build it first"
            )

    def load(self, position, view):
        """The stored features of one view, memory-mapped (read-only)."""
        return np.load(self.file(position, view), mmap_mode="r")

    def dataset(self, batch_size, shuffle_seed=None, output_dtype="float32", input_context=None, single_frames=False):
        """Endless training batches (features [B, *feature_shape], label int32 [B]).

        Every epoch reshuffles the videos (as the release's per-epoch list shuffle, §3.8) and each
        visit reads one of the video's V views at random; `shuffle_seed` makes both reproducible.
        With `input_context` (from `distribute_datasets_from_function`) each input pipeline reads
        its share of the videos, `batch_size` being the global batch. `single_frames`: of per-frame
        maps [T, h, w, C], each visit keeps one of the view's T frames at random ([1, h, w, C]): the
        input of the frame baseline (T = 1) split at the same layer.
        """
        self.require_complete()
        if self.evaluation:
            raise ValueError(f"feature cache {self.directory} holds test inputs: read it with eval_dataset()")
        positions = np.arange(self.num_videos)
        if input_context is not None:
            positions = positions[input_context.input_pipeline_id :: input_context.num_input_pipelines]
            batch_size = input_context.get_per_replica_batch_size(batch_size)
        files = tf.constant([[self.file(p, v) for v in range(self.views)] for p in positions])
        videos = tf.data.Dataset.from_tensor_slices((files, tf.constant(self.labels[positions])))
        videos = videos.shuffle(len(positions), seed=shuffle_seed, reshuffle_each_iteration=True)
        read = self._reader(output_dtype)
        if single_frames and len(self.feature_shape) != 4:
            raise ValueError(
                f"single frames need per-frame maps [T, h, w, C]; {self.directory} holds {self.feature_shape}"
            )
        frames = self.feature_shape[0] if single_frames else None

        def visit(video, draw):  # one random draw per visit: the view, then the frame
            features = read(video[0][draw % self.views])
            if frames is not None:
                frame = (draw // self.views) % frames
                features = features[frame : frame + 1]
            return features, video[1]

        dataset = tf.data.Dataset.zip(videos.repeat(), tf.data.Dataset.random(seed=shuffle_seed)).map(
            visit, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )
        return options.finish(dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE))

    def eval_dataset(self, batch_size, output_dtype="float32"):
        """One pass in list order over an evaluation cache (`build_eval_cache`): (features
        [B, *feature_shape], label int32 [B], {"index": list position, "path": video path}), the
        elements of the evaluation pipeline with `return_metadata` after the prefix."""
        self.require_complete()
        if not self.evaluation:
            raise ValueError(f"feature cache {self.directory} holds training views: read it with dataset()")
        positions = np.arange(self.num_videos)
        read = self._reader(output_dtype)
        dataset = tf.data.Dataset.from_tensor_slices(
            ([self.file(p, 0) for p in positions], self.labels, positions.astype(np.int32), self.paths)
        ).map(
            lambda path, label, index, name: (read(path), label, {"index": index, "path": name}),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        return options.finish(dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE))

    def _reader(self, output_dtype):
        """path → the stored features (TF ops; a file whose size changed after the check fails)."""
        stored_dtype = tf.as_dtype(self.dtype)

        def read(path):
            contents = tf.io.read_file(path)
            check = tf.debugging.Assert(
                tf.strings.length(contents) == self.file_bytes,
                ["feature cache file changed size after the check:", path],
            )
            with tf.control_dependencies([check]):
                values = tf.io.decode_raw(tf.strings.substr(contents, self.header_bytes, -1), stored_dtype)
            return tf.cast(tf.reshape(values, self.feature_shape), output_dtype)

        return read


def view_seed(seed, position, views, view):
    """The stateless seed of view `view` of list position `position` (recorded in meta.json)."""
    return tf.constant([seed, position * views + view], tf.int64)


def _contiguous_runs(positions):
    """[3, 4, 5, 9] → [[3, 4, 5], [9]]: read each run of videos with one dataset."""
    runs = []
    for position in positions:
        if runs and runs[-1][-1] == position - 1:
            runs[-1].append(position)
        else:
            runs.append([position])
    return runs


def _write_meta(directory, meta):
    path = os.path.join(directory, META_FILE)
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as handle:
            existing = json.load(handle)
        if existing.get("key") != meta["key"]:
            raise ValueError(
                f"{path} holds key {existing.get('key')}, expected {meta['key']}: "
                "a truncated-key collision; delete the folder"
            )
        return
    with atomic_output(path) as partial, open(partial, "w", encoding="utf-8") as handle:
        json.dump(meta, handle, indent=1)


def build_feature_cache(
    cache_root,
    prefix,
    list_file,
    read_videos,
    modality="rgb",
    views=4,
    seed=0,
    augmentation=None,
    description=None,
    dtype="float32",
    progress=True,
    source=None,
):
    """Computes (or completes) the cache of `prefix` over the videos of `list_file`.

    Args:
        cache_root: folder holding caches; this one goes to `<cache_root>/<key[:16]>/`.
        prefix: the frozen model of `split_at_frozen_boundary(model).prefix`: a video
            [B, T, S, S, C] → features.
        list_file: the training list (release format); its bytes enter the key, its lines are the
            cached videos, in order.
        read_videos: callable(list of `VideoEntry`) → a `tf.data.Dataset` (or any iterable) of
            (frames, label) per video in the given order, frames the decoded, unaugmented uint8 [T, H, W, C] (a leading
            batch axis of 1 is accepted), e.g. `make_video_dataset(entries, ..., raw_frames=True)`.
        modality: "rgb" or "flow" (the channel means of `augment`).
        views: V, augmentation views per video.
        seed: base of the views' stateless seeds.
        augmentation: keyword arguments of `augment.preprocess_for_train` (image_size,
            resize_shape, scales, invert_flow_on_flip, half_pixel_centers); defaults the release's.
        description: JSON-able dict of whatever else the frames depend on (frame root, T, flow
            stack, file templates, …); it enters the key.
        dtype: storage dtype, "float32" (exact) or "float16" (half the disk).
        progress: show a tqdm bar over views.
        source: (FeatureCache, bridge), or a callable returning it (called only when views are
            missing), to compute the features from another cache of the same videos, views, seed,
            augmentation and description rather than from the frames: `prefix(x)` must equal
            `bridge(source's prefix(x))` (`split.bridge`).

    Returns:
        the complete `FeatureCache`.
    """
    if modality not in ("rgb", "flow"):
        raise ValueError(
            f"feature caches hold one stream: modality must be 'rgb' or 'flow', got "
            f"{modality!r} (split and cache each stream's model)"
        )
    if views < 1:
        raise ValueError(f"views must be ≥ 1, got {views}")
    augmentation = dict(augmentation or {})
    unknown = set(augmentation) - set(AUGMENTATION_ARGUMENTS)
    if unknown:
        raise ValueError(f"unknown augmentation arguments {sorted(unknown)}; known: {AUGMENTATION_ARGUMENTS}")
    entries = read_list(list_file)
    cache = _open(
        cache_root,
        prefix,
        list_file,
        entries,
        modality,
        views,
        seed,
        augmentation,
        description,
        dtype,
        view_seed="stateless seed (seed, position * views + view)",
    )
    missing = cache.missing()
    todo = {}
    for position, view in missing:
        todo.setdefault(position, []).append(view)
    if callable(source) and todo:
        source = source()  # before this cache's progress bar: it may build its own
    bar = tqdm(
        total=cache.num_videos * views,
        initial=cache.num_videos * views - len(missing),
        unit="view",
        desc="feature cache" if source is None else "feature cache (from the stage-2 cache)",
        disable=not progress,
    )
    if source is not None and todo:
        _build_from_source(cache, todo, *source, dtype, bar)
    else:
        _build_from_frames(cache, todo, prefix, entries, read_videos, modality, views, seed, augmentation, dtype, bar)
    bar.close()
    return _require_built(cache, entries, "read_videos")


def build_eval_cache(
    cache_root,
    prefix,
    list_file,
    dataset,
    modality="rgb",
    evaluation=None,
    description=None,
    dtype="float32",
    progress=True,
):
    """Computes (or completes) the evaluation cache of `prefix` over the videos of `list_file`: one
    view per video, the deterministic test input (module docstring, "Evaluation").

    Args:
        cache_root, prefix, list_file, modality, description, dtype, progress: as `build_feature_cache`.
        dataset: the evaluation pipeline of that list with metadata (`make_dataset` with
            training=False, return_metadata=True): (videos [B, crops·T, S, S, C], labels,
            {"index": list position, ...}).
        evaluation: JSON-able dict of the test input's settings (num_crops, image_size,
            resize_shape, …); it enters the key.

    Returns:
        the complete `FeatureCache`, to read with `eval_dataset`.
    """
    entries = read_list(list_file)
    cache = _open(
        cache_root, prefix, list_file, entries, modality, 1, None, {"evaluation": dict(evaluation or {})},
        description, dtype, mode="evaluation",
    )  # fmt: skip
    missing = {position for position, _ in cache.missing()}
    if missing:
        compute = tf.function(lambda videos: tf.cast(prefix(videos, training=False), dtype), reduce_retracing=True)
        bar = tqdm(
            total=cache.num_videos,
            initial=cache.num_videos - len(missing),
            unit="video",
            desc="evaluation feature cache",
            disable=not progress,
        )
        for videos, labels, metadata in dataset:
            positions = metadata["index"].numpy()
            wanted = [i for i, position in enumerate(positions) if position in missing]
            if not wanted:
                continue
            for position, label in zip(positions, labels.numpy()):
                if label != entries[position].label:
                    raise ValueError(
                        f"the evaluation dataset gave label {label} for {entries[position].path} "
                        f"({entries[position].where}), the list says {entries[position].label}"
                    )
            features = compute(videos).numpy()
            for i in wanted:
                _write_features(cache, int(positions[i]), 0, features[i])
            bar.update(len(wanted))
        bar.close()
    return _require_built(cache, entries, "the evaluation dataset")


def _require_built(cache, entries, source):
    """`cache` after a build from `source`, or ValueError naming the first video still missing."""
    missing = cache.missing()
    if missing:
        entry = entries[missing[0][0]]
        raise ValueError(
            f"{source} yielded too few videos: {len(missing)} view(s) still missing, first {entry.path} ({entry.where})"
        )
    return cache


def _open(cache_root, prefix, list_file, entries, modality, views, seed, augmentation, description, dtype, **extra):
    """The `FeatureCache` of these inputs (its folder and meta.json made if new); `extra` goes to meta.json."""
    description = dict(description or {})
    key = cache_key(prefix, list_file, modality, views, seed, augmentation, description, dtype)
    directory = os.path.join(cache_root, key[:KEY_LENGTH])
    _write_meta(
        directory,
        {
            "format_version": FORMAT_VERSION,
            "key": key,
            "list_file": os.path.abspath(list_file),
            "modality": modality,
            "views": views,
            "seed": seed,
            "augmentation": augmentation,
            "description": description,
            "dtype": np.dtype(dtype).name,
            "feature_shape": list(prefix.output.shape[1:]),
            **extra,
            "labels": [e.label for e in entries],
            "paths": [e.path for e in entries],
        },
    )
    os.makedirs(os.path.join(directory, FEATURES_DIR), exist_ok=True)
    return FeatureCache(directory)


def frames_description(input_spec):
    """What a cache's features depend on beyond the list and the prefix: the frame and flow folders
    and T (an `InputSpec`'s)."""
    return {
        "dataset_dir": os.path.abspath(input_spec.frames_root or ""),
        "flow_dir": os.path.abspath(input_spec.flow_root or input_spec.frames_root or ""),
        "frames_per_video": input_spec.frames_per_video,
    }


def _write_features(cache, position, view, features):
    with atomic_output(cache.file(position, view)) as partial, open(partial, "wb") as handle:
        np.lib.format.write_array(handle, features, version=(1, 0))


def _build_from_frames(cache, todo, prefix, entries, read_videos, modality, views, seed, augmentation, dtype, bar):
    @tf.function(reduce_retracing=True)
    def compute(frames, seeds):
        """The prefix's features of one video's views [n, ...], the augmentation compiled with it (run
        eagerly, op by op, it took 60 % of the build's time: 13 views/s instead of 27, AMD EPYC)."""
        videos = tf.stack(
            [augment.preprocess_for_train(frames, modality, seeds[i], **augmentation) for i in range(seeds.shape[0])]
        )
        return tf.cast(prefix(videos, training=False), dtype)

    for run in _contiguous_runs(sorted(todo)):
        source = read_videos([entries[p] for p in run])
        for position, (frames, label) in zip(run, source):
            entry = entries[position]
            if int(tf.reshape(label, [-1])[0]) != entry.label:
                raise ValueError(
                    f"read_videos returned label {label} for {entry.path} "
                    f"({entry.where}), the list says {entry.label}: wrong order"
                )
            if len(frames.shape) == 5:
                frames = frames[0]
            wanted = todo[position]
            seeds = tf.stack([view_seed(seed, position, views, view) for view in wanted])
            for view, features in zip(wanted, compute(frames, seeds).numpy()):
                _write_features(cache, position, view, features)
            bar.update(len(wanted))


SOURCE_FIELDS = ("list_file", "modality", "views", "seed", "augmentation", "description", "labels", "paths")
SOURCE_BATCH = 8  # views per call of the bridge


def _build_from_source(cache, todo, source, bridge_model, dtype, bar):
    """The missing views of `cache` computed from `source`'s stored features through `bridge_model`."""
    differ = [name for name in SOURCE_FIELDS if source.meta.get(name) != cache.meta.get(name)]
    if differ:
        raise ValueError(
            f"feature cache {source.directory} cannot serve {cache.directory}: they differ in {', '.join(differ)}"
        )
    source.require_complete()
    if tuple(bridge_model.input.shape[1:]) != source.feature_shape:
        raise ValueError(
            f"bridge {bridge_model.name} takes {tuple(bridge_model.input.shape[1:])}, the cache "
            f"{source.directory} holds {source.feature_shape}"
        )
    compute = tf.function(lambda x: tf.cast(bridge_model(x, training=False), dtype), reduce_retracing=True)
    pairs = [(position, view) for position in sorted(todo) for view in todo[position]]
    for start in range(0, len(pairs), SOURCE_BATCH):
        chunk = pairs[start : start + SOURCE_BATCH]
        features = compute(np.stack([np.asarray(source.load(p, v), np.float32) for p, v in chunk])).numpy()
        for (position, view), value in zip(chunk, features):
            _write_features(cache, position, view, value)
        bar.update(len(chunk))


def cached_training_inputs(
    model,
    list_file,
    read_videos,
    cache_root,
    batch_size,
    modality="rgb",
    views=4,
    seed=0,
    augmentation=None,
    description=None,
    dtype="float32",
    progress=True,
    maps_split=None,
):
    """(suffix, dataset, cache) to train `model`'s current stage on a feature cache:
    `train(suffix, dataset, config, stage=None, export_model=model)`.

    Set the stage first (`set_training_stage`); the model is split where its frozen layers end
    (`split_at_frozen_boundary`), the cache of the prefix is built or completed, and the dataset
    yields endless global batches of `batch_size` (features, label). The prefix's weights must be
    final before this call (on a resumed run: load the initial weights again; they are frozen, so
    they equal the checkpoint's). Arguments after `batch_size` are `build_feature_cache`'s.

    `maps_split`: a `FrozenSplit` of the model cut inside its backbone (stage 2's, made with the
    stage-2 trainable flags): its cache is built (or found) first and this stage's features are
    computed from it through `split.bridge` (module docstring: one pass over the frames).
    """
    split = split_at_frozen_boundary(model)
    if split.prefix is None:
        raise ValueError(f"{model.name} has no frozen layers (stage 0?): nothing to cache")
    build = functools.partial(
        build_feature_cache,
        cache_root,
        list_file=list_file,
        read_videos=read_videos,
        modality=modality,
        views=views,
        seed=seed,
        augmentation=augmentation,
        description=description,
        dtype=dtype,
        progress=progress,
    )
    source = None
    if maps_split is not None and maps_split.boundary != split.boundary:

        def source():
            return build(prefix=maps_split.prefix), bridge(model, maps_split, split)

    cache = build(prefix=split.prefix, source=source)
    return split.suffix, cache.dataset(batch_size, shuffle_seed=seed), cache
