"""Flags shared by the figure entry points (viz_action_words, viz_top_words, viz_tsne), defined once.

Each of them imports this module (it sits beside them, on `sys.path` when they run).
"""

import keras
from absl import flags

import actionvlad_tf  # noqa: F401  (registers the layers that load_model needs)
from actionvlad_tf.prep.extraction import FLOW_METHODS
from actionvlad_tf.viz import common

flags.DEFINE_string("model", None, "A trained .keras ActionVLAD model (viz_tsne rgb_vs_flow: a late-fusion one).")
flags.DEFINE_enum("modality", None, ["rgb", "flow"], "The stream to show, for a late-fusion two-stream model.")
flags.DEFINE_integer("frames_per_video", 25, "T: frames sampled per video (for a model with a fixed T, its T).")
flags.DEFINE_enum("flow_method", "tvl1", list(FLOW_METHODS), "Optical flow for flow models (data_prep's).")
FLAGS = flags.FLAGS


def load_stream_model():
    """The single-stream model of --model (its --modality stream for a late-fusion model)."""
    return common.stream_model(keras.saving.load_model(FLAGS.model), FLAGS.modality)
