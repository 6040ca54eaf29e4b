"""Tests of actionvlad_tf.evaluation.logits_io: release-layout .h5 logits and Charades submissions."""

import os

import h5py
import numpy as np
import pytest

from actionvlad_tf.evaluation import logits_io


def test_logits_round_trip_in_the_release_layout(tmp_path):
    logits = np.random.default_rng(0).normal(size=(7, 5)).astype(np.float32)
    path = tmp_path / "out" / "rgb_split1.h5"
    logits_io.write_logits(path, logits)
    with h5py.File(path, "r") as h5:
        dataset = h5["stream0/logits"]
        assert dataset.dtype == np.float32 and dataset.shape == (7, 5)
        assert (dataset.compression, dataset.compression_opts) == ("gzip", 9)
    np.testing.assert_array_equal(logits_io.read_logits(path, expected_rows=7), logits)
    assert os.listdir(path.parent) == ["rgb_split1.h5"]  # no temporary file left behind


def test_read_logits_names_file_and_list_on_row_mismatch(tmp_path):
    path = tmp_path / "flow.h5"
    logits_io.write_logits(path, np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"flow\.h5: stream0/logits has 4 rows but list test_split1\.txt has 5"):
        logits_io.read_logits(path, expected_rows=5, list_file="test_split1.txt")


def test_read_logits_errors(tmp_path):
    path = tmp_path / "idt.h5"
    logits_io.write_logits(path, np.array([[0.0, np.nan]]), dataset="idt")
    with pytest.raises(ValueError, match=r"no dataset 'stream0/logits'; it holds \['idt'\]"):
        logits_io.read_logits(path)
    with pytest.raises(ValueError, match="NaN or inf in 1 rows"):
        logits_io.read_logits(path, dataset="idt")


def test_failed_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "fused.h5"
    logits_io.write_logits(path, np.ones((2, 2)))
    with pytest.raises(ValueError):
        logits_io.write_logits(path, np.ones(3))
    np.testing.assert_array_equal(logits_io.read_logits(path), np.ones((2, 2)))
    assert os.listdir(tmp_path) == ["fused.h5"]


def test_charades_video_id():
    assert logits_io.charades_video_id("Y/YSKX3.mp4") == "YSKX3"
    for bad in ("YSKX3.mp4", "Y/YSKX3.avi", "a/b/C.mp4"):
        with pytest.raises(ValueError, match="<X>/<ID>.mp4"):
            logits_io.charades_video_id(bad)


def test_charades_submission_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(3, 157)).astype(np.float32)
    scores[1, 0] = -np.inf
    path = tmp_path / "submission.txt"
    logits_io.write_charades_submission(path, ["YSKX3", "T5ECU", "AAH6R"], scores)
    first = path.read_text().splitlines()[0].split(" ")
    assert first[0] == "YSKX3" and len(first) == 158
    ids, read = logits_io.read_charades_submission(path, num_classes=157)
    assert ids == ["YSKX3", "T5ECU", "AAH6R"]
    np.testing.assert_array_equal(read.astype(np.float32), scores)


@pytest.mark.parametrize(
    "text, message",
    [
        ("AAA 1 2\nBBB 1\n", "line 2: 1 scores, expected 2"),
        ("AAA 1 2\nAAA 1 2\n", "line 2: video 'AAA' repeats line 1"),
        ("AAA 1 x\n", "line 1: could not convert"),
        ("AAA 1 nan\n", "line 1: NaN"),
        ("\n", "no predictions"),
    ],
)
def test_charades_submission_reader_names_the_line(tmp_path, text, message):
    path = tmp_path / "sub.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=f"sub.txt.*{message}"):
        logits_io.read_charades_submission(path)


def test_real_charades_test_list_ids_match_the_csv(shared_data):
    list_ids = [
        logits_io.charades_video_id(line.split()[0])
        for line in (shared_data / "charades" / "test_split1.txt").read_text().splitlines()
    ]
    assert len(list_ids) == 1863 and list_ids[:2] == ["YSKX3", "T5ECU"]


def test_scores_for_videos_fills_missing_rows():
    scores, missing = logits_io.scores_for_videos(["B", "C", "A"], ["A", "B"], [[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(scores, [[3.0, 4.0], [0.0, 0.0], [1.0, 2.0]])
    assert missing == ["C"]
    with pytest.raises(ValueError, match="repeat"):
        logits_io.scores_for_videos(["A"], ["A", "A"], np.zeros((2, 2)))
