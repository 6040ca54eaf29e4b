"""Flags shared by train.py, eval.py and cluster.py (release names, §2.1), defined once here.

Each entry point imports this module (it sits beside them, on `sys.path` when they run) and adds
its own flags.
"""
from absl import flags

from actionvlad_tf import hardware
from actionvlad_tf.data import augment
from actionvlad_tf.models.actionvlad import FUSIONS, POOLINGS

# Data (WORKSPACE.md: <data_root>/frames, flow, lists).
flags.DEFINE_string("dataset_name", "hmdb51", "hmdb51, ucf101, charades, or another name with --num_classes.")
flags.DEFINE_integer("num_classes", None, "Classes (default: from --dataset_name).")
flags.DEFINE_string("dataset_dir", None, "Root of the RGB frame folders <video>/image_%05d.jpg.")
flags.DEFINE_string("flow_dir", None, "Root of the flow folders <video>/flow_{x,y}_%05d.jpg.")
flags.DEFINE_string("dataset_list_dir", None, "Folder of {train,test}_split{N}.txt and actions.txt / classInd.txt.")
flags.DEFINE_integer("split_id", 1, "Split N of {train,test}_split{N}.txt.")
flags.DEFINE_enum("modality", "rgb", ["rgb", "flow", "rgb+flow"], "Stream(s): rgb, flow (10 x/y pairs), rgb+flow.")
flags.DEFINE_integer("frames_per_video", 25, "T, frames (or flow stacks) per video.")
flags.DEFINE_integer("batch_size", 4, "Videos per replica in a micro-batch (release: per clone).")
flags.DEFINE_integer("image_size", augment.RELEASE_IMAGE_SIZE, "Crop side S (224).")
flags.DEFINE_list("resize_shape", [],
                  "H,W every frame is first resized to (default: the release's 256,340 for "
                  "--image_size=224, scaled with --image_size otherwise).")
flags.DEFINE_enum("on_error", "raise", ["raise", "skip"],
                  "Unreadable videos: raise an error naming them, or skip them and report them at the end.")
flags.DEFINE_integer("seed", 0, "Seed of initialisation, shuffling, crops and k-means.")
flags.DEFINE_bool("deterministic", False, "Deterministic TF ops (a resumed run equals an uninterrupted one).")
flags.DEFINE_enum("mixed_precision", "auto", list(hardware.PRECISION_CHOICES) + ["true", "false"],
                  "auto: bfloat16 on a CPU only where it has native bfloat16 (AMX / AVX512-BF16), bfloat16 "
                  "(compute capability >= 8) or float16 on a GPU, float32 otherwise; or float32 / bfloat16 / "
                  "float16; true = the device's mixed precision (float16 GPU, bfloat16 CPU), false = float32. "
                  "The choice is printed with its reason.", case_sensitive=False)

# Model (release §1).
flags.DEFINE_enum("model_name", "vgg16", ["vgg16", "bn_inception"], "Backbone.")
flags.DEFINE_enum("pooling", "netvlad", list(POOLINGS), "ActionVLAD or its avg / max baselines (release §1.4); the frame baseline (--conv_endpoint=fc8) always averages.")
flags.DEFINE_string("conv_endpoint", "conv5",
                    "conv5 / conv4 / fc7 (pre-ReLU, paper Table 2a); fc8: the two-stream frame baseline; "
                    "an Inception block for bn_inception.")
flags.DEFINE_enum("fusion", "late", list(FUSIONS), "Two-stream fusion for --modality=rgb+flow (paper Sec. 3.3).")
flags.DEFINE_integer("num_clusters", 64, "K.")
flags.DEFINE_float("netvlad_alpha", 1000.0, "alpha of the soft assignment.")
flags.DEFINE_float("pooled_dropout", None,
                   "Dropout on the pooled vector; default: off (the release never applied it) except "
                   "0.5 after the two-stream concat / early / concat_vlad fusions.")
flags.DEFINE_float("dropout", 0.8, "Drop rate after fc6/fc7 of the frame baseline (release --dropout).")
flags.DEFINE_string("backbone_weights", None,
                    "imagenet, a VGG16 .h5, or a .keras model (e.g. the trained frame baseline); "
                    "comma list rgb,flow for --modality=rgb+flow.")
flags.DEFINE_float("backbone_width", 1.0,
                   "VGG-16 width multiplier (conv 64·w … 512·w, fc 4096·w); 1 is the paper's. It must "
                   "match --backbone_weights (the demo stand-in: its card's width).")
flags.DEFINE_integer("num_crops", 1, "Test crops per frame, 1 or 5; all crops of all frames in one bag.")

FLAGS = flags.FLAGS


def resize_shape():
    return tuple(int(v) for v in FLAGS.resize_shape) or augment.default_resize_shape(FLAGS.image_size)
