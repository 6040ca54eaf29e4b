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

import dataclasses

import common_flags
import flagfiles
from absl import app, flags

from actionvlad_tf.training.run import TrainOptions, train_experiment
from actionvlad_tf.training.trainer import LEARNING_RATE_DECAY_TYPES, NAN_POLICIES, OPTIMIZERS, TrainConfig

flags.DEFINE_string("train_dir", None, "Checkpoints, summaries, flags.txt and model.keras; a restart resumes.")
flags.DEFINE_enum(
    "stage",
    "1",
    ["0", "1", "2"],
    "1: classifier only; 2: conv5 + VLAD + classifier; 0: everything. Frame baseline: "
    "0 trains all layers, else fc6-fc8 (release 005).",
)
flags.DEFINE_string(
    "checkpoint_path",
    None,
    "Initial weights (stage 2: the stage-1 train_dir, a checkpoint or a .keras file); "
    "ignored when --train_dir already holds a checkpoint (release §2.1).",
)
flags.DEFINE_string("centers", None, "k-means centres .npz (cluster.py) for stage 1 of --pooling=netvlad.")
flags.DEFINE_integer(
    "videos_per_update", None, "Videos of one parameter update, all replicas and micro-batches together (release: 16)."
)
flags.DEFINE_integer(
    "videos_per_micro_batch",
    None,
    "Videos of one micro-batch, all replicas together: the unit whose gradient is clipped "
    "(release: 8 in stage 1, 16 in stage 2 and the frame baseline). The per-replica batch is "
    "this / replicas and iter_size videos_per_update / this; a replica count that does not "
    "divide it is an error naming the fix.",
)
flags.DEFINE_integer(
    "cpu_replicas",
    None,
    "Rehearse N replicas without GPUs: split the CPU into N logical devices, one replica "
    "each (default: $ACTIONVLAD_CPU_REPLICAS, else the devices as they are).",
)
flags.DEFINE_integer("iter_size", None, "Not set by hand: derived, videos_per_update / videos_per_micro_batch.")
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
flags.DEFINE_enum(
    "nan_policy",
    "raise",
    list(NAN_POLICIES),
    "Non-finite loss: raise (naming step and videos) or skip the batch (counted, named).",
)
flags.DEFINE_float("collective_timeout_s", None, "Multi-worker: seconds a collective waits for a dead peer.")
flags.DEFINE_string(
    "feature_cache_dir",
    None,
    "Opt-in feature cache (docs/performance.md): the frozen part of the stage (stage 2: "
    "conv1_1-pool4; stage 1: all but the classifier) is computed once per video and view, "
    "stored here keyed by its weights, the preprocessing and the list, and only the rest "
    "trains. Each video then has --cache_views fixed crops, not a new one per visit (§3.6).",
)
flags.DEFINE_integer("cache_views", 4, "Augmentation views per video in the feature cache.")
flags.DEFINE_bool(
    "cache_via_stage2",
    False,
    "Stage 1: build stage 2's cache (per-frame pool4 maps) first and compute stage 1's features from "
    "it, so that one pass over the frames serves both stages and every pooling of a stream (at the "
    "disk cost of stage 2's cache).",
)
flags.DEFINE_integer(
    "cache_frames_per_video",
    None,
    "The frame baseline (--conv_endpoint=fc8) with --feature_cache_dir: train on single frames of "
    "ActionVLAD's stage-2 cache of views of this many frames (ActionVLAD's --frames_per_video), one "
    "random frame of one random view per visit, building that cache if it is not there.",
)
flags.DEFINE_enum(
    "cache_dtype", "float32", ["float32", "float16"], "Storage dtype of the feature cache (float16 halves the disk)."
)
FLAGS = flags.FLAGS


def _flags_named_as(cls, exclude=()):
    """{field: flag value} for the fields of the dataclass `cls` that a flag of the same name sets
    (None, a flag left unset with no default, leaves the field's default): a new setting is its
    field and its flag."""
    return {
        field.name: FLAGS[field.name].value
        for field in dataclasses.fields(cls)
        if field.name in FLAGS and field.name not in exclude and FLAGS[field.name].value is not None
    }


def main(argv):
    del argv
    for name in ("batch_size", "iter_size"):
        if FLAGS[name].present:
            raise app.UsageError(
                f"train.py derives --{name} from the global --videos_per_update and --videos_per_micro_batch "
                "and the replica count, so an update is the same on any number of replicas (docs/training.md); "
                f"drop --{name}, e.g. --batch_size=4 --iter_size=4 on one device is --videos_per_micro_batch=4 "
                "--videos_per_update=16"
            )
    dataset, model, inputs = common_flags.specs()
    config = TrainConfig(**_flags_named_as(TrainConfig, exclude=("iter_size",)))
    options = TrainOptions(config, **{**_flags_named_as(TrainOptions), "stage": int(FLAGS.stage)})
    result, report = train_experiment(dataset, model, inputs, options, write_flags=FLAGS.append_flags_into_file)
    print(
        f"step {result.step}: loss {result.loss:.4f}, accuracy {result.accuracy:.1f}% (last update); "
        f"{result.seconds_per_step or float('nan'):.3f} s/update; model {result.model_path}"
    )
    if result.skipped_batches:
        print(f"{len(result.skipped_batches)} non-finite batch(es) skipped, see {FLAGS.train_dir}/skipped_batches.json")
    if report is not None:
        print(report.summary())


if __name__ == "__main__":
    flags.mark_flags_as_required(["train_dir"])
    common_flags.require_videos()
    flagfiles.run(main)
