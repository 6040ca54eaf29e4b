"""What an experiment is, as three small frozen records passed whole to the library, and the
constants every layer shares. The bottom of the package: it imports nothing from the project.

* `DatasetSpec`: what a dataset is (classes, class names, how its lists read, single or multi
  label, its metric). The known ones are registered in `actionvlad_tf.data.datasets.DATASETS`.
* `ModelSpec`: the model a flag set describes (modality, backbone, pooling, fusion, endpoint, K,
  α, dropout, weight decay, image size, frames); `actionvlad_tf.models.build_model(spec)`.
* `InputSpec`: where the videos are and how a tf.data pipeline samples and preprocesses them;
  `actionvlad_tf.data.video_input.make_dataset(spec, ...)`.

The entry points build them once from flags (`experiments/common_flags.py`).
"""

import dataclasses
from typing import Callable, Optional, Tuple

# Streams of each modality, in the order two-stream models take them.
STREAMS = {"rgb": ("rgb",), "flow": ("flow",), "rgb+flow": ("rgb", "flow")}
MODALITIES = tuple(STREAMS)
FLOW_STACK = 10  # L, flow images per direction in a flow stack (release §3.3)
# Channels of the frames the pipeline yields: BGR, and x, y of L flow images (release §3.5).
INPUT_CHANNELS = {"rgb": 3, "flow": 2 * FLOW_STACK}
FLOW_WEIGHT = 0.667  # late fusion (1 − w)·rgb + w·flow on raw logits, release `--temporal_ratio` (§6.3)
CHARADES_NUM_CLASSES = 157
FRAME_BASELINE_ENDPOINT = "fc8"  # conv_endpoint of the two-stream frame baseline (release §1.4)
RGB_TEMPLATE = "image_%05d.jpg"  # frame file names in a video folder (release §3.1)
FLOW_TEMPLATE = "flow_{}_%05d.jpg"  # {} = x or y
RELEASE_IMAGE_SIZE = 224
METRICS = ("accuracy", "charades_map")


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """A dataset: its classes and how its list files and results read.

    Attributes:
        name: registry key (`--dataset_name`).
        num_classes: C.
        class_names: names in label order, or None (then `class_names_file` in the list folder).
        class_names_file: file name in the list folder holding the names (actions.txt,
            classInd.txt), or None.
        list_reader: `reader(path, num_classes) → [VideoEntry]`; None is
            `actionvlad_tf.data.lists.read_list`.
        multi_label: a video has several classes (Charades); its test lists carry label −1.
        metric: "accuracy" (top-1/5, mean class, confusion) or "charades_map" (mAP, wAP).
    """

    name: str
    num_classes: int
    class_names: Optional[Tuple[str, ...]] = None
    class_names_file: Optional[str] = None
    list_reader: Optional[Callable] = None
    multi_label: bool = False
    metric: str = "accuracy"

    def __post_init__(self):
        if self.num_classes < 1:
            raise ValueError(f"dataset {self.name!r}: num_classes must be positive, got {self.num_classes}")
        if self.metric not in METRICS:
            raise ValueError(f"dataset {self.name!r}: metric must be one of {METRICS}, got {self.metric!r}")
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise ValueError(
                f"dataset {self.name!r}: {len(self.class_names)} class names for {self.num_classes} classes"
            )


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """The model of an experiment (release §1.3–§1.6).

    Attributes:
        num_classes: C, the number of action classes.
        modality: "rgb" (3 channels, BGR minus [104, 117, 123]), "flow" (20 channels minus 128) or
            "rgb+flow" (two streams, joined by `fusion`).
        backbone: a key of `actionvlad_tf.models.registry.BACKBONES` (`--model_name`): "vgg16" or
            "bn_inception" (the Charades backbone, release §7).
        pooling: a key of `actionvlad_tf.models.registry.POOLINGS`: "netvlad" (ActionVLAD), "avg"
            or "max" over the pre-ReLU map (release §1.4).
        fusion: a key of `actionvlad_tf.models.actionvlad.FUSIONS` (two streams only; see
            `two_stream_from_spec`).
        conv_endpoint: the backbone's pooled map: "conv5" (pre-ReLU conv5_3), "conv4" or "fc7"
            (paper Table 2a) for VGG-16, a block name for BN-Inception ("inception_5a"); "fc8" is
            the frame baseline (a backbone with a frame classifier: VGG-16).
        num_clusters, netvlad_alpha: K (64) and α (1000) of NetVLAD.
        pooled_dropout: dropout on the pooled vector; None: the release's default for the variant
            (0 for one stream and late fusion: an always-false condition, §1.3, §8 row 1; 0.5 for
            the single-classifier fusions, §1.5). The paper's 0.5 by argument.
        fc_dropout: drop rate after fc6 / fc7 of the frame baseline (release `--dropout` 0.8).
        weight_decay: slim L2 (wd·Σw²/2) on conv and classifier kernels, as Keras L2(wd/2); none
            on the VLAD weights and biases; 0 for evaluation graphs (release §1.6).
        image_size: S, the crop side (224).
        frames_per_video: T (25); None accepts any number of frames. With `num_crops` the bag
            holds T · crops frames.
        num_crops: test crops per frame, all in one bag (release §3.7).
        backbone_width: channel multiplier of the backbone (1.0: the published network).
    """

    num_classes: int
    modality: str = "rgb"
    backbone: str = "vgg16"
    pooling: str = "netvlad"
    fusion: str = "late"
    conv_endpoint: str = "conv5"
    num_clusters: int = 64
    netvlad_alpha: float = 1000.0
    pooled_dropout: Optional[float] = None
    fc_dropout: float = 0.8
    weight_decay: float = 4e-5
    image_size: int = RELEASE_IMAGE_SIZE
    frames_per_video: Optional[int] = 25
    num_crops: int = 1
    backbone_width: float = 1.0

    def __post_init__(self):
        if self.modality not in STREAMS:
            raise ValueError(f"modality {self.modality!r} is not one of {MODALITIES}")

    @property
    def streams(self):
        return STREAMS[self.modality]

    @property
    def frame_baseline(self):
        return self.conv_endpoint == FRAME_BASELINE_ENDPOINT

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """Where the videos are and how one pipeline samples and preprocesses them (release §3).

    Source (one of): a list file with frame folders `frames_root` / `flow_root`; `packed_files`;
    or `tfds_name`. `actionvlad_tf.data.video_input.make_dataset(spec, ...)` builds the pipeline.

    Attributes:
        modality: "rgb", "flow" or "rgb+flow".
        frames_per_video: T (25 in the release).
        training: random crop/flip, per-epoch shuffle, repeat; else list order, one pass.
        batch_size: videos per batch; the GLOBAL batch when `make_dataset` gets an `input_context`.
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
        on_error: "raise" or "skip" (needs a `report`; implies `validate`).
        validate: scan every video folder before building the dataset; all problems at once.
        return_metadata: add {"index", "path"} per video.
        shuffle_buffer: videos in the shuffle buffer of packed records in training (shard files
            are also shuffled every epoch).
        num_parallel_calls: parallel reads/decodes (AUTOTUNE).
        raw_frames: yield the decoded uint8 frames [B, T, H, W, C] (a dict for rgb+flow) with no
            resize, crop or means, for callers that crop themselves (the feature cache); with
            frames of different sizes keep batch_size 1.
        frames_root: root of `<video>/image_%05d.jpg` folders (RGB).
        flow_root: root of `<video>/flow_{x,y}_%05d.jpg` folders; defaults to `frames_root` (TSN
            dumps keep frames and flow in one folder).
        list_dir, split_id: the folder of `{train,test}_split{N}.txt` lists and N.
        packed_files: a shard glob, `{split}` and `{split_id}` filled in by `packed_pattern`.
        tfds_name, tfds_data_dir: a TFDS builder name and its data folder.
    """

    modality: str = "rgb"
    frames_per_video: Optional[int] = 25
    training: bool = False
    batch_size: int = 1
    num_crops: int = 1
    image_size: int = RELEASE_IMAGE_SIZE
    resize_shape: Optional[Tuple[int, int]] = None
    flow_stack: int = FLOW_STACK
    rgb_template: str = RGB_TEMPLATE
    flow_template: str = FLOW_TEMPLATE
    shuffle_seed: Optional[int] = None
    temporal_jitter: bool = False
    invert_flow_on_flip: bool = False
    half_pixel_centers: bool = False
    num_classes: Optional[int] = None
    on_error: str = "raise"
    validate: bool = False
    return_metadata: bool = False
    shuffle_buffer: int = 64
    num_parallel_calls: int = -1  # tf.data.AUTOTUNE
    raw_frames: bool = False
    frames_root: Optional[str] = None
    flow_root: Optional[str] = None
    list_dir: Optional[str] = None
    split_id: int = 1
    packed_files: Optional[str] = None
    tfds_name: Optional[str] = None
    tfds_data_dir: Optional[str] = None

    def __post_init__(self):
        if self.modality not in STREAMS:
            raise ValueError(f"modality {self.modality!r} is not one of {MODALITIES}")
        if self.packed_files and self.tfds_name:
            raise ValueError("give packed_files or tfds_name, not both")

    @property
    def streams(self):
        return STREAMS[self.modality]

    @property
    def random_frames(self):
        """Training draws random frames per video for T = 1 or with temporal jitter (release §3.3)."""
        return self.training and (self.temporal_jitter or self.frames_per_video == 1)

    @property
    def from_records(self):
        """Whether the videos come from packed shards or TFDS rather than frame folders."""
        return bool(self.packed_files or self.tfds_name)

    def packed_pattern(self, split_name):
        """`packed_files` with `{split}` (train / test) and `{split_id}` filled in."""
        return self.packed_files.format(split=split_name, split_id=self.split_id)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)
