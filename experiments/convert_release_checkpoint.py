r"""Convert the original release's checkpoints (TF 0.12 slim, V1 `.ckpt` or V2) to Keras models, and
its pickled k-means centres to `.npz`.

  # a released single-stream model (architecture read off the checkpoint: modality, K, classes)
  python experiments/convert_release_checkpoint.py checkpoint \
      --checkpoint=models/PreTrained/ActionVLAD-pretrained/hmdb51/rgb/split1/model.ckpt \
      --output=runs/release_rgb_split1/model.keras
  # RGB + flow, late-fused in one model (release weights 1:2)
  python experiments/convert_release_checkpoint.py checkpoint --checkpoint=RGB.ckpt \
      --flow_checkpoint=FLOW.ckpt --output=runs/release_two_stream/model.keras
  # k-means centres: unpickling runs code from the file, hence a subcommand of its own
  python experiments/convert_release_checkpoint.py kmeans \
      --pickle=models/kmeans-init/hmdb51/rgb_conv5_kmeans64.pkl --output=centers/rgb_k64.npz

The report lists every variable assigned, passed over (optimiser state), unmapped or missing.
Evaluate the converted model with `experiments/eval.py`, or go from a released checkpoint's name to
an evaluated model in one command with `experiments/release_model.py`.
"""

import logging

from absl import app, flags

from actionvlad_tf.atomic import save_keras_atomic
from actionvlad_tf.convert import release_ckpt, release_models
from actionvlad_tf.models import build_two_stream
from actionvlad_tf.specs import FLOW_WEIGHT

flags.DEFINE_string(
    "checkpoint",
    None,
    "checkpoint: the release checkpoint (file, V2 prefix or folder); the RGB one with --flow_checkpoint.",
)
flags.DEFINE_string("flow_checkpoint", None, "checkpoint: the flow model's checkpoint, late-fused with --checkpoint.")
flags.DEFINE_bool(
    "two_stream_checkpoint",
    False,
    "checkpoint: --checkpoint holds stream0 (RGB) and stream1 (flow) of one model (release §1.5, §2.4).",
)
flags.DEFINE_string(
    "prefix",
    None,
    "checkpoint: stream scope in the checkpoint (stream0/, stream1/ or '' "
    "for checkpoint_style None); default: detected.",
)
flags.DEFINE_float("flow_weight", FLOW_WEIGHT, "checkpoint: late-fusion flow weight (release 0.667).")
flags.DEFINE_integer("frames_per_video", None, "checkpoint: T of the Keras model; default any number of frames.")
flags.DEFINE_integer("image_size", 224, "checkpoint: crop size S.")
flags.DEFINE_bool(
    "allow_missing",
    False,
    "checkpoint: keep initial values for weights the checkpoint lacks "
    "(e.g. the ImageNet 'uptoConv5' checkpoint has no NetVLAD or classifier).",
)
flags.DEFINE_integer("num_classes", None, "checkpoint: classes, where the checkpoint has no classifier.")
flags.DEFINE_integer("num_clusters", 64, "checkpoint: K, where the checkpoint has no NetVLAD.")
flags.DEFINE_string("pickle", None, "kmeans: the release's pickled sklearn KMeans.")
flags.DEFINE_string("output", None, "checkpoint: the .keras file to write; kmeans: the .npz file.")
FLAGS = flags.FLAGS
COMMANDS = ("checkpoint", "kmeans")


def convert_checkpoint():
    if FLAGS.flow_checkpoint and FLAGS.two_stream_checkpoint:
        raise app.UsageError("--flow_checkpoint and --two_stream_checkpoint exclude each other")
    values = release_ckpt.read_checkpoint(FLAGS.checkpoint)
    if FLAGS.flow_checkpoint or FLAGS.two_stream_checkpoint:
        rgb_prefix = "stream0/" if FLAGS.two_stream_checkpoint else FLAGS.prefix
        arch = release_ckpt.release_architecture(values, rgb_prefix)
        model = build_two_stream(
            arch["num_classes"] or FLAGS.num_classes,
            fusion="late",
            frames_per_video=FLAGS.frames_per_video,
            image_size=FLAGS.image_size,
            num_clusters=arch["num_clusters"] or FLAGS.num_clusters,
            flow_weight=FLAGS.flow_weight,
        )
        reports = release_ckpt.convert_two_stream(
            model, FLAGS.checkpoint, FLAGS.flow_checkpoint, rgb_prefix, allow_missing=FLAGS.allow_missing, values=values
        )
    else:
        try:
            model = release_models.model_for_checkpoint(
                values, FLAGS.prefix, FLAGS.num_classes, FLAGS.num_clusters, FLAGS.frames_per_video, FLAGS.image_size
            )
        except ValueError as error:
            raise app.UsageError(str(error)) from error
        reports = [
            release_ckpt.load_release_checkpoint(model, FLAGS.checkpoint, FLAGS.prefix, FLAGS.allow_missing, values)
        ]
    for report in reports:
        print(report.summary())
    print(f"Keras model: {save_keras_atomic(model, FLAGS.output)}")


def convert_kmeans():
    logging.warning(
        "Unpickling %s runs code stored in the file. Only convert k-means pickles from a source you trust.",
        FLAGS.pickle,
    )
    centers = release_ckpt.kmeans_centers_from_pickle(FLAGS.pickle)
    release_ckpt.save_centers_npz(centers, FLAGS.output)
    print(f"{FLAGS.output}: centers {centers.shape[0]} x {centers.shape[1]}")


def main(argv):
    if len(argv) != 2 or argv[1] not in COMMANDS:
        raise app.UsageError(f"usage: {argv[0]} {{{'|'.join(COMMANDS)}}} --flags (see the module docstring)")
    required = {"checkpoint": ("checkpoint", "output"), "kmeans": ("pickle", "output")}[argv[1]]
    missing = [f"--{name}" for name in required if not getattr(FLAGS, name)]
    if missing:
        raise app.UsageError(f"{argv[1]} needs {' and '.join(missing)}")
    if argv[1] == "checkpoint":
        convert_checkpoint()
    else:
        convert_kmeans()


if __name__ == "__main__":
    app.run(main)
