"""The demo dataset: class design (attribute balance, shared sub-actions), files, determinism."""

import collections
import hashlib
import json
import os

import cv2
import numpy as np
import pytest

from actionvlad_tf.data.lists import read_class_names
from actionvlad_tf.prep import synthetic
from actionvlad_tf.prep.extraction import read_video_frames

TINY = dict(num_classes=3, train_per_class=2, test_per_class=1, num_frames=9, height=48, width=64)


def digest(root):
    """{relative path: md5} of every file under root."""
    return {
        os.path.relpath(os.path.join(d, f), root): hashlib.md5(open(os.path.join(d, f), "rb").read()).hexdigest()
        for d, _, files in os.walk(root)
        for f in files
    }


def test_every_class_holds_each_attribute_once():
    classes = synthetic.demo_classes(synthetic.MAX_CLASSES)
    assert len({c.name for c in classes}) == synthetic.MAX_CLASSES
    for demo_class in classes:
        assert sorted(demo_class.colours) == sorted(synthetic.COLOURS)
        assert sorted(demo_class.motions) == sorted(synthetic.MOTIONS)
    with pytest.raises(ValueError, match="num_classes"):
        synthetic.demo_classes(37)


def test_first_six_classes_share_sub_actions_but_not_bags():
    classes = synthetic.demo_classes(6)
    # a single flow stack (shape, motion) fits 2 classes, a single frame (shape, colour) 1 to 3…
    assert set(collections.Counter((s, m) for c in classes for s, _, m in c.sub_actions).values()) == {2}
    assert collections.Counter((s, col) for c in classes for s, col, _ in c.sub_actions)[("circle", "R")] == 3
    # …while the bag of a video's sub-actions names its class: from the motions alone always, from
    # the colours alone except for classes 1 and 6, which only flow tells apart (as HMDB51's sit / stand)
    assert len({c.motions for c in classes}) == 6 and len({c.colours for c in classes}) == 5
    assert classes[0].colours == classes[5].colours and classes[0].motions != classes[5].motions
    assert [c.name for c in classes][:2] == ["RH_GV_BZ", "RH_BZ_GV"]


def test_later_classes_need_both_streams():
    classes = synthetic.demo_classes(12)
    same_colours = [(i, j) for i in range(12) for j in range(i) if classes[i].colours == classes[j].colours]
    assert same_colours and all(classes[i].motions != classes[j].motions for i, j in same_colours)


def test_render_video_draws_each_segment_in_its_colour():
    demo_class = synthetic.demo_classes(6)[3]
    frames, segments = synthetic.render_video(demo_class, np.random.default_rng(5), 30, 96, 128)
    assert frames.shape == (30, 96, 128, 3) and frames.dtype == np.uint8
    assert [s["first_frame"] for s in segments][0] == 1 and segments[-1]["last_frame"] == 30
    assert sorted((s["shape"], s["colour"], s["motion"]) for s in segments) == sorted(demo_class.sub_actions)
    for segment in segments:
        frame = frames[segment["first_frame"] - 1].astype(int)
        saturated = (frame.max(axis=2) - frame.min(axis=2)) > 90  # the coloured object only
        assert saturated.sum() > 40
        mean = frame[saturated].mean(axis=0)
        nearest = min(synthetic.COLOURS, key=lambda c: np.abs(np.array(synthetic.COLOURS[c]) - mean).sum())
        assert nearest == segment["colour"]


def _colour_histogram(frames):
    """Share of each of red, green, blue among the strongly coloured pixels of a video."""
    frames = frames.astype(int)
    saturated = (frames.max(axis=3) - frames.min(axis=3)) > 90
    dominant = frames.argmax(axis=3)[saturated]  # BGR channel
    return np.bincount(dominant, minlength=3) / max(1, dominant.size)


def test_average_colour_does_not_tell_the_classes_apart():
    # Every class has each colour once, on equal areas: the colour statistics of a whole video
    # (what an average over frames keeps of colour) carry no class. Nearest class mean,
    # leave-one-out, stays near chance (1/6) here, while the bags of sub-actions are distinct.
    classes = synthetic.demo_classes(6)
    features, labels = [], []
    for label, demo_class in enumerate(classes):
        for video in range(6):
            frames, _ = synthetic.render_video(demo_class, np.random.default_rng([1, label, video]), 24, 48, 64)
            features.append(_colour_histogram(frames))
            labels.append(label)
    features, labels = np.array(features), np.array(labels)
    correct = 0
    for i in range(len(labels)):
        others = np.arange(len(labels)) != i
        means = np.stack([features[others & (labels == k)].mean(axis=0) for k in range(6)])
        correct += int(np.argmin(np.abs(means - features[i]).sum(axis=1)) == labels[i])
    assert correct / len(labels) < 0.4


def test_dataset_files_and_determinism(tmp_path):
    summary = synthetic.generate_demo_dataset(tmp_path / "a", seed=3, progress=False, **TINY)
    assert (summary.num_videos, summary.num_frames, summary.written, summary.kept) == (9, 81, 9, 0)
    root = tmp_path / "a"
    names = read_class_names(root / "splits" / "classInd.txt")
    assert names == read_class_names(root / "actions.txt") == ["RH_GV_BZ", "RH_BZ_GV", "GV_RH_BZ"]
    train = (root / "splits" / "trainlist01.txt").read_text().splitlines()
    test = (root / "splits" / "testlist01.txt").read_text().splitlines()
    assert train[:2] == ["RH_GV_BZ/v_RH_GV_BZ_g01_c01.avi 1", "RH_GV_BZ/v_RH_GV_BZ_g02_c01.avi 1"]
    assert len(train) == 6 and test[0] == "RH_GV_BZ/v_RH_GV_BZ_g03_c01.avi" and len(test) == 3
    video = root / "videos" / "GV_RH_BZ" / "v_GV_RH_BZ_g03_c01.avi"
    assert read_video_frames(str(video)).shape == (9, 48, 64, 3)
    capture = cv2.VideoCapture(str(video))
    assert capture.get(cv2.CAP_PROP_FOURCC) == cv2.VideoWriter_fourcc(*"MJPG")
    manifest = json.loads((root / "manifest.json").read_text())
    assert len(manifest["videos"]) == 9 and manifest["videos"][2]["split"] == "test"
    assert summary.video_bytes == sum(
        os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(root / "videos") for f in fs
    )
    # same seed → byte-identical files, made by one process or two; another seed → other videos
    synthetic.generate_demo_dataset(tmp_path / "b", seed=3, progress=False, num_workers=2, **TINY)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    synthetic.generate_demo_dataset(tmp_path / "c", seed=4, progress=False, **TINY)
    assert (
        digest(tmp_path / "c")["videos/RH_GV_BZ/v_RH_GV_BZ_g01_c01.avi"]
        != digest(root)["videos/RH_GV_BZ/v_RH_GV_BZ_g01_c01.avi"]
    )


def test_rerun_keeps_videos_and_redoes_a_removed_one(tmp_path):
    synthetic.generate_demo_dataset(tmp_path, progress=False, **TINY)
    before = digest(tmp_path)
    os.remove(tmp_path / "videos" / "RH_BZ_GV" / "v_RH_BZ_GV_g01_c01.avi")
    summary = synthetic.generate_demo_dataset(tmp_path, progress=False, **TINY)
    assert (summary.written, summary.kept) == (1, 8)
    assert digest(tmp_path) == before
