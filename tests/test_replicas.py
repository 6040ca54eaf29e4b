"""The release's update on any replica count: the shipped HMDB51 stage-1 and stage-2 flagfiles, at toy
size, on one device and on two logical CPU replicas (`--cpu_replicas=2`) take the same 16 videos per
update, clip per the same micro-batch (8 in stage 1, 16 in stage 2) and give the same weights.

Only size, steps and start weights are overridden, and two settings that make the weights show the
clipping unit: SGD instead of Adam (whose first updates are ≈ lr·sign(g), blind to a gradient's
scale), a clipping norm small enough to clip every variable, and a learning rate that moves the
weights well above float32 rounding in both stages. A control run on two replicas that
clips per 16 videos in stage 1 differs, so the comparison sees the unit.
"""

import pathlib
import re

import keras
import numpy as np
import pytest
from test_train_cli import _run, _write_dataset

from actionvlad_tf.centers import save_centers

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / "experiments" / "configs"
SENSITIVE = ["--optimizer=sgd", "--clip_gradients=0.02", "--learning_rate=0.5"]


def _toy(data):
    return [
        f"--dataset_dir={data}/frames",
        f"--flow_dir={data}/flow",
        f"--dataset_list_dir={data}/lists",
        "--num_classes=3",
        "--image_size=32",
        "--resize_shape=40,48",
        "--frames_per_video=2",
        "--num_clusters=4",
        "--backbone_weights=demo_standin",
        "--backbone_width=0.25",
        "--max_number_of_steps=2",
        *SENSITIVE,
    ]


def _stage(cwd, stage, data, *extra):
    cwd.mkdir(exist_ok=True)
    save_centers(cwd / "centers.npz", np.random.default_rng(0).standard_normal((4, 128)).astype(np.float32))
    out = _run(
        "train",
        f"--flagfile={CONFIGS}/hmdb51_rgb_split1_stage{stage}.flags",
        *_toy(data),
        f"--centers={cwd}/centers.npz",
        *extra,
        cwd=cwd,
    )
    model = keras.saving.load_model(cwd / "runs" / "hmdb51" / "rgb_split1" / f"stage{stage}" / "model.keras")
    return re.search(r"^update: (.*); policy (\w+)", out, re.M).groups(), [w.numpy() for w in model.weights]


def _largest_difference(a, b):
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b))


def test_shipped_stage_flagfiles_give_the_same_update_on_one_and_two_replicas(tmp_path):
    data = tmp_path / "data"
    _write_dataset(data, classes=3, videos=3)
    runs = {}
    for replicas in (1, 2):
        for stage in (1, 2):
            runs[replicas, stage] = _stage(tmp_path / f"replicas{replicas}", stage, data, f"--cpu_replicas={replicas}")
    assert runs[1, 1][0] == (
        "1 replica(s) × 8 videos = micro-batch of 8 (clipped as one) × iter_size 2 = 16 videos per update",
        "float32",
    )
    assert runs[2, 1][0][0] == (
        "2 replica(s) × 4 videos = micro-batch of 8 (clipped as one) × iter_size 2 = 16 videos per update"
    )
    assert runs[1, 2][0][0].startswith("1 replica(s) × 16 videos = micro-batch of 16 (clipped as one) × iter_size 1")
    assert runs[2, 2][0][0].startswith("2 replica(s) × 8 videos = micro-batch of 16 (clipped as one) × iter_size 1")
    moved = _largest_difference(runs[1, 2][1], runs[1, 1][1])  # stage 2 from the stage-1 weights
    assert moved > 1e-3
    for stage in (1, 2):
        difference = _largest_difference(runs[1, stage][1], runs[2, stage][1])
        print(f"stage {stage}: max |Δw| one vs two replicas {difference:.3g} (stage 2 moved {moved:.3g})")
        assert difference < 1e-4 * moved, stage

    # Control: the same two replicas clipping per 16 videos (one micro-batch) end elsewhere.
    _, control = _stage(tmp_path / "control", 1, data, "--cpu_replicas=2", "--videos_per_micro_batch=16")
    assert _largest_difference(control, runs[1, 1][1]) > max(
        1e-4, 100 * _largest_difference(runs[2, 1][1], runs[1, 1][1])
    )


def test_a_replica_count_that_cannot_split_the_micro_batch_stops_before_any_work(tmp_path):
    data = tmp_path / "data"
    _write_dataset(data, classes=3, videos=1, frames=3)
    with pytest.raises(
        AssertionError,
        match=r"micro-batch of 8 videos \(clipped as one unit\) cannot be split "
        r"over 3 replicas: run on a replica count among \[1, 2, 4, 8\]",
    ):
        _stage(tmp_path / "three", 1, data, "--cpu_replicas=3")
    assert not (tmp_path / "three" / "runs").exists()


def test_train_py_refuses_a_per_replica_batch_or_iter_size(tmp_path):
    data = tmp_path / "data"
    _write_dataset(data, classes=3, videos=1, frames=3)
    with pytest.raises(AssertionError, match="derives --iter_size from the global --videos_per_update"):
        _stage(tmp_path / "old", 2, data, "--iter_size=4")
