"""List files (release §3.2) and class-name files."""

import pytest

from actionvlad_tf.data.lists import VideoEntry, read_class_names, read_list


def _write(tmp_path, text, name="list.txt"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_three_columns(tmp_path):
    path = _write(tmp_path, "brush_hair/1 409 0\n\nApplyEyeMakeup/v_x.avi 19 1\nY/YSKX3.mp4 278 -1\n")
    entries = read_list(path, num_classes=2)
    assert entries == [
        VideoEntry("brush_hair/1", 409, 0, 0, 1, str(path)),
        VideoEntry("ApplyEyeMakeup/v_x.avi", 19, 1, 0, 3, str(path)),
        VideoEntry("Y/YSKX3.mp4", 278, -1, 0, 4, str(path)),
    ]
    assert entries[1].where == f"{path}:3"


def test_four_columns_charades_clips(tmp_path):
    # Two clips of one video are not duplicates (Charades per-clip lists, release §7).
    path = _write(tmp_path, "4/46GP8.mp4 285 223 92\n4/46GP8.mp4 0 302 147\n")
    entries = read_list(path, num_classes=157)
    assert [(e.path, e.start_frame, e.num_frames, e.label) for e in entries] == [
        ("4/46GP8.mp4", 285, 223, 92),
        ("4/46GP8.mp4", 0, 302, 147),
    ]


@pytest.mark.parametrize(
    "text, message",
    [
        ("a 10 0\nb 10\n", r"list.txt:2: expected 3 columns .* got 2"),
        ("a 10 0\nmy video 10 0\n", r"list.txt:2: .*got 4.*cannot contain spaces"),
        ("my long video 10 0\n", r"list.txt:1: expected 4 columns.*got 5.*cannot contain spaces"),
        ("a ten 0\n", r"list.txt:1: num_frames 'ten' is not an integer"),
        ("a 10 x\n", r"list.txt:1: label 'x' is not an integer"),
        ("a -3 0\n", r"list.txt:1: num_frames -3 < 1"),
        ("a 0 0\n", r"list.txt:1: num_frames 0 < 1"),
        ("a -1 10 0\n", r"list.txt:1: negative start_frame"),
        ("a 10 -2\n", r"list.txt:1: label -2 < -1"),
        ("a 10 0\nb 10 5\n", r"list.txt:2: label 5 >= num_classes 5"),
        ("a 10 0\nb 10 1\na 12 2\n", r"list.txt:3: duplicate of line 1"),
        ("a 1 10 0\na 1 10 0\n", r"list.txt:2: duplicate of line 1"),
        ("../up 10 0\n", r"list.txt:1: video path '../up' is not a folder inside"),
        ("a/../../up 10 0\n", r"list.txt:1: video path 'a/../../up' is not a folder inside"),
        ("/abs/video 10 0\n", r"list.txt:1: absolute video path '/abs/video'"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        read_list(_write(tmp_path, text), num_classes=5)


def test_paths_are_normalised_and_absolute_paths_inside_the_root_accepted(tmp_path):
    root = tmp_path / "frames"
    path = _write(tmp_path, f"a/./b 10 0\n{root}/c/d 10 1\n")
    assert [e.path for e in read_list(path, dataset_root=str(root))] == ["a/b", "c/d"]
    outside = _write(tmp_path, f"{tmp_path}/elsewhere 10 0\n", "outside.txt")
    with pytest.raises(ValueError, match="outside.txt:1: .* is not a folder inside"):
        read_list(outside, dataset_root=str(root))


def test_class_names_actions_txt(tmp_path):
    assert read_class_names(_write(tmp_path, "brush_hair\ncartwheel\n\n")) == ["brush_hair", "cartwheel"]


def test_class_names_classind(tmp_path):
    assert read_class_names(_write(tmp_path, "1 ApplyEyeMakeup\n2 ApplyLipstick\n")) == [
        "ApplyEyeMakeup",
        "ApplyLipstick",
    ]


@pytest.mark.parametrize(
    "text, message",
    [
        ("1 A\n3 B\n", r"names.txt:2: class index 3, expected 2"),
        ("1 A\nB\n", r"names.txt:2: expected 'index name'"),
        ("A\nB\nA\n", r"names.txt:3: duplicate class name 'A' \(line 1\)"),
        ("\n", r"names.txt: no class names"),
    ],
)
def test_class_names_errors(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        read_class_names(_write(tmp_path, text, "names.txt"))


@pytest.mark.parametrize(
    "relative, lines, columns, num_classes",
    [
        ("hmdb51/train_split1.txt", 3570, 3, 51),
        ("hmdb51/test_split1.txt", 1530, 3, 51),
        ("ucf101/train_split1.txt", 9537, 3, 101),
        ("ucf101/test_split1.txt", 3783, 3, 101),
        ("charades/test_split1.txt", 1863, 3, 157),
        ("charades/train_split1.txt", 49802, 4, 157),
        ("charades/test_split1_perClip.txt", 16691, 4, 157),
    ],
)
def test_real_release_lists(shared_data, relative, lines, columns, num_classes):
    # Line counts of the release §3.2 table.
    entries = read_list(shared_data / relative, num_classes=num_classes)
    assert len(entries) == lines
    assert any(e.start_frame > 0 for e in entries) == (columns == 4)
    if relative == "hmdb51/train_split1.txt":
        frames = [e.num_frames for e in entries]
        assert (min(frames), max(frames)) == (19, 1063)
        assert sum(frames) / len(frames) == pytest.approx(97.6, abs=0.05)
    if relative == "charades/test_split1.txt":
        assert {e.label for e in entries} == {-1}


def test_real_class_names(shared_data):
    names = read_class_names(shared_data / "hmdb51" / "actions.txt")
    assert len(names) == 51 and names[0] == "brush_hair" and names == sorted(names)
