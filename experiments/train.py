r"""Trains one stage of ActionVLAD, or the two-stream frame baseline (release
`train_image_classifier.py`, §2; paper Sec. 3.4).

  python experiments/train.py --flagfile=experiments/configs/hmdb51_rgb_split1_stage1.flags
  python experiments/train.py --flagfile=experiments/configs/hmdb51_rgb_split1_stage2.flags

Stage 1 trains the classifier over the fixed k-means VLAD (`--centers` from cluster.py); stage 2
starts from `--checkpoint_path` (the stage-1 train_dir or model.keras) and trains conv5, the VLAD and
the classifier with a fresh optimiser. Hyper-parameters left unset take the release's values for the
stage (`actionvlad_tf.training.RECIPES`). A restart with the same --train_dir resumes; on several
workers set TF_CONFIG on each (MultiWorkerMirroredStrategy) and restart all of them after a failure.
"""
import os

from absl import app, flags, logging

import common_flags
from actionvlad_tf.atomic import atomic_output, ensure_writable_dir
from actionvlad_tf.centers import load_centers
from actionvlad_tf.data.frames import DatasetReport
from actionvlad_tf.data.video_input import make_video_dataset
from actionvlad_tf.training import (TrainConfig, default_iter_size, load_model_weights, make_strategy,
                                    recipe_defaults, train)
from actionvlad_tf.models import set_training_stage
from actionvlad_tf.training import experiment
from actionvlad_tf.training.feature_cache import cached_training_inputs
from actionvlad_tf.training.trainer import LEARNING_RATE_DECAY_TYPES, NAN_POLICIES, OPTIMIZERS

flags.DEFINE_string("train_dir", None, "Checkpoints, summaries, flags.txt and model.keras; a restart resumes.")
flags.DEFINE_enum("stage", "1", ["0", "1", "2"],
                  "1: classifier only; 2: conv5 + VLAD + classifier; 0: everything. Frame baseline: "
                  "0 trains all layers, else fc6-fc8 (release 005).")
flags.DEFINE_string("checkpoint_path", None,
                    "Initial weights (stage 2: the stage-1 train_dir, a checkpoint or a .keras file); "
                    "ignored when --train_dir already holds a checkpoint (release §2.1).")
flags.DEFINE_string("centers", None, "k-means centres .npz (cluster.py) for stage 1 of --pooling=netvlad.")
flags.DEFINE_integer("iter_size", None, "Micro-batches per update (default: 16 videos per update).")
flags.DEFINE_integer("max_number_of_steps", None, "Updates (default: 10000 stage 1, 8000 stage 2).")
flags.DEFINE_float("learning_rate", None, "Initial lr (default: 0.01 stage 1, 1e-4 stage 2).")
flags.DEFINE_integer("num_steps_per_decay", None, "Updates between lr decays (default 5000).")
flags.DEFINE_float("learning_rate_decay_factor", None, "lr factor per decay (default 0.1).")
flags.DEFINE_enum("learning_rate_decay_type", "exponential", list(LEARNING_RATE_DECAY_TYPES), "Staircase or fixed.")
flags.DEFINE_enum("optimizer", None, list(OPTIMIZERS), "Default: adam (ActionVLAD), momentum (frame baseline).")
flags.DEFINE_float("opt_epsilon", None, "Adam / RMSProp epsilon (default 1e-4).")
flags.DEFINE_float("clip_gradients", None, "Per-variable gradient norm clip per micro-batch (default 5; 0: off).")
flags.DEFINE_float("weight_decay", None, "slim L2 scale on conv and classifier kernels (default 4e-5).")
flags.DEFINE_integer("save_every_n_steps", 500, "Checkpoint period in updates (and at the end).")
flags.DEFINE_integer("keep_checkpoint_max", 5, "Checkpoints kept.")
flags.DEFINE_integer("log_every_n_steps", 10, "TensorBoard summary period in updates.")
flags.DEFINE_enum("nan_policy", "raise", list(NAN_POLICIES),
                  "Non-finite loss: raise (naming step and videos) or skip the batch (counted, named).")
flags.DEFINE_float("collective_timeout_s", None, "Multi-worker: seconds a collective waits for a dead peer.")
flags.DEFINE_string("feature_cache_dir", None,
                    "Opt-in feature cache (docs/performance.md): the frozen part of the stage (stage 2: "
                    "conv1_1-pool4; stage 1: all but the classifier) is computed once per video and view, "
                    "stored here keyed by its weights, the preprocessing and the list, and only the rest "
                    "trains. Each video then has --cache_views fixed crops, not a new one per visit (§3.6).")
flags.DEFINE_integer("cache_views", 4, "Augmentation views per video in the feature cache.")
flags.DEFINE_enum("cache_dtype", "float32", ["float32", "float16"],
                  "Storage dtype of the feature cache (float16 halves the disk).")
FLAGS = flags.FLAGS


def _recipe(frame_baseline, stage):
    """Unset hyper-parameters take the release's values for this stage (release §2.5)."""
    recipe = recipe_defaults(stage, frame_baseline)
    return {name: getattr(FLAGS, name) if getattr(FLAGS, name) is not None else default
            for name, default in recipe.items()}


def _cached_inputs(model, stage, frame_baseline, list_file, num_classes, batch_size):
    """(suffix, dataset) of --feature_cache_dir: the model's frozen part read from the cache."""
    if frame_baseline or FLAGS.modality == "rgb+flow" or stage == 0:
        raise app.UsageError("--feature_cache_dir caches the frozen part of ActionVLAD stage 1 or 2 "
                             "of one stream (rgb or flow)")
    set_training_stage(model, stage)

    def read_videos(entries):
        return make_video_dataset(entries, FLAGS.dataset_dir, FLAGS.flow_dir, FLAGS.modality,
                                  FLAGS.frames_per_video, num_classes=num_classes, raw_frames=True)

    suffix, dataset, cache = cached_training_inputs(
        model, list_file, read_videos, FLAGS.feature_cache_dir, batch_size, FLAGS.modality,
        FLAGS.cache_views, FLAGS.seed, dtype=FLAGS.cache_dtype,
        augmentation={"image_size": FLAGS.image_size, "resize_shape": common_flags.resize_shape()},
        description={"dataset_dir": os.path.abspath(FLAGS.dataset_dir or ""),
                     "flow_dir": os.path.abspath(FLAGS.flow_dir or FLAGS.dataset_dir or ""),
                     "frames_per_video": FLAGS.frames_per_video})
    logging.info("training %s on the feature cache %s", suffix.name, cache.directory)
    return suffix, dataset


def main(argv):
    del argv
    stage = int(FLAGS.stage)
    frame_baseline = FLAGS.conv_endpoint == experiment.FRAME_BASELINE_ENDPOINT
    hyper = _recipe(frame_baseline, stage)
    # MultiWorkerMirroredStrategy must exist before TF initialises its runtime.
    strategy = make_strategy(collective_timeout_s=FLAGS.collective_timeout_s)
    experiment.set_determinism(FLAGS.seed, FLAGS.deterministic)
    policy = experiment.set_precision(FLAGS.mixed_precision)
    replicas = strategy.num_replicas_in_sync
    iter_size = FLAGS.iter_size or default_iter_size(FLAGS.batch_size, replicas)
    num_classes = experiment.num_classes_of(FLAGS.dataset_name, FLAGS.num_classes)
    list_file = experiment.split_list_file(FLAGS.dataset_list_dir, "train", FLAGS.split_id)
    logging.info("%d replica(s) × %d videos × iter_size %d = %d videos per update; policy %s",
                 replicas, FLAGS.batch_size, iter_size, replicas * FLAGS.batch_size * iter_size, policy)

    report = DatasetReport() if FLAGS.on_error == "skip" else None
    dataset = make_video_dataset(
        list_file, FLAGS.dataset_dir, FLAGS.flow_dir, FLAGS.modality, FLAGS.frames_per_video, training=True,
        batch_size=FLAGS.batch_size * replicas, image_size=FLAGS.image_size,
        resize_shape=common_flags.resize_shape(), shuffle_seed=FLAGS.seed, num_classes=num_classes,
        on_error=FLAGS.on_error, report=report, return_metadata=True)

    resuming = experiment.has_checkpoint(FLAGS.train_dir)
    # A cached run loads its initial weights even when resuming: the frozen prefix (equal to the
    # checkpoint's, being frozen) names its cache; train() then restores the trained part.
    fresh = not resuming or FLAGS.feature_cache_dir is not None
    initial = FLAGS.checkpoint_path is not None and fresh
    centers = None
    if FLAGS.pooling == "netvlad" and not frame_baseline and not initial and fresh:
        if FLAGS.centers is None:
            raise app.UsageError("stage 1 of ActionVLAD needs --centers (experiments/cluster.py) or "
                                 "--checkpoint_path")
        centers = load_centers(FLAGS.centers, FLAGS.num_clusters)
    with strategy.scope():
        model = experiment.build_model(
            num_classes, FLAGS.modality, FLAGS.pooling, FLAGS.conv_endpoint, FLAGS.fusion, FLAGS.frames_per_video,
            1, FLAGS.image_size, FLAGS.num_clusters, FLAGS.netvlad_alpha, FLAGS.pooled_dropout,
            hyper.pop("weight_decay"), FLAGS.model_name, centers, FLAGS.dropout,
            backbone_width=FLAGS.backbone_width)
        if initial:
            logging.info("initial weights from %s", load_model_weights(model, FLAGS.checkpoint_path))
        elif FLAGS.backbone_weights and fresh:
            experiment.load_backbone_weights(model, FLAGS.backbone_weights, FLAGS.modality)

    config = TrainConfig(
        train_dir=FLAGS.train_dir, iter_size=iter_size, save_every_n_steps=FLAGS.save_every_n_steps,
        keep_checkpoint_max=FLAGS.keep_checkpoint_max, log_every_n_steps=FLAGS.log_every_n_steps,
        nan_policy=FLAGS.nan_policy, learning_rate_decay_type=FLAGS.learning_rate_decay_type,
        checkpoint_iterator=FLAGS.on_error == "raise", **hyper)
    ensure_writable_dir(FLAGS.train_dir, "--train_dir")
    with atomic_output(os.path.join(FLAGS.train_dir, "flags.txt")) as temporary:
        FLAGS.append_flags_into_file(temporary)
    train_stage = (0 if stage == 0 else None) if frame_baseline else stage
    trained, export_model = model, None
    if FLAGS.feature_cache_dir:
        trained, dataset = _cached_inputs(model, stage, frame_baseline, list_file, num_classes,
                                          FLAGS.batch_size * replicas)
        train_stage, export_model = None, model
    result = train(trained, dataset, config, strategy=strategy, stage=train_stage,
                   export_model=export_model)
    print(f"step {result.step}: loss {result.loss:.4f}, accuracy {result.accuracy:.1f}% (last update); "
          f"{result.seconds_per_step or float('nan'):.3f} s/update; model {result.model_path}")
    if result.skipped_batches:
        print(f"{len(result.skipped_batches)} non-finite batch(es) skipped, see {FLAGS.train_dir}/skipped_batches.json")
    if report is not None:
        print(report.summary())


if __name__ == "__main__":
    flags.mark_flags_as_required(["train_dir", "dataset_list_dir"])
    app.run(main)
