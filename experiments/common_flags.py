"""Flags shared by train.py, eval.py and cluster.py (release names, §2.1), defined once here, and
the specs they describe (`dataset_spec`, `model_spec`, `input_spec`), built once and passed whole to
the library.

Each entry point imports this module (it sits beside them, on `sys.path` when they run), adds its
own flags and runs with `flagfiles.run(main)`. The allowed values of --dataset_name, --model_name,
--pooling and --fusion are the keys of the registries (docs/extending.md).
"""

from absl import flags

from actionvlad_tf import hardware
from actionvlad_tf.data import augment
from actionvlad_tf.data.datasets import DATASETS
from actionvlad_tf.data.datasets import dataset_spec as _dataset_spec
from actionvlad_tf.models.actionvlad import FUSIONS
from actionvlad_tf.models.registry import BACKBONES, POOLINGS
from actionvlad_tf.specs import MODALITIES, InputSpec, ModelSpec

# Data (WORKSPACE.md: <data_root>/frames, flow, lists).
flags.DEFINE_string("dataset_name", "hmdb51", f"{', '.join(DATASETS)}, or another name with --num_classes.")
flags.DEFINE_integer("num_classes", None, "Classes (default: from --dataset_name).")
flags.DEFINE_string("dataset_dir", None, "Root of the RGB frame folders <video>/image_%05d.jpg.")
flags.DEFINE_string("flow_dir", None, "Root of the flow folders <video>/flow_{x,y}_%05d.jpg.")
flags.DEFINE_string("dataset_list_dir", None, "Folder of {train,test}_split{N}.txt and actions.txt / classInd.txt.")
flags.DEFINE_integer("split_id", 1, "Split N of {train,test}_split{N}.txt.")
flags.DEFINE_enum("modality", "rgb", list(MODALITIES), "Stream(s): rgb, flow (10 x/y pairs), rgb+flow.")
flags.DEFINE_integer("frames_per_video", 25, "T, frames (or flow stacks) per video.")
flags.DEFINE_integer("batch_size", 4, "Videos per replica in a micro-batch (release: per clone).")
flags.DEFINE_integer("image_size", augment.RELEASE_IMAGE_SIZE, "Crop side S (224).")
flags.DEFINE_list(
    "resize_shape",
    [],
    "H,W every frame is first resized to (default: the release's 256,340 for "
    "--image_size=224, scaled with --image_size otherwise).",
)
flags.DEFINE_enum(
    "on_error",
    "raise",
    ["raise", "skip"],
    "Unreadable videos: raise an error naming them, or skip them and report them at the end.",
)
flags.DEFINE_integer("seed", 0, "Seed of initialisation, shuffling, crops and k-means.")
flags.DEFINE_bool("deterministic", False, "Deterministic TF ops (a resumed run equals an uninterrupted one).")
flags.DEFINE_enum(
    "mixed_precision",
    "auto",
    list(hardware.PRECISION_CHOICES) + ["true", "false"],
    "auto: bfloat16 on a CPU only where it has native bfloat16 (AMX / AVX512-BF16), bfloat16 "
    "(compute capability >= 8) or float16 on a GPU, float32 otherwise; or float32 / bfloat16 / "
    "float16; true = the device's mixed precision (float16 GPU, bfloat16 CPU), false = float32. "
    "The choice is printed with its reason.",
    case_sensitive=False,
)

# Model (release §1).
flags.DEFINE_enum("model_name", "vgg16", list(BACKBONES), "Backbone (every stream of every fusion).")
flags.DEFINE_enum(
    "pooling",
    "netvlad",
    list(POOLINGS),
    "ActionVLAD or its avg / max baselines (release §1.4); the frame baseline (--conv_endpoint=fc8) always averages.",
)
flags.DEFINE_string(
    "conv_endpoint",
    "conv5",
    "conv5 / conv4 / fc7 (pre-ReLU, paper Table 2a); fc8: the two-stream frame baseline; "
    "an Inception block for bn_inception.",
)
flags.DEFINE_enum("fusion", "late", list(FUSIONS), "Two-stream fusion for --modality=rgb+flow (paper Sec. 3.3).")
flags.DEFINE_integer("num_clusters", 64, "K.")
flags.DEFINE_float("netvlad_alpha", 1000.0, "alpha of the soft assignment.")
flags.DEFINE_float(
    "pooled_dropout",
    None,
    "Dropout on the pooled vector; default: off (the release never applied it) except "
    "0.5 after the two-stream concat / early / concat_vlad fusions.",
)
flags.DEFINE_float("dropout", 0.8, "Drop rate after fc6/fc7 of the frame baseline (release --dropout).")
flags.DEFINE_string(
    "backbone_weights",
    None,
    "imagenet, a VGG16 .h5, or a .keras model (e.g. the trained frame baseline); "
    "comma list rgb,flow for --modality=rgb+flow.",
)
flags.DEFINE_float(
    "backbone_width",
    1.0,
    "VGG-16 width multiplier (conv 64·w … 512·w, fc 4096·w); 1 is the paper's. It must "
    "match --backbone_weights (the demo stand-in: its card's width).",
)
flags.DEFINE_integer("num_crops", 1, "Test crops per frame, 1 or 5; all crops of all frames in one bag.")

# Packed videos instead of frame folders (docs/data_pipeline.md).
flags.DEFINE_string(
    "packed_files",
    None,
    "Packed shards (data_prep/build_tfrecords.py) instead of frame folders: a glob such as "
    "data/hmdb51/packed/{split}_split{split_id}-*.tfrecord ({split}: train / test).",
)
flags.DEFINE_string(
    "tfds_name",
    None,
    "A TFDS builder (e.g. action_vlad_frames/hmdb51_split1) instead of frame folders; its train / test split.",
)
flags.DEFINE_string("tfds_data_dir", None, "The TFDS data folder of --tfds_name (default TFDS's).")

FLAGS = flags.FLAGS


def resize_shape():
    return tuple(int(v) for v in FLAGS.resize_shape) or augment.default_resize_shape(FLAGS.image_size)


def dataset_spec():
    """The `DatasetSpec` of --dataset_name (and --num_classes)."""
    return _dataset_spec(FLAGS.dataset_name, FLAGS.num_classes)


def model_spec(num_classes, weight_decay=0.0):
    """The `ModelSpec` of the model flags (train.py sets the weight decay of its recipe)."""
    return ModelSpec(
        num_classes,
        modality=FLAGS.modality,
        backbone=FLAGS.model_name,
        pooling=FLAGS.pooling,
        fusion=FLAGS.fusion,
        conv_endpoint=FLAGS.conv_endpoint,
        num_clusters=FLAGS.num_clusters,
        netvlad_alpha=FLAGS.netvlad_alpha,
        pooled_dropout=FLAGS.pooled_dropout,
        fc_dropout=FLAGS.dropout,
        weight_decay=weight_decay,
        image_size=FLAGS.image_size,
        frames_per_video=FLAGS.frames_per_video,
        num_crops=FLAGS.num_crops,
        backbone_width=FLAGS.backbone_width,
    )


def input_spec():
    """The `InputSpec` of the data flags (the library sets training, batch and seed per use)."""
    if FLAGS.tfds_name:  # registers action_vlad_frames; TFDS is imported only for a TFDS run
        import actionvlad_tf.prep.tfds_builder  # noqa: F401
    return InputSpec(
        modality=FLAGS.modality,
        frames_per_video=FLAGS.frames_per_video,
        batch_size=FLAGS.batch_size,
        num_crops=FLAGS.num_crops,
        image_size=FLAGS.image_size,
        resize_shape=resize_shape(),
        on_error=FLAGS.on_error,
        frames_root=FLAGS.dataset_dir,
        flow_root=FLAGS.flow_dir,
        list_dir=FLAGS.dataset_list_dir,
        split_id=FLAGS.split_id,
        packed_files=FLAGS.packed_files,
        tfds_name=FLAGS.tfds_name,
        tfds_data_dir=FLAGS.tfds_data_dir,
    )


def specs():
    """(DatasetSpec, ModelSpec, InputSpec) of the flags."""
    dataset = dataset_spec()
    return dataset, model_spec(dataset.num_classes), input_spec()


def require_videos():
    """Makes one source of videos required: a list folder (frame folders), shards or TFDS."""
    flags.register_multi_flags_validator(
        ["dataset_list_dir", "packed_files", "tfds_name"],
        lambda values: bool(values["dataset_list_dir"] or values["packed_files"] or values["tfds_name"]),
        "give --dataset_list_dir (lists of videos in frame folders), --packed_files or --tfds_name",
    )
