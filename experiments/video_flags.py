"""Flags shared by the entry points that run a trained model on videos (predict, extract_features),
defined once, and the `Classifier` and video jobs they describe.

Each of them imports this module (it sits beside them, on `sys.path` when they run).
"""

from absl import flags

import actionvlad_tf  # noqa: F401  (registers the layers that load_model needs)
from actionvlad_tf.data.lists import read_class_names
from actionvlad_tf.export import predictor, video_batch
from actionvlad_tf.prep.extraction import DEFAULT_FLOW_BOUND, FLOW_METHODS

flags.DEFINE_string("model", None, "A .keras file, a SavedModel folder, or an export folder (highest version).")
flags.DEFINE_string(
    "videos",
    None,
    "A folder (video files and frame folders under it, recursively) or a list "
    "file (one video file or frame folder per line, relative to the list's folder).",
)
flags.DEFINE_string(
    "class_names",
    None,
    "Class names in label order (actions.txt / classInd.txt), for a .keras model; a SavedModel has them baked in.",
)
flags.DEFINE_integer(
    "frames_per_video",
    predictor.DEFAULT_FRAMES_PER_VIDEO,
    "T, for a model that accepts any number of frames; otherwise the model's T.",
)
flags.DEFINE_integer("num_crops", 1, "Test crops for a .keras model (1 or 5, release §3.7).")
flags.DEFINE_enum("flow_method", "tvl1", list(FLOW_METHODS), "Optical flow for flow models (data_prep's).")
flags.DEFINE_float(
    "flow_bound",
    DEFAULT_FLOW_BOUND,
    "Flow is clipped to ±bound pixels before quantisation: "
    "the bound the model's training flow was extracted with (extract_flow.py --bound).",
)
flags.DEFINE_integer(
    "workers",
    video_batch.DEFAULT_WORKERS,
    "With --videos: threads decoding (and computing flow for) the next videos while the model runs.",
)
flags.DEFINE_bool("progress", True, "With --videos: a progress bar.")
FLAGS = flags.FLAGS


def classifier(assignments=False):
    """The `predictor.Classifier` of --model (--class_names, --num_crops)."""
    names = read_class_names(FLAGS.class_names) if FLAGS.class_names else None
    return predictor.Classifier(FLAGS.model, names, FLAGS.num_crops, assignments=assignments)


def run_options():
    """The keyword arguments of `predictions.predict_videos` / `features.extract_features` set by flags."""
    return dict(
        frames_per_video=FLAGS.frames_per_video,
        flow_method=FLAGS.flow_method,
        flow_bound=FLAGS.flow_bound,
        workers=FLAGS.workers,
        progress=FLAGS.progress,
    )
