"""The data_prep entry points in subprocesses: demo videos → frames → flow → lists → --check,
bad videos (summary, exit status, re-run) and HMDB51's renaming list."""

import os
import subprocess
import sys

import numpy as np
import pytest

from actionvlad_tf.prep import splits
from actionvlad_tf.prep.extraction import count_frames
from actionvlad_tf.prep.synthetic import write_video


def run(repo_root, script, *args):
    done = subprocess.run(
        [sys.executable, str(repo_root / "data_prep" / script), *map(str, args)],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done.returncode, done.stdout + done.stderr


def test_demo_videos_to_frames_flow_and_checked_lists(repo_root, tmp_path):
    data = tmp_path / "demo"
    code, out = run(
        repo_root,
        "make_demo_dataset.py",
        f"--output_dir={data}",
        "--num_classes=2",
        "--train_per_class=2",
        "--test_per_class=1",
        "--num_frames=8",
        "--height=32",
        "--width=48",
    )
    assert code == 0 and "6 videos (6 written, 0 kept), 48 frames" in out, out
    code, out = run(
        repo_root, "extract_frames.py", f"--videos={data}/videos", f"--output_dir={data}/frames", "--num_workers=2"
    )
    assert code == 0 and "done 6, skipped (already complete) 0, failed 0" in out, out
    code, out = run(
        repo_root, "extract_flow.py", f"--frames={data}/frames", f"--output_dir={data}/flow", "--method=dis"
    )
    assert code == 0 and "done 6" in out, out
    video = "RH_BZ_GV/v_RH_BZ_GV_g03_c01.avi"
    assert count_frames(data / "frames" / video) == 8
    assert count_frames(data / "flow" / video, "flow_y_%05d.jpg") == 7
    # --check against release lists: test_split1.txt equal, train_split1.txt with a label and a
    # frame count changed → both reported, exit status 1
    reference = tmp_path / "reference"
    made = splits.make_lists("ucf101", data / "splits", data / "frames")
    splits.write_list_set(made, reference)
    train = [list(row) for row in made.lists["train_split1.txt"]]
    train[0][1:] = [11, 1]
    splits.write_list(reference / "train_split1.txt", train)
    code, out = run(
        repo_root,
        "make_lists.py",
        "--dataset=ucf101",
        f"--split_dir={data}/splits",
        f"--frames_dir={data}/frames",
        f"--output_dir={data}/lists",
        f"--check={reference}",
        "--check_tolerance=2",
    )
    assert (data / "lists" / "test_split1.txt").read_text().splitlines() == [
        "RH_GV_BZ/v_RH_GV_BZ_g03_c01.avi 8 0",
        f"{video} 8 1",
    ]
    assert code == 1, out
    assert f"{data}/lists/test_split1.txt vs release {reference}/test_split1.txt: OK" in out
    assert f"{data}/lists/train_split1.txt vs release {reference}/train_split1.txt: MISMATCH" in out
    assert "label mismatches: 1" in out and "frame counts beyond ±2: 1" in out


@pytest.mark.slow  # subprocesses; the library paths are tested in test_extraction / test_splits
def test_bad_videos_are_reported_and_others_done_then_skipped(repo_root, tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.avi", "b.avi"):
        write_video(str(videos / name), rng.integers(0, 256, (4, 16, 16, 3), np.uint8))
    (videos / "corrupt.avi").write_bytes(rng.integers(0, 256, 3000, np.uint8).tobytes())
    (videos / "empty.mp4").write_bytes(b"")
    (videos / "notes.txt").write_text("not a video")
    code, out = run(
        repo_root,
        "extract_frames.py",
        f"--videos={videos}",
        f"--output_dir={tmp_path / 'frames'}",
        "--template=img_%05d.jpg",
        "--resize=8",
    )
    assert code == 1, out
    assert "done 2, skipped (already complete) 0, failed 2, ignored (not a video extension) 1" in out
    assert f"FAILED corrupt.avi: VideoReadError: {videos / 'corrupt.avi'}: cannot open" in out
    assert "FAILED empty.mp4" in out and "ignored notes.txt" in out
    assert count_frames(tmp_path / "frames" / "a.avi", "img_%05d.jpg") == 4
    code, out = run(
        repo_root,
        "extract_frames.py",
        f"--videos={videos}",
        f"--output_dir={tmp_path / 'frames'}",
        "--template=img_%05d.jpg",
    )
    assert code == 1 and "done 0, skipped (already complete) 2, failed 2" in out, out


@pytest.mark.slow  # subprocesses; the library paths are tested in test_extraction / test_splits
def test_hmdb51_renaming_list_drives_frame_extraction(repo_root, tmp_path):
    split_dir = tmp_path / "splits"
    split_dir.mkdir()
    (split_dir / "wave_test_split1.txt").write_text("b_wave.avi 1 \na_wave.avi 2 \n")
    (split_dir / "clap_test_split1.txt").write_text("x_clap.avi 0 \n")
    for name in ("wave/a_wave.avi", "wave/b_wave.avi", "clap/x_clap.avi"):
        os.makedirs(tmp_path / "hmdb51_org" / os.path.dirname(name), exist_ok=True)
        write_video(str(tmp_path / "hmdb51_org" / name), np.zeros((3, 16, 16, 3), np.uint8))
    code, out = run(
        repo_root,
        "make_lists.py",
        "--dataset=hmdb51",
        f"--split_dir={split_dir}",
        f"--write_video_list={tmp_path / 'videos.txt'}",
    )
    assert code == 0 and "wrote 3 videos" in out, out
    assert (tmp_path / "videos.txt").read_text().splitlines() == [
        "clap/x_clap.avi\tclap/1",
        "wave/a_wave.avi\twave/2",
        "wave/b_wave.avi\twave/3",
    ]
    code, out = run(
        repo_root,
        "extract_frames.py",
        f"--videos={tmp_path / 'videos.txt'}",
        f"--video_root={tmp_path / 'hmdb51_org'}",
        f"--output_dir={tmp_path / 'frames'}",
    )
    assert code == 0, out
    assert sorted(os.listdir(tmp_path / "frames" / "wave")) == ["2", "3"]
    made = splits.make_lists("hmdb51", split_dir, tmp_path / "frames")
    assert made.lists == {"train_split1.txt": [("wave/3", 3, 1)], "test_split1.txt": [("wave/2", 3, 1)]}
