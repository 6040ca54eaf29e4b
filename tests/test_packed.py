"""Packed shards: writer, parser, resume, bad input, and outputs identical to frame folders."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from frame_folders import write_list, write_video

from actionvlad_tf.data.frames import DatasetReport
from actionvlad_tf.data.lists import read_list
from actionvlad_tf.data.packed import parse_video_example
from actionvlad_tf.data.video_input import make_video_dataset
from actionvlad_tf.prep.shards import write_packed_shards

SMALL = {"image_size": 16, "resize_shape": (20, 24)}


@pytest.fixture
def textured(tmp_path):
    """Five textured videos with flow (one of them a 4-column clip list would cut), and a list."""
    root = tmp_path / "frames"
    counts = (12, 15, 11, 20, 13)
    for i, n in enumerate(counts):
        write_video(root, f"c{i % 2}/v{i}", n, textured=True, seed=i)
    lines = [f"c{i % 2}/v{i} {n} {i % 3}" for i, n in enumerate(counts)]
    return root, write_list(tmp_path / "list.txt", lines)


def _batches(dataset):
    return [tf.nest.map_structure(lambda t: t.numpy(), b) for b in dataset]


def _assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        tf.nest.map_structure(np.testing.assert_array_equal, x, y)


@pytest.mark.parametrize("modality, num_crops", [("rgb", 1), ("flow", 5), ("rgb+flow", 1)])
def test_packed_outputs_identical_to_frame_folders(textured, tmp_path, modality, num_crops):
    root, list_file = textured
    prefix = str(tmp_path / "packed" / "train")
    shards = write_packed_shards(
        read_list(list_file), prefix, str(root), modality="rgb+flow", num_shards=3, progress=False
    )
    assert [os.path.basename(s) for s in shards] == [f"train-0000{i}-of-00003.tfrecord" for i in range(3)]
    common = dict(
        modality=modality,
        frames_per_video=3,
        flow_stack=4,
        num_crops=num_crops,
        batch_size=2,
        return_metadata=True,
        **SMALL,
    )
    folders = _batches(make_video_dataset(list_file, str(root), **common))
    packed = _batches(make_video_dataset(packed_files=prefix + "-*.tfrecord", **common))
    _assert_same(folders, packed)
    assert np.concatenate([b[2]["index"] for b in packed]).tolist() == [0, 1, 2, 3, 4]


def test_packed_four_column_clips_identical(tmp_path):
    root = tmp_path / "frames"
    write_video(root, "x/long", 40, textured=True)
    list_file = write_list(tmp_path / "clips.txt", ["x/long 12 20 3", "x/long 0 15 4"])
    prefix = str(tmp_path / "clips")
    write_packed_shards(read_list(list_file), prefix, str(root), modality="flow", progress=False)
    record = next(iter(tf.data.TFRecordDataset(prefix + "-00000-of-00001.tfrecord")))
    parsed = parse_video_example(record, "flow")
    assert parsed["flow"].shape == (2 * 19,) and int(parsed["start_frame"]) == 12
    assert parsed["where"].numpy().decode() == f"{list_file}:1"
    common = dict(modality="flow", frames_per_video=2, flow_stack=5, batch_size=2, **SMALL)
    _assert_same(
        _batches(make_video_dataset(list_file, str(root), **common)),
        _batches(make_video_dataset(packed_files=[prefix + "-00000-of-00001.tfrecord"], **common)),
    )


def test_packed_training(textured, tmp_path):
    root, list_file = textured
    prefix = str(tmp_path / "train")
    write_packed_shards(read_list(list_file), prefix, str(root), num_shards=2, progress=False)
    dataset = make_video_dataset(
        packed_files=prefix + "-*.tfrecord",
        frames_per_video=3,
        training=True,
        batch_size=2,
        shuffle_seed=0,
        return_metadata=True,
        **SMALL,
    )
    batches = _batches(dataset.take(10))  # 4 epochs of 5 videos
    assert all(b[0].shape == (2, 3, 16, 16, 3) for b in batches)
    indices = np.concatenate([b[2]["index"] for b in batches])
    assert sorted(indices[:5]) == [0, 1, 2, 3, 4] and sorted(indices[5:10]) == [0, 1, 2, 3, 4]


def test_resume_keeps_complete_shards_and_redoes_missing_ones(textured, tmp_path):
    root, list_file = textured
    entries = read_list(list_file)
    prefix = str(tmp_path / "resume")
    shards = write_packed_shards(entries, prefix, str(root), num_shards=2, progress=False)
    first_mtime = os.stat(shards[0]).st_mtime_ns
    os.remove(shards[1])  # as if the first run died while writing shard 2
    again = write_packed_shards(entries, prefix, str(root), num_shards=2, progress=False)
    assert os.stat(again[0]).st_mtime_ns == first_mtime and os.path.exists(again[1])
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    manifest = json.loads(open(prefix + ".json").read())
    assert manifest["videos"] == 5 and manifest["shards"] == [os.path.basename(s) for s in shards]


def _break_video(root):
    (root / "c1" / "v3" / "image_00007.jpg").write_bytes(b"broken")


def test_writer_raises_naming_video_line_and_file(textured, tmp_path):
    root, list_file = textured
    _break_video(root)
    with pytest.raises(ValueError, match=r"c1/v3 \(.*list.txt:4\): corrupt.*image_00007.jpg"):
        write_packed_shards(read_list(list_file), str(tmp_path / "p"), str(root), progress=False)
    assert not [n for n in os.listdir(tmp_path) if n.startswith("p-")]  # nothing half-written


def test_writer_skip_policy_and_later_raise_run(textured, tmp_path):
    root, list_file = textured
    _break_video(root)
    os.remove(root / "c0" / "v0" / "flow_y_00003.jpg")
    report = DatasetReport()
    prefix = str(tmp_path / "p")
    write_packed_shards(
        read_list(list_file), prefix, str(root), modality="rgb+flow", on_error="skip", report=report, progress=False
    )
    assert [(s.index, s.path) for s in report.skipped] == [(0, "c0/v0"), (3, "c1/v3")]
    assert "flow_y_00003.jpg" in report.skipped[0].reason
    dataset = make_video_dataset(
        packed_files=prefix + "-*.tfrecord", modality="rgb+flow", frames_per_video=2, return_metadata=True, **SMALL
    )
    assert [int(b[2]["index"][0]) for b in _batches(dataset)] == [1, 2, 4]
    with pytest.raises(ValueError, match="left out 2 video"):  # resumed without a skip report
        write_packed_shards(read_list(list_file), prefix, str(root), modality="rgb+flow", progress=False)


def test_reading_a_stream_the_shards_lack_names_the_video(textured, tmp_path):
    root, list_file = textured
    prefix = str(tmp_path / "rgb_only")
    write_packed_shards(read_list(list_file), prefix, str(root), progress=False)
    dataset = make_video_dataset(packed_files=prefix + "-*.tfrecord", modality="flow", frames_per_video=2, **SMALL)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"c0/v0.*record holds 0 flow images"):
        _batches(dataset)
    report = DatasetReport()
    skipping = make_video_dataset(
        packed_files=prefix + "-*.tfrecord",
        modality="flow",
        frames_per_video=2,
        on_error="skip",
        report=report,
        **SMALL,
    )
    assert _batches(skipping) == [] and len(report) == 5


def test_missing_shards_are_errors(tmp_path):
    with pytest.raises(ValueError, match="no packed shards match"):
        make_video_dataset(packed_files=str(tmp_path / "none-*.tfrecord"))
    with pytest.raises(ValueError, match="does not exist"):
        make_video_dataset(packed_files=[str(tmp_path / "gone.tfrecord")])


def test_build_tfrecords_command(textured, tmp_path, repo_root):
    root, list_file = textured
    prefix = tmp_path / "cli" / "packed"
    command = [
        sys.executable,
        str(repo_root / "data_prep" / "build_tfrecords.py"),
        f"--list={list_file}",
        f"--frames_root={root}",
        "--modality=rgb+flow",
        f"--output_prefix={prefix}",
        "--num_shards=2",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=repo_root)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "5 of 5 videos in 2 shard(s)" in result.stdout
    _break_video(root)
    failed = subprocess.run(
        command[:-2] + [f"--output_prefix={prefix}2", "--on_error=skip"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=repo_root,
    )
    assert failed.returncode == 1 and "1 video(s) skipped" in failed.stdout
    assert "c1/v3" in failed.stdout and "image_00007.jpg" in failed.stdout
    stopped = subprocess.run(
        command[:-2] + [f"--output_prefix={prefix}3"], capture_output=True, text=True, timeout=300, cwd=repo_root
    )
    assert stopped.returncode == 1 and "list.txt:4" in stopped.stderr
