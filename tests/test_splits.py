"""Official split files + frame folders → the release's lists (release §3.1, §3.2, §7), and --check.

The official split files are not in ../shared; the tests write small ones that reproduce a few
lines of the real release lists read through the shared_data fixture (never copied).
"""

import math

import pytest

from actionvlad_tf.data.lists import read_list
from actionvlad_tf.prep import splits
from actionvlad_tf.prep.extraction import VideoReadError


def make_frames(frames_dir, video, count):
    folder = frames_dir / video
    folder.mkdir(parents=True)
    for k in range(1, count + 1):
        (folder / f"image_{k:05d}.jpg").write_bytes(b"")


def release_lines(path, keep):
    """Lines of a real release list whose first field passes `keep`."""
    return [line.split() for line in open(path) if keep(line.split()[0])]


def as_rows(lines):
    return [tuple([f[0]] + [int(v) for v in f[1:]]) for f in lines]


# ----------------------------------------------------------------------------- HMDB51


def test_collation_key_reproduces_all_videos(shared_data):
    all_videos = splits.read_all_videos(shared_data / "hmdb51" / "AllVideos.txt")
    assert len(all_videos) == 6766
    assert sorted(all_videos, key=splits.hmdb51_collation_key) == all_videos


def test_collation_key_order():
    names = ["a/b.avi", "a/B.avi", "a/a_c.avi", "a/A-b.avi", "a/ab.avi", "a/Smile!_x.avi", "a/Smile_x.avi"]
    # letters and digits first (case and punctuation ignored), then lowercase before uppercase,
    # then punctuation in ISO 14651 order ('_' before '-' before '!')
    assert sorted(names, key=splits.hmdb51_collation_key) == [
        "a/ab.avi",
        "a/A-b.avi",
        "a/a_c.avi",
        "a/b.avi",
        "a/B.avi",
        "a/Smile_x.avi",
        "a/Smile!_x.avi",
    ]


def _hmdb_fixture(shared_data, tmp_path, split=1, per_class=3):
    """Split files for 2 classes holding the first real train/test videos of each (+ one unused),
    and frame folders of the release's lengths. Returns the expected (train, test) lines."""
    root = shared_data / "hmdb51"
    all_videos = splits.read_all_videos(root / "AllVideos.txt")
    expected = {}
    flags = {}
    for part, flag in (("train", "1"), ("test", "2")):
        lines = []
        for class_name in ("brush_hair", "cartwheel"):
            lines += release_lines(root / f"{part}_split{split}.txt", lambda v, c=class_name: v.startswith(c + "/"))[
                :per_class
            ]
        expected[part] = lines
        for video, count, _ in lines:
            original = all_videos[int(video.split("/")[1]) - 1]
            flags[original] = flag
            make_frames(tmp_path / "frames", video, int(count))
    listed = set(flags)
    unused = next(v for v in all_videos if v.startswith("cartwheel/") and v not in listed)
    flags[unused] = "0"
    split_dir = tmp_path / "splits"
    split_dir.mkdir()
    for class_name in ("cartwheel", "brush_hair"):
        # official files: `name.avi flag ` with a trailing space, in no order we rely on
        lines = [
            f"{v.split('/', 1)[1]} {f} "
            for v, f in sorted(flags.items(), reverse=True)
            if v.startswith(class_name + "/")
        ]
        (split_dir / f"{class_name}_test_split{split}.txt").write_text("\n".join(lines) + "\n")
    return split_dir, expected


def test_hmdb51_reproduces_release_lines(shared_data, tmp_path):
    split_dir, expected = _hmdb_fixture(shared_data, tmp_path)
    made = splits.make_lists(
        "hmdb51", split_dir, tmp_path / "frames", all_videos=shared_data / "hmdb51" / "AllVideos.txt"
    )
    assert made.lists["train_split1.txt"] == as_rows(expected["train"])
    assert made.lists["test_split1.txt"] == as_rows(expected["test"])
    assert made.class_names == ["brush_hair", "cartwheel"] and made.skipped == []
    splits.write_list_set(made, tmp_path / "lists")
    assert (tmp_path / "lists" / "actions.txt").read_text() == "brush_hair\ncartwheel\n"
    written = [line.split() for line in open(tmp_path / "lists" / "test_split1.txt")]
    assert written == expected["test"]


def test_hmdb51_ids_rebuilt_from_split_files(tmp_path):
    split_dir = tmp_path / "splits"
    split_dir.mkdir()
    (split_dir / "b_cls_test_split1.txt").write_text("z.avi 1\nY.avi 2\nx_1.avi 0\n")
    (split_dir / "a_cls_test_split1.txt").write_text("q.avi 2\nP.avi 1\n")
    renaming = dict(splits.video_renaming_list("hmdb51", split_dir))
    assert renaming == {
        "a_cls/P.avi": "a_cls/1",
        "a_cls/q.avi": "a_cls/2",
        "b_cls/x_1.avi": "b_cls/3",
        "b_cls/Y.avi": "b_cls/4",
        "b_cls/z.avi": "b_cls/5",
    }
    train, test, names = splits.read_hmdb51_split(split_dir, 1, renaming)
    assert names == ["a_cls", "b_cls"]
    assert train == [("a_cls/1", 0), ("b_cls/5", 1)] and test == [("a_cls/2", 0), ("b_cls/4", 1)]


def test_hmdb51_bad_split_line(tmp_path):
    (tmp_path / "a_test_split1.txt").write_text("v.avi 1\nw.avi 3\n")
    with pytest.raises(ValueError, match=r"a_test_split1.txt:2: expected 'video.avi 0\|1\|2'"):
        splits.hmdb51_all_videos(tmp_path)


# ----------------------------------------------------------------------------- UCF101


def test_ucf101_reproduces_release_lines(shared_data, tmp_path):
    root = shared_data / "ucf101"
    classes = {}
    for line in open(root / "train_split1.txt"):
        video, _, label = line.split()
        classes[int(label)] = video.split("/")[0]
    split_dir = tmp_path / "ucfTrainTestlist"
    split_dir.mkdir()
    # official files have CRLF line ends
    (split_dir / "classInd.txt").write_bytes("".join(f"{i + 1} {classes[i]}\r\n" for i in range(101)).encode())
    keep = ("ApplyEyeMakeup/", "HandstandPushups/", "YoYo/")
    expected = {
        part: [f for f in release_lines(root / f"{part}_split1.txt", lambda v: v.startswith(keep))][::15]
        for part in ("train", "test")
    }
    (split_dir / "trainlist01.txt").write_bytes(
        "".join(f"{v} {int(label) + 1}\r\n" for v, _, label in expected["train"]).encode()
    )
    (split_dir / "testlist01.txt").write_bytes("".join(f"{v}\r\n" for v, _, _ in expected["test"]).encode())
    for video, count, _ in expected["train"] + expected["test"]:
        make_frames(tmp_path / "frames", video, int(count))
    made = splits.make_lists("ucf101", split_dir, tmp_path / "frames")
    assert made.lists["train_split1.txt"] == as_rows(expected["train"])
    assert made.lists["test_split1.txt"] == as_rows(expected["test"])
    assert made.class_names[36] == "HandstandPushups" and len(made.class_names) == 101


def test_ucf101_label_must_match_class_folder(tmp_path):
    (tmp_path / "classInd.txt").write_text("1 A\n2 B\n")
    (tmp_path / "trainlist01.txt").write_text("A/v_A_g01_c01.avi 1\nB/v_B_g01_c01.avi 1\n")
    (tmp_path / "testlist01.txt").write_text("")
    with pytest.raises(ValueError, match="trainlist01.txt:2: label 1 but B is class 2"):
        splits.read_ucf101_split(tmp_path, 1)


def test_missing_frames_raise_or_are_skipped_and_named(tmp_path):
    (tmp_path / "classInd.txt").write_text("1 A\n")
    (tmp_path / "trainlist01.txt").write_text("A/v_1.avi 1\nA/v_2.avi 1\n")
    (tmp_path / "testlist01.txt").write_text("A/v_3.avi\n")
    make_frames(tmp_path / "frames", "A/v_1.avi", 4)
    (tmp_path / "frames" / "A" / "v_3.avi").mkdir(parents=True)  # empty folder
    with pytest.raises(VideoReadError, match="v_2.avi: frame folder does not exist"):
        splits.make_lists("ucf101", tmp_path, tmp_path / "frames")
    made = splits.make_lists("ucf101", tmp_path, tmp_path / "frames", skip_missing=True)
    assert made.lists == {"train_split1.txt": [("A/v_1.avi", 4, 0)], "test_split1.txt": []}
    assert [v for v, _ in made.skipped] == ["A/v_2.avi", "A/v_3.avi"]
    assert "no frame named like image_00001.jpg" in made.report()


# ----------------------------------------------------------------------------- Charades


def _charades_row(shared_data, video_id):
    import csv

    with open(shared_data / "charades" / "Charades_v1_test.csv", newline="") as f:
        return next(r for r in csv.DictReader(f) if r["id"] == video_id)


def test_charades_reproduces_release_clip_lines(shared_data, tmp_path):
    # T5ECU is a 30 fps video of 940 frames; its clips in the release's per-clip list follow
    # start = ⌊s·30⌋, length = min(⌊(e − s)·30⌋, 940 − start) (c059 0.0–32.0 s is clipped).
    row = _charades_row(shared_data, "T5ECU")
    expected_clips = release_lines(shared_data / "charades" / "test_split1_perClip.txt", lambda v: v == "T/T5ECU.mp4")
    expected_whole = release_lines(shared_data / "charades" / "test_split1.txt", lambda v: v == "T/T5ECU.mp4")
    (tmp_path / "Charades_v1_test.csv").write_text(f"id,actions,length\nT5ECU,{row['actions']},{940 / 30!r}\n")
    make_frames(tmp_path / "frames", "T/T5ECU.mp4", 940)
    made = splits.make_lists("charades", tmp_path, tmp_path / "frames", charades_fps=30)
    assert made.lists["test_split1_perClip.txt"] == as_rows(expected_clips)
    assert made.lists["test_split1.txt"] == as_rows(expected_whole) == [("T/T5ECU.mp4", 940, -1)]
    by_length = splits.make_lists("charades", tmp_path, tmp_path / "frames")  # n / length
    assert by_length.lists == made.lists


def test_charades_clip_rule_and_empty_clips(tmp_path):
    # release lines of TJZ0P (30 fps): c065 7.7–15.7 s → 231 239, c063 8.5–14.2 s → 255 170
    assert splits.charades_clip(7.7, 15.7, 30, 532) == (231, 239)
    assert splits.charades_clip(8.5, 14.2, 30, 532) == (255, 170)
    assert splits.charades_clip(3.0, 50.0, 24, 500) == (72, 428)  # clipped at the last frame
    (tmp_path / "Charades_v1_train.csv").write_text(
        'id,actions,length\nAB1,"c003 1.0 2.0;c150 11.0 12.0",10.0\nCD2,,5.0\n'
    )
    make_frames(tmp_path / "frames", "A/AB1.mp4", 100)
    make_frames(tmp_path / "frames", "C/CD2.mp4", 50)
    made = splits.make_lists("charades", tmp_path, tmp_path / "frames")
    assert made.lists == {"train_split1.txt": [("A/AB1.mp4", 10, 10, 3)]}
    assert made.skipped[0][0] == "A/AB1.mp4" and "c150" in made.skipped[0][1]
    assert splits.video_renaming_list("charades", tmp_path) == [("AB1.mp4", "A/AB1.mp4"), ("CD2.mp4", "C/CD2.mp4")]


def test_charades_needs_a_frame_rate(shared_data, tmp_path):
    row = _charades_row(shared_data, "YSKX3")
    (tmp_path / "Charades_v1_test.csv").write_text(f'id,actions\nYSKX3,"{row["actions"]}"\n')
    make_frames(tmp_path / "frames", "Y/YSKX3.mp4", 10)
    with pytest.raises(ValueError, match="no 'length' column"):
        splits.make_lists("charades", tmp_path, tmp_path / "frames")
    (tmp_path / "Charades_v1_test.csv").write_text("id,actions\nX1,c1 2 3\n")
    with pytest.raises(ValueError, match=r"Charades_v1_test.csv:2: action 'c1 2 3'"):
        splits.read_charades_csv(tmp_path / "Charades_v1_test.csv")


def test_charades_release_rates_are_per_video(shared_data):
    # The release's starts are ⌊s·fps⌋ with the video's own fps, not 24: T5ECU fits 30 exactly,
    # and YSKX3 (278 frames) fits ~16.6 fps; at 24 fps its clip starts would be far off.
    clips = release_lines(shared_data / "charades" / "test_split1_perClip.txt", lambda v: v == "Y/YSKX3.mp4")
    row = _charades_row(shared_data, "YSKX3")
    starts = [float(a.split()[1]) for a in row["actions"].split(";")]
    assert [int(c[1]) for c in clips] == [math.floor(s * 16.62) for s in starts]
    assert [int(c[1]) for c in clips] != [math.floor(s * 24) for s in starts]


# ----------------------------------------------------------------------------- --check


def _write(path, lines):
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_check_list_reports_each_kind_of_difference(tmp_path):
    release = _write(tmp_path / "release.txt", ["a/1 73 0", "a/2 40 0", "b/3 50 1"])
    same = _write(tmp_path / "same.txt", ["a/1 72 0", "a/2 40 0", "b/3 51 1"])
    check = splits.check_list(same, release, tolerance=1)
    assert check.ok and check.frame_differences == {-1: 1, 0: 1, 1: 1}
    assert "OK" in check.report()
    assert not splits.check_list(same, release, tolerance=0).ok
    other = _write(tmp_path / "other.txt", ["a/2 40 1", "a/1 90 0", "c/4 9 1"])
    check = splits.check_list(other, release)
    assert not check.ok and check.missing == ["b/3"] and check.extra == ["c/4"]
    assert len(check.label_mismatches) == 1 and len(check.frame_mismatches) == 1
    assert not check.same_order
    report = check.report()
    assert "MISMATCH" in report and "missing (release only): 1: b/3" in report


def test_check_list_four_columns(tmp_path):
    release = _write(tmp_path / "r.txt", ["Y/A.mp4 201 76 77", "Y/A.mp4 196 81 79"])
    near = _write(tmp_path / "g.txt", ["Y/A.mp4 202 75 77", "Y/A.mp4 196 81 79"])
    assert splits.check_list(near, release, tolerance=1).ok
    assert not splits.check_list(near, release, tolerance=0).ok


def test_check_against_real_hmdb51_release_list(shared_data, tmp_path):
    split_dir, expected = _hmdb_fixture(shared_data, tmp_path)
    made = splits.make_lists(
        "hmdb51", split_dir, tmp_path / "frames", all_videos=shared_data / "hmdb51" / "AllVideos.txt"
    )
    splits.write_list_set(made, tmp_path / "lists")
    generated = tmp_path / "lists" / "test_split1.txt"
    # against the whole release list: only the videos this 6-video fixture lacks differ
    check = splits.check_list(generated, shared_data / "hmdb51" / "test_split1.txt")
    assert not check.ok and check.num_release == 1530 and len(check.missing) == 1530 - 6
    assert check.extra == check.label_mismatches == check.frame_mismatches == []
    assert check.same_order
    # against the release's own lines for these videos: identical
    excerpt = _write(tmp_path / "test_split1.txt", [" ".join(f) for f in expected["test"]])
    assert splits.check_list(generated, excerpt, tolerance=0).ok
    assert read_list(tmp_path / "lists" / "train_split1.txt")[0].path == expected["train"][0][0]
