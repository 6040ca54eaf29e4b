"""The Charades path end to end through the entry points: a tiny BN-Inception ActionVLAD
trained on clips of a 4-column list, then evaluated on whole videos with the official mAP / wAP.

Training videos hold frames only inside their annotated clips, so a training sample outside
[start, start + num_frames) would fail on a missing file: the clip restriction is tested too.
"""

import csv
import json
import re
import subprocess
import sys

import numpy as np
import pytest
from frame_folders import write_list, write_video

from actionvlad_tf.evaluation import charades_evaluate, read_logits

NUM_CLASSES = 4
# Training clips "video start num_frames label"; their videos have no frame outside the clips.
TRAIN_CLIPS = [
    ("T/TRNA1.mp4", 0, 8, 0),
    ("T/TRNA1.mp4", 10, 9, 1),
    ("T/TRNB2.mp4", 4, 10, 2),
    ("T/TRNB2.mp4", 20, 7, 3),
    ("T/TRNC3.mp4", 2, 12, 1),
    ("T/TRNC3.mp4", 16, 6, 0),
]
# Test videos (whole, label -1) and their annotated classes in the csv.
TEST_VIDEOS = {
    "E/EVAL1.mp4": (20, [0, 2]),
    "E/EVAL2.mp4": (16, [1]),
    "E/EVAL3.mp4": (24, [3, 1]),
    "E/EVAL4.mp4": (18, [2]),
}
COMMON = [
    "--dataset_name=charades",
    f"--num_classes={NUM_CLASSES}",
    "--model_name=bn_inception",
    "--conv_endpoint=inception_5a",
    "--num_clusters=4",
    "--image_size=64",
    "--resize_shape=72,88",
    "--seed=0",
]


def _write_dataset(root):
    frames = root / "frames"
    for video in sorted({clip[0] for clip in TRAIN_CLIPS}):
        clips = [(start, n) for v, start, n, _ in TRAIN_CLIPS if v == video]
        last = max(start + n for start, n in clips)
        folder = write_video(frames, video, last, flow=False, textured=True, seed=len(video))
        inside = {start + k for start, n in clips for k in range(1, n + 1)}
        for number in range(1, last + 1):
            if number not in inside:
                (folder / f"image_{number:05d}.jpg").unlink()
    for seed, (video, (num_frames, _)) in enumerate(TEST_VIDEOS.items()):
        write_video(frames, video, num_frames, flow=False, textured=True, seed=100 + seed)
    lists = root / "lists"
    lists.mkdir()
    write_list(lists / "train_split1.txt", [" ".join(map(str, clip)) for clip in TRAIN_CLIPS])
    write_list(lists / "test_split1.txt", [f"{v} {n} -1" for v, (n, _) in TEST_VIDEOS.items()])
    with open(lists / "Charades_v1_test.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "id",
                "subject",
                "scene",
                "quality",
                "relevance",
                "verified",
                "script",
                "objects",
                "descriptions",
                "actions",
            ]
        )
        for video, (_, classes) in TEST_VIDEOS.items():
            actions = ";".join(f"c{c:03d} 0.00 5.00" for c in classes)
            writer.writerow([video[2:-4], "S", "Kitchen", 5, 7, "Yes", "", "", "", actions])
    return frames, lists


def _run(repo_root, script, *args):
    done = subprocess.run(
        [sys.executable, str(repo_root / "experiments" / script), *args],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"{script} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.mark.slow
def test_tiny_bn_inception_actionvlad_trains_on_clips_and_evaluates_map_wap(tmp_path, repo_root):
    frames, lists = _write_dataset(tmp_path)
    data = [f"--dataset_dir={frames}", f"--dataset_list_dir={lists}", *COMMON]
    runs = tmp_path / "runs"
    _run(
        repo_root,
        "cluster.py",
        *data,
        f"--centers={runs}/centers.npz",
        "--num_frames=6",
        "--frames_per_batch=3",
        "--kmeans_n_init=1",
    )
    train = [
        *data,
        "--frames_per_video=3",
        "--videos_per_micro_batch=2",
        "--videos_per_update=2",
        "--save_every_n_steps=2",
    ]
    _run(
        repo_root,
        "train.py",
        *train,
        "--stage=1",
        f"--centers={runs}/centers.npz",
        f"--train_dir={runs}/stage1",
        "--max_number_of_steps=2",
    )
    _run(
        repo_root,
        "train.py",
        *train,
        "--stage=2",
        f"--checkpoint_path={runs}/stage1",
        f"--train_dir={runs}/stage2",
        "--max_number_of_steps=2",
    )
    out = _run(
        repo_root,
        "eval.py",
        *data,
        "--frames_per_video=3",
        "--batch_size=1",
        "--num_crops=1",
        f"--checkpoint_path={runs}/stage2",
        f"--results_dir={runs}/eval",
    )

    printed = re.search(r"mAP (\S+)\s+wAP (\S+)", out)
    assert printed, out
    mean_ap, weighted_ap = float(printed.group(1)), float(printed.group(2))
    assert 0.0 < mean_ap <= 100.0 and 0.0 < weighted_ap <= 100.0
    logits = read_logits(runs / "eval" / "logits.h5", expected_rows=len(TEST_VIDEOS))
    assert logits.shape == (len(TEST_VIDEOS), NUM_CLASSES) and np.isfinite(logits).all()
    ids = [video[2:-4] for video in TEST_VIDEOS]
    recomputed = charades_evaluate(logits, ids, lists / "Charades_v1_test.csv")
    assert round(recomputed["mAP"], 2) == mean_ap and round(recomputed["wAP"], 2) == weighted_ap
    saved = json.loads((runs / "eval" / "results.json").read_text())
    assert saved["mAP"] == pytest.approx(recomputed["mAP"])
    print(f"tiny BN-Inception ActionVLAD on generated Charades clips: mAP {mean_ap:.2f}, wAP {weighted_ap:.2f}")
