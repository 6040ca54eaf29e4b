"""A tensorflow-datasets builder of frame/flow folders and list files (manual download).

    import tensorflow_datasets as tfds
    import actionvlad_tf.prep.tfds_builder  # registers "action_vlad_frames"

    builder = tfds.builder("action_vlad_frames/hmdb51_split1", data_dir="~/tensorflow_datasets")
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir="data/hmdb51"))
    train = builder.as_dataset(split="train")  # dicts of decoded frames, label, path, …

The manual folder holds the release layout (§3.1-3.2): `frames/<video>/image_%05d.jpg`,
`flow/<video>/flow_{x,y}_%05d.jpg` and the list files in `lists/` (`data_prep/make_lists.py`
writes them). A custom dataset is a `ActionVladFramesConfig(name=..., num_classes=..., lists=...)`
passed as `config=`.

One example per video, with the same content as a packed record (`actionvlad_tf.data.packed`):
the JPEG bytes are stored unchanged (`tfds.features.Image` keeps given bytes), so

    records = builder.as_dataset(split="test", decoders={
        "rgb": tfds.decode.SkipDecoding(), "flow": tfds.decode.SkipDecoding()})
    make_video_dataset(packed_files=records, modality="rgb+flow", ...)

gives exactly the batches of the frame-folder pipeline.
"""

import os

import numpy as np
import tensorflow_datasets as tfds

from actionvlad_tf.data.datasets import DATASETS
from actionvlad_tf.data.lists import read_list
from actionvlad_tf.prep.shards import read_video_contents
from actionvlad_tf.specs import FLOW_TEMPLATE, RGB_TEMPLATE, STREAMS

_DESCRIPTION = """\
Action recognition videos as the ActionVLAD release reads them (Girdhar et al., CVPR 2017): per
video, its RGB frames and its TV-L1 optical flow as JPEG sequences (flow x and y interleaved), with
its class label, its position in the list file and the list line it came from. The JPEG bytes are
those of the frame folders, unchanged, so a pipeline on these records gives exactly the batches of
the frame-folder pipeline.
"""
_CITATION = """\
@inproceedings{Girdhar_17a_ActionVLAD,
  title = {{ActionVLAD}: Learning spatio-temporal aggregation for action classification},
  author = {Girdhar, Rohit and Ramanan, Deva and Gupta, Abhinav and Sivic, Josef and Russell, Bryan},
  booktitle = {CVPR},
  year = {2017}
}
"""
_HOMEPAGE = "https://rohitgirdhar.github.io/ActionVLAD/"

_MANUAL_INSTRUCTIONS = """\
Extract frames and flow with data_prep/extract_frames.py and data_prep/extract_flow.py and write
lists with data_prep/make_lists.py, into one folder:
  <manual_dir>/frames/<video>/image_%05d.jpg
  <manual_dir>/flow/<video>/flow_x_%05d.jpg, flow_y_%05d.jpg
  <manual_dir>/lists/<the list files of the config, e.g. train_split1.txt, test_split1.txt>
"""


class ActionVladFramesConfig(tfds.core.BuilderConfig):
    """Which lists make which splits, the class count and the streams stored.

    Args:
        num_classes: C (labels must be 0 … C−1; −1 "unlabelled" lines cannot be a ClassLabel).
        lists: {split name: list file name in `<manual_dir>/lists`}.
        modality: streams stored: "rgb", "flow" or "rgb+flow".
        class_names: optional names in label order (else the labels are numbered).
        rgb_template, flow_template: frame and flow file names.
    """

    def __init__(
        self,
        *,
        num_classes,
        lists,
        modality="rgb+flow",
        class_names=None,
        rgb_template=RGB_TEMPLATE,
        flow_template=FLOW_TEMPLATE,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(f"{len(class_names)} class names for {num_classes} classes")
        self.num_classes = num_classes
        self.lists = dict(lists)
        self.modality = modality
        self.class_names = class_names
        self.rgb_template = rgb_template
        self.flow_template = flow_template


def _release_configs(dataset):
    spec = DATASETS[dataset]
    return [
        ActionVladFramesConfig(
            name=f"{dataset}_split{n}",
            num_classes=spec.num_classes,
            class_names=spec.class_names,
            lists={"train": f"train_split{n}.txt", "test": f"test_split{n}.txt"},
            description=f"{dataset} split {n}: RGB frames and TV-L1 flow stacks, release lists",
        )
        for n in (1, 2, 3)
    ]


class ActionVladFrames(tfds.core.GeneratorBasedBuilder):
    """Videos as JPEG frame and flow sequences, from a manual folder of frames and lists."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Frames, interleaved flow, label, list position and line."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = _MANUAL_INSTRUCTIONS
    BUILDER_CONFIGS = _release_configs("hmdb51") + _release_configs("ucf101")

    def _info(self):
        config = self.builder_config
        label = (
            tfds.features.ClassLabel(names=list(config.class_names))
            if config.class_names
            else tfds.features.ClassLabel(num_classes=config.num_classes)
        )
        features = {
            "path": tfds.features.Text(doc="video folder relative to the frame root"),
            "where": tfds.features.Text(doc="list_file:line"),
            "index": tfds.features.Scalar(np.int64, doc="position in the list"),
            "label": label,
            "num_frames": tfds.features.Scalar(np.int64, doc="frames of the video (clip)"),
            "start_frame": tfds.features.Scalar(np.int64, doc="0-based clip offset"),
        }
        if "rgb" in STREAMS[config.modality]:
            features["rgb"] = tfds.features.Sequence(
                tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg"), doc="frames start+1 … start+n"
            )
        if "flow" in STREAMS[config.modality]:
            features["flow"] = tfds.features.Sequence(
                tfds.features.Image(shape=(None, None, 1), encoding_format="jpeg"),
                doc="flow start+1 … start+n−1, interleaved x, y, x, y, …",
            )
        streams = STREAMS[config.modality]
        video = streams[0] if len(streams) == 1 else {stream: stream for stream in streams}
        return self.dataset_info_from_configs(
            description=_DESCRIPTION,
            features=tfds.features.FeaturesDict(features),
            supervised_keys=(video, "label"),
            homepage=_HOMEPAGE,
            citation=_CITATION,
        )

    def _split_generators(self, dl_manager):
        manual = os.fspath(dl_manager.manual_dir)
        return {
            split: self._generate_examples(manual, os.path.join(manual, "lists", name))
            for split, name in self.builder_config.lists.items()
        }

    def _generate_examples(self, manual_dir, list_file):
        config = self.builder_config
        for position, entry in enumerate(read_list(list_file, config.num_classes)):
            if entry.label < 0:
                raise ValueError(f"{entry.where}: unlabelled video (label -1) in a ClassLabel dataset")
            contents, problem = read_video_contents(
                entry,
                os.path.join(manual_dir, "frames"),
                os.path.join(manual_dir, "flow"),
                config.modality,
                config.rgb_template,
                config.flow_template,
            )
            if problem is not None:
                raise ValueError(f"{entry.path} ({entry.where}): {problem}")
            yield (
                position,
                {
                    "path": entry.path,
                    "where": entry.where,
                    "index": position,
                    "label": entry.label,
                    "num_frames": entry.num_frames,
                    "start_frame": entry.start_frame,
                    **contents,
                },
            )
