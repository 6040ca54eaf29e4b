"""The tensorflow-datasets builder: a manual folder of frames, flow and lists → TFDS splits."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from frame_folders import write_list, write_video

from actionvlad_tf.data.video_input import make_video_dataset
from actionvlad_tf.prep.tfds_builder import ActionVladFrames, ActionVladFramesConfig


@pytest.fixture
def manual(tmp_path):
    """<manual>/frames (textured videos), flow in the same folders (a link), lists/."""
    folder = tmp_path / "manual"
    for i in range(3):
        write_video(folder / "frames", f"c/v{i}", 12 + i, textured=True, seed=i)
    (folder / "flow").symlink_to(folder / "frames")
    (folder / "lists").mkdir()
    write_list(folder / "lists" / "train.txt", ["c/v0 12 0", "c/v1 13 1"])
    write_list(folder / "lists" / "test.txt", ["c/v2 14 2"])
    return folder


def _prepare(tmp_path, manual, name="tiny", **config):
    config = ActionVladFramesConfig(
        name=name, num_classes=3, lists={"train": "train.txt", "test": "test.txt"}, **config
    )
    builder = ActionVladFrames(data_dir=str(tmp_path / "tfds"), config=config)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
    return builder


def test_splits_and_decoded_frames(tmp_path, manual):
    builder = _prepare(tmp_path, manual, class_names=["a", "b", "c"])
    assert {k: v.num_examples for k, v in builder.info.splits.items()} == {"train": 2, "test": 1}
    assert builder.info.features["label"].names == ["a", "b", "c"]
    example = next(iter(builder.as_dataset(split="test")))
    assert example["path"].numpy() == b"c/v2" and int(example["label"]) == 2
    assert example["rgb"].shape == (14, 24, 32, 3) and example["flow"].shape == (26, 24, 32, 1)
    folder = manual / "frames" / "c" / "v2"
    for k, image in ((0, "image_00001.jpg"), (13, "image_00014.jpg")):
        expected = tf.io.decode_jpeg(tf.io.read_file(str(folder / image)), channels=3)
        np.testing.assert_array_equal(example["rgb"][k], expected)
    flow_y2 = tf.io.decode_jpeg(tf.io.read_file(str(folder / "flow_y_00002.jpg")), channels=1)
    np.testing.assert_array_equal(example["flow"][3], flow_y2)  # interleaved x1 y1 x2 y2


def test_pipeline_on_tfds_records_equals_frame_folders(tmp_path, manual):
    builder = _prepare(tmp_path, manual)
    records = builder.as_dataset(
        split="train", decoders={"rgb": tfds.decode.SkipDecoding(), "flow": tfds.decode.SkipDecoding()}
    )
    common = dict(
        modality="rgb+flow",
        frames_per_video=3,
        flow_stack=3,
        batch_size=2,
        image_size=16,
        resize_shape=(20, 24),
        return_metadata=True,
    )
    from_tfds = list(make_video_dataset(packed_files=records, **common))
    from_folders = list(make_video_dataset(str(manual / "lists" / "train.txt"), str(manual / "frames"), **common))
    assert len(from_tfds) == len(from_folders) == 1
    tf.nest.map_structure(np.testing.assert_array_equal, from_tfds[0], from_folders[0])


def test_rgb_only_config_and_missing_stream(tmp_path, manual):
    builder = _prepare(tmp_path, manual, name="rgb_only", modality="rgb")
    assert "flow" not in builder.info.features
    records = builder.as_dataset(split="test", decoders={"rgb": tfds.decode.SkipDecoding()})
    with pytest.raises(ValueError, match=r"no \['flow'\] stream"):
        make_video_dataset(packed_files=records, modality="flow")


def test_bad_input_names_the_video(tmp_path, manual):
    (manual / "frames" / "c" / "v1" / "image_00004.jpg").unlink()
    with pytest.raises(ValueError, match=r"c/v1 \(.*train.txt:2\): 1 rgb file\(s\) missing"):
        _prepare(tmp_path, manual)
    write_list(manual / "lists" / "train.txt", ["c/v0 12 -1"])
    with pytest.raises(ValueError, match="train.txt:1: unlabelled"):
        _prepare(tmp_path, manual, name="unlabelled")


def test_registered_release_configs(tmp_path):
    builder = tfds.builder("action_vlad_frames/ucf101_split2", data_dir=str(tmp_path))
    assert builder.info.features["label"].num_classes == 101
    assert builder.info.features["label"].names[:3] == ["ApplyEyeMakeup", "ApplyLipstick", "Archery"]
    hmdb51 = tfds.builder("action_vlad_frames/hmdb51_split1", data_dir=str(tmp_path))
    assert hmdb51.info.features["label"].names[0] == "brush_hair" and hmdb51.info.features["label"].num_classes == 51
    info = builder.info
    assert "ActionVLAD" in info.description and "Girdhar" in info.citation
    assert info.homepage.startswith("https://") and info.supervised_keys == ({"rgb": "rgb", "flow": "flow"}, "label")
    assert builder.builder_config.lists == {"train": "train_split2.txt", "test": "test_split2.txt"}
    assert "manual_dir" in ActionVladFrames.MANUAL_DOWNLOAD_INSTRUCTIONS
    with pytest.raises(ValueError, match="2 class names for 3 classes"):
        ActionVladFramesConfig(name="x", num_classes=3, lists={}, class_names=["a", "b"])


def test_release_class_names_are_those_of_the_release_lists(shared_data):
    """The registered names follow the label order of the release's lists (actions.txt for HMDB51;
    the classes of UCF101's list lines, label by label)."""
    from actionvlad_tf.data.datasets import DATASETS
    from actionvlad_tf.data.lists import read_class_names

    assert list(DATASETS["hmdb51"].class_names) == read_class_names(shared_data / "hmdb51" / "actions.txt")
    entries = [line.split() for line in (shared_data / "ucf101" / "test_split1.txt").read_text().splitlines()]
    by_label = {int(label): path.split("/")[0] for path, _, label in entries}
    assert list(DATASETS["ucf101"].class_names) == [by_label[k] for k in range(101)]


def test_a_registered_config_is_an_input_source(tmp_path, manual):
    """`InputSpec(tfds_name=...)` (train.py / eval.py --tfds_name) reads a built TFDS split and gives
    the batches of the frame folders; `as_supervised` gives (video, label)."""
    from actionvlad_tf.data import sources
    from actionvlad_tf.data.datasets import DATASETS
    from actionvlad_tf.specs import InputSpec

    (manual / "lists" / "train.txt").rename(manual / "lists" / "train_split1.txt")
    (manual / "lists" / "test.txt").rename(manual / "lists" / "test_split1.txt")
    builder = tfds.builder("action_vlad_frames/hmdb51_split1", data_dir=str(tmp_path / "tfds"))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
    video, label = next(iter(builder.as_dataset(split="test", as_supervised=True)))
    assert set(video) == {"rgb", "flow"} and int(label) == 2
    common = dict(
        modality="rgb+flow",
        frames_per_video=3,
        flow_stack=3,
        batch_size=2,
        image_size=16,
        resize_shape=(20, 24),
        return_metadata=True,
    )
    from_tfds, entries = sources.split_dataset(
        DATASETS["hmdb51"],
        InputSpec(tfds_name="action_vlad_frames/hmdb51_split1", tfds_data_dir=str(tmp_path / "tfds"), **common),
        "train",
    )
    assert entries is None  # no list folder: the records carry path, label and position
    from_folders, entries = sources.split_dataset(
        DATASETS["hmdb51"],
        InputSpec(frames_root=str(manual / "frames"), list_dir=str(manual / "lists"), **common),
        "train",
    )
    assert len(entries) == 2
    (tfds_batch,), (folder_batch,) = list(from_tfds), list(from_folders)
    tf.nest.map_structure(np.testing.assert_array_equal, tfds_batch, folder_batch)
