"""One stage of training, and the k-means centres, from an experiment's specs: what
`experiments/train.py` and `experiments/cluster.py` call (release §2, §5).

`train_experiment` applies the release's recipe to unset hyper-parameters (`recipe_defaults`), builds
the model of the `ModelSpec` inside the distribution strategy, chooses its initial weights (below)
and trains it on the training split of the `InputSpec`.

Initial weights, in order: a `train_dir` that already holds a checkpoint resumes (nothing else is
loaded; a feature-cache run loads its initial weights anyway, their frozen part names the cache);
else `checkpoint_path` (stage 2: the stage-1 run); else ActionVLAD stage 1 starts from k-means
`centers` (required) and `backbone_weights`.
"""

import dataclasses
import logging
import os
from typing import Optional

import tensorflow as tf

from actionvlad_tf import runtime
from actionvlad_tf.atomic import atomic_output, ensure_writable_dir
from actionvlad_tf.centers import load_centers, save_centers
from actionvlad_tf.data import datasets, sources
from actionvlad_tf.data.frames import DatasetReport
from actionvlad_tf.models import backbones, set_training_stage
from actionvlad_tf.models.builder import build_model, copy_layers_by_name, descriptor_model, load_backbone_weights
from actionvlad_tf.training.feature_cache import build_feature_cache, cached_training_inputs, frames_description
from actionvlad_tf.training.kmeans import RELEASE_NUM_FRAMES, fit_centers, sample_descriptors, sample_frame_entries
from actionvlad_tf.training.split import split_at_frozen_boundary, split_before
from actionvlad_tf.training.trainer import (
    TrainConfig,
    load_model_weights,
    make_strategy,
    recipe_defaults,
    train,
    update_shape,
)


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    """How one stage trains (train.py's flags).

    Attributes:
        config: the `TrainConfig` (train_dir, the optimiser recipe, bookkeeping); its recipe fields
            left None take the release's values for the stage (`training.RECIPES`).
        stage: 1, 2 or 0 (ActionVLAD), or the frame baseline's (its model spec says which).
        checkpoint_path, centers, backbone_weights: the initial weights (module doc).
        weight_decay, videos_per_update, videos_per_micro_batch: the rest of the recipe (the
            model's L2 and the global batch numbers, `training.update_shape`); None: the release's.
        cpu_replicas: split the CPU into that many logical devices, one replica each
            (`runtime.set_cpu_replicas`; None: the ACTIONVLAD_CPU_REPLICAS environment variable,
            else the devices as they are).
        collective_timeout_s: multi-worker runs, `training.make_strategy`.
        feature_cache_dir, cache_views, cache_dtype: the opt-in feature cache of the frozen layers;
            cache_via_stage2: stage 1's cache computed from stage 2's (built first), so that one
            pass over the frames serves both stages and every pooling (`training.feature_cache`);
            cache_frames_per_video: the frame baseline's visits are single frames of that cache of
            T-frame views (ActionVLAD's T), cut where stage 2 starts.
        seed, deterministic, mixed_precision: `runtime.set_determinism`, `runtime.set_precision`.
    """

    config: TrainConfig
    stage: int = 1
    checkpoint_path: Optional[str] = None
    centers: Optional[str] = None
    backbone_weights: Optional[str] = None
    weight_decay: Optional[float] = None
    videos_per_update: Optional[int] = None
    videos_per_micro_batch: Optional[int] = None
    cpu_replicas: Optional[int] = None
    collective_timeout_s: Optional[float] = None
    feature_cache_dir: Optional[str] = None
    cache_views: int = 4
    cache_dtype: str = "float32"
    cache_via_stage2: bool = False
    cache_frames_per_video: Optional[int] = None
    seed: int = 0
    deterministic: bool = False
    mixed_precision: str = "auto"

    def recipe(self, frame_baseline=False):
        """The release's recipe for the stage with the values these options give."""
        recipe = recipe_defaults(self.stage, frame_baseline)
        given = {name: getattr(self, name) for name in ("weight_decay", "videos_per_update", "videos_per_micro_batch")}
        return {name: given[name] if given.get(name) is not None else value for name, value in recipe.items()}


def has_checkpoint(train_dir):
    """Whether `train_dir` holds a checkpoint to resume from (then initial weights are not loaded)."""
    return bool(train_dir) and os.path.isdir(train_dir) and tf.train.latest_checkpoint(train_dir) is not None


def initial_weights(model_spec, options):
    """(checkpoint to load, centres path, load backbone weights): the initial-weights policy
    (module docstring) for a fresh or resumed run."""
    resuming = has_checkpoint(options.config.train_dir)
    fresh = not resuming or options.feature_cache_dir is not None
    checkpoint = options.checkpoint_path if fresh else None
    centers = None
    if model_spec.pooling == "netvlad" and not model_spec.frame_baseline and checkpoint is None and fresh:
        if options.centers is None:
            raise ValueError(
                "stage 1 of ActionVLAD needs k-means centres (experiments/cluster.py, --centers) "
                "or a checkpoint to start from (--checkpoint_path)"
            )
        centers = options.centers
    return checkpoint, centers, bool(options.backbone_weights) and fresh and checkpoint is None


def train_experiment(dataset_spec, model_spec, input_spec, options, write_flags=None):
    """Trains one stage; returns (`TrainResult`, `DatasetReport` or None). The per-replica batch and
    iter_size follow from the recipe's global videos per update and per micro-batch and the replica
    count (`training.update_shape`); `input_spec.batch_size` is not used. `write_flags(path)`: writes
    the run's settings to `train_dir/flags.txt`."""
    if options.cache_frames_per_video and not (model_spec.frame_baseline and options.feature_cache_dir):
        raise ValueError(
            "cache_frames_per_video (--cache_frames_per_video) is for the frame baseline "
            "(--conv_endpoint=fc8) with a feature cache (--feature_cache_dir)"
        )
    recipe = options.recipe(model_spec.frame_baseline)
    model_spec = model_spec.replace(weight_decay=recipe["weight_decay"], num_crops=1)
    runtime.set_cpu_replicas(options.cpu_replicas)
    # MultiWorkerMirroredStrategy must exist before TF initialises its runtime.
    strategy = make_strategy(collective_timeout_s=options.collective_timeout_s)
    shape = update_shape(recipe["videos_per_update"], recipe["videos_per_micro_batch"], strategy.num_replicas_in_sync)
    runtime.set_determinism(options.seed, options.deterministic)
    policy = runtime.set_precision(options.mixed_precision)
    print(f"update: {shape.describe()}; policy {policy}", flush=True)
    input_spec = input_spec.replace(batch_size=shape.per_replica_batch)
    report = DatasetReport() if input_spec.on_error == "skip" else None
    global_spec = input_spec.replace(
        training=True, batch_size=shape.videos_per_micro_batch, shuffle_seed=options.seed, return_metadata=True
    )
    entries = sources.split_entries(dataset_spec, global_spec, "train")

    def dataset(input_context):  # each worker reads and decodes only its rows of every global batch
        return sources.split_dataset(dataset_spec, global_spec, "train", report=report, input_context=input_context)[0]

    checkpoint, centers_path, load_backbone = initial_weights(model_spec, options)
    centers = load_centers(centers_path, model_spec.num_clusters) if centers_path else None
    with strategy.scope():
        model = build_model(model_spec, centers)
        if checkpoint is not None:
            logging.info("initial weights from %s", load_model_weights(model, checkpoint))
        elif load_backbone:
            load_backbone_weights(model, options.backbone_weights, model_spec.modality, model_spec.backbone)

    config = dataclasses.replace(
        options.config.for_recipe(options.stage, model_spec.frame_baseline),
        iter_size=shape.iter_size,
        checkpoint_iterator=options.config.checkpoint_iterator and input_spec.on_error == "raise",
    )
    ensure_writable_dir(config.train_dir, "train_dir")
    if write_flags is not None:
        with atomic_output(os.path.join(config.train_dir, "flags.txt")) as temporary:
            write_flags(temporary)
    stage = (0 if options.stage == 0 else None) if model_spec.frame_baseline else options.stage
    trained, export_model = model, None
    if options.feature_cache_dir:
        trained, dataset = _cached_inputs(
            model, model_spec, input_spec, options, entries, dataset_spec, global_spec.batch_size
        )
        stage, export_model = None, model
    return train(trained, dataset, config, strategy=strategy, stage=stage, export_model=export_model), report


def _cached_inputs(model, model_spec, input_spec, options, entries, dataset_spec, batch_size):
    """(suffix, dataset) of the feature cache: the model's frozen part read from the cache."""
    if model_spec.modality == "rgb+flow" or options.stage == 0:
        raise ValueError(
            "the feature cache holds the frozen part of ActionVLAD stage 1 or 2, or of the frame "
            "baseline, of one stream (rgb or flow)"
        )
    if entries is None:
        raise ValueError("the feature cache reads the training list: give the list folder")
    if model_spec.frame_baseline:
        return _cached_frame_inputs(model, model_spec, input_spec, options, dataset_spec, batch_size)
    maps_split = None
    if options.cache_via_stage2 and options.stage == 1:
        set_training_stage(model, 2)
        maps_split = split_at_frozen_boundary(model)
    set_training_stage(model, options.stage)
    suffix, dataset, cache = cached_training_inputs(
        model,
        datasets.split_list_file(input_spec.list_dir, "train", input_spec.split_id),
        _raw_reader(dataset_spec, input_spec),
        options.feature_cache_dir,
        batch_size,
        model_spec.modality,
        options.cache_views,
        options.seed,
        dtype=options.cache_dtype,
        maps_split=maps_split,
        augmentation={"image_size": input_spec.image_size, "resize_shape": input_spec.resize_shape},
        description=frames_description(input_spec),
    )
    logging.info("training %s on the feature cache %s", suffix.name, cache.directory)
    return suffix, dataset


def _raw_reader(dataset_spec, input_spec):
    """read_videos of `build_feature_cache`: the decoded frames of given training-list entries."""
    raw = input_spec.replace(
        training=False, batch_size=1, raw_frames=True, return_metadata=False, packed_files=None, tfds_name=None
    )

    def read_videos(videos):
        return sources.split_dataset(dataset_spec, raw, "train", entries=videos)[0]

    return read_videos


def _cached_frame_inputs(model, model_spec, input_spec, options, dataset_spec, batch_size):
    """(suffix, dataset) of the frame baseline on single frames of the stream's stage-2 cache:
    the cache ActionVLAD's stage 2 reads (the same key: an ActionVLAD model of T =
    `cache_frames_per_video` frames with the frame network's conv weights, cut where stage 2
    starts), built here if it is not there yet; the frame network cut at the same layer trains on
    one random frame of one random view per visit (its frozen conv5 included)."""
    frames = options.cache_frames_per_video
    if not frames:
        raise ValueError(
            "the frame baseline reads single frames of ActionVLAD's stage-2 cache (views of T frames): "
            "give cache_frames_per_video (--cache_frames_per_video), ActionVLAD's T"
        )
    views_model = build_model(model_spec.replace(conv_endpoint="conv5", pooling="avg", frames_per_video=frames))
    (source,), (target,) = backbones(model), backbones(views_model)
    copy_layers_by_name(source, target, "the frame network's backbone")
    set_training_stage(views_model, 2)
    maps = split_at_frozen_boundary(views_model)
    views_input = input_spec.replace(frames_per_video=frames)
    cache = build_feature_cache(
        options.feature_cache_dir,
        maps.prefix,
        datasets.split_list_file(input_spec.list_dir, "train", input_spec.split_id),
        _raw_reader(dataset_spec, views_input),
        model_spec.modality,
        options.cache_views,
        options.seed,
        augmentation={"image_size": input_spec.image_size, "resize_shape": input_spec.resize_shape},
        description=frames_description(views_input),
        dtype=options.cache_dtype,
    )
    suffix = split_before(model, maps.boundary).suffix
    logging.info("training %s on single frames of the feature cache %s", suffix.name, cache.directory)
    return suffix, cache.dataset(batch_size, shuffle_seed=options.seed, single_frames=True)


@dataclasses.dataclass(frozen=True)
class ClusterOptions:
    """k-means of descriptors (cluster.py's own flags, release §5)."""

    centers: str
    num_frames: int = RELEASE_NUM_FRAMES
    descriptors_per_frame: Optional[int] = None
    kmeans_algorithm: str = "kmeans"
    kmeans_n_init: int = 10
    kmeans_max_iter: int = 300
    frames_per_batch: int = 64
    backbone_weights: Optional[str] = None
    seed: int = 0
    deterministic: bool = False
    mixed_precision: str = "auto"


def cluster_experiment(dataset_spec, model_spec, input_spec, options):
    """k-means centres of the frozen backbone's descriptors of `options.num_frames` random frames of
    shuffled training videos (one test crop each), saved to `options.centers`; returns
    (centres [K, D], info)."""
    runtime.set_determinism(options.seed, options.deterministic)
    runtime.set_precision(options.mixed_precision)
    if input_spec.from_records and not input_spec.frames_root:
        raise ValueError(
            "k-means samples single frames of the training list from frame folders (packed "
            "records hold whole videos): give the list folder and the frame folders"
        )
    entries = sources.split_entries(dataset_spec, input_spec.replace(packed_files=None, tfds_name=None), "train")
    frames = sample_frame_entries(
        entries, options.num_frames, model_spec.modality, input_spec.flow_stack, seed=options.seed
    )
    spec = input_spec.replace(
        frames_per_video=1,
        training=False,
        batch_size=options.frames_per_batch,
        num_crops=1,
        packed_files=None,
        tfds_name=None,
    )
    dataset, _ = sources.split_dataset(dataset_spec, spec, "train", entries=frames)
    features = descriptor_model(model_spec, options.backbone_weights)
    descriptors = sample_descriptors(
        lambda x: features(x, training=False),
        dataset,
        options.num_frames,
        options.descriptors_per_frame,
        seed=options.seed,
    )
    centers, info = fit_centers(
        descriptors,
        model_spec.num_clusters,
        seed=options.seed,
        algorithm=options.kmeans_algorithm,
        n_init=options.kmeans_n_init,
        max_iter=options.kmeans_max_iter,
    )
    save_centers(
        options.centers,
        centers,
        num_frames=options.num_frames,
        num_descriptors=len(descriptors),
        seed=options.seed,
        conv_endpoint=model_spec.conv_endpoint,
        modality=model_spec.modality,
        **info,
    )
    return centers, {**info, "num_descriptors": len(descriptors)}
