"""The entry points: cluster.py → train.py stage 1 → stage 2 → eval.py on a tiny generated frame
folder, and every flagfile in experiments/configs parses with the entry point it is for."""

import json
import os
import pathlib
import re
import subprocess
import sys
import textwrap

import cv2
import h5py
import numpy as np
import pytest
import tensorflow as tf

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = REPO / "experiments" / "configs"
RUN = re.compile(r"^#\s+python experiments/(\w+)\.py --flagfile=(experiments/configs/[\w.]+\.flags)$", re.M)


def _write_dataset(root, classes=3, videos=2, frames=12):
    """Frames and flow JPEGs (40 × 48) in the release layout, train/test lists and actions.txt."""
    rng = np.random.default_rng(0)
    lines = []
    for label in range(classes):
        for v in range(videos):
            video = f"class{label}/video{v}"
            for kind in ("frames", "flow"):
                (root / kind / video).mkdir(parents=True)
            for i in range(1, frames + 1):
                image = np.clip(rng.normal(80 * label, 20, (40, 48, 3)), 0, 255).astype(np.uint8)
                cv2.imwrite(str(root / "frames" / video / f"image_{i:05d}.jpg"), image)
                if i < frames:
                    for direction in "xy":
                        flow = rng.integers(100, 156, (40, 48), dtype=np.uint8)
                        cv2.imwrite(str(root / "flow" / video / f"flow_{direction}_{i:05d}.jpg"), flow)
            lines.append(f"{video} {frames} {label}")
    (root / "lists").mkdir()
    for split in ("train", "test"):
        (root / "lists" / f"{split}_split1.txt").write_text("\n".join(lines) + "\n")
    (root / "lists" / "actions.txt").write_text("".join(f"action{c}\n" for c in range(classes)))


def _run(entry, *args, cwd, fails=False):
    """The entry point's stdout; with `fails`, its stderr after a non-zero exit."""
    environment = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    run = subprocess.run(
        [sys.executable, str(REPO / "experiments" / f"{entry}.py"), *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert (run.returncode != 0) == fails, f"{entry} {args}:\n{run.stdout}\n{run.stderr[-4000:]}"
    return run.stderr if fails else run.stdout


def test_cluster_train_two_stages_and_evaluate(tmp_path):
    data = tmp_path / "data"
    _write_dataset(data)
    common = [
        f"--dataset_dir={data}/frames",
        f"--flow_dir={data}/flow",
        f"--dataset_list_dir={data}/lists",
        "--dataset_name=demo",
        "--num_classes=3",
        "--image_size=32",
        "--resize_shape=40,48",
        "--num_clusters=4",
        "--frames_per_video=3",
    ]
    out = _run(
        "cluster", *common, "--centers=runs/centers.npz", "--num_frames=12", "--frames_per_batch=4", cwd=tmp_path
    )
    assert "4 centres of dimension 512 from 48 descriptors" in out  # 32² input: 2 × 2 conv5 positions
    train = common + [
        "--videos_per_micro_batch=2",
        "--videos_per_update=4",
        "--max_number_of_steps=2",
        "--save_every_n_steps=1",
    ]
    out = _run("train", *train, "--stage=1", "--centers=runs/centers.npz", "--train_dir=runs/stage1", cwd=tmp_path)
    assert re.search(r"^step 2:", out, re.M)  # after the "precision: …" line
    stage1 = tmp_path / "runs" / "stage1"
    assert {"checkpoint", "model.keras", "flags.txt"} <= set(os.listdir(stage1))
    assert "--stage=1" in (stage1 / "flags.txt").read_text()
    (events,) = stage1.glob("events.out.tfevents*")
    tags = {
        value.tag
        for record in tf.data.TFRecordDataset(str(events))
        for value in tf.compat.v1.Event.FromString(record.numpy()).summary.value
    }
    assert {
        "loss",
        "accuracy",
        "learning_rate",
        "gradient_norm/global",
        "gradient_norm/classifier/kernel",
        "update_norm/global",
    } <= tags
    _run("train", *train, "--stage=2", "--checkpoint_path=runs/stage1", "--train_dir=runs/stage2", cwd=tmp_path)
    out = _run(
        "eval",
        *common,
        "--checkpoint_path=runs/stage2",
        "--results_dir=runs/eval",
        "--num_crops=5",
        "--batch_size=4",
        cwd=tmp_path,
    )
    assert "(6 videos)" in out
    with h5py.File(tmp_path / "runs" / "eval" / "logits.h5", "r") as h5:
        logits = h5["stream0/logits"][()]
    assert logits.shape == (6, 3) and logits.dtype == np.float32 and np.isfinite(logits).all()
    results = json.loads((tmp_path / "runs" / "eval" / "results.json").read_text())
    assert set(results) >= {"top1", "top5", "mean_class_accuracy", "per_class_accuracy"}
    assert set(results["per_class_accuracy"]) == {"action0", "action1", "action2"}
    labels = np.repeat(np.arange(3), 2)
    assert results["top1"] == pytest.approx(100 * np.mean(logits.argmax(1) == labels))
    assert (tmp_path / "runs" / "eval" / "confusion.png").stat().st_size > 0
    # --feature_cache_dir: the same logits from the cached pool4 maps, and stage 1's model (the same
    # frozen conv1_1 … pool4) reads the cache stage 2's evaluation built.
    cached = dict(stage2="runs/eval_cached", stage1="runs/eval_cached1")
    for stage, results_dir in cached.items():
        _run(
            "eval",
            *common,
            f"--checkpoint_path=runs/{stage}",
            f"--results_dir={results_dir}",
            "--feature_cache_dir=runs/eval_cache",
            "--num_crops=5",
            "--batch_size=4",
            cwd=tmp_path,
        )
        if stage == "stage2":
            (folder,) = (tmp_path / "runs" / "eval_cache").iterdir()
            stored = {path: path.stat().st_mtime_ns for path in folder.glob("features/*.npy")}
            with h5py.File(tmp_path / results_dir / "logits.h5", "r") as h5:
                np.testing.assert_allclose(h5["stream0/logits"][()], logits, rtol=1e-4, atol=1e-4)
    assert [folder] == list((tmp_path / "runs" / "eval_cache").iterdir())
    assert len(stored) == 6 and stored == {path: path.stat().st_mtime_ns for path in folder.glob("features/*.npy")}


@pytest.mark.slow
def test_frame_baseline_trains_and_initialises_the_flow_actionvlad(tmp_path):
    """The two-stream flow baseline (fc8, T = 1) trains, is evaluated by averaging T frames, and its
    backbone initialises k-means and the flow ActionVLAD (release §2.5, §5)."""
    data = tmp_path / "data"
    _write_dataset(data, classes=2)
    common = [
        f"--dataset_dir={data}/frames",
        f"--flow_dir={data}/flow",
        f"--dataset_list_dir={data}/lists",
        "--dataset_name=demo",
        "--num_classes=2",
        "--image_size=32",
        "--resize_shape=40,48",
        "--modality=flow",
        "--num_clusters=4",
    ]
    _run(
        "train",
        *common,
        "--conv_endpoint=fc8",
        "--pooling=avg",
        "--frames_per_video=1",
        "--videos_per_micro_batch=2",
        "--videos_per_update=2",
        "--max_number_of_steps=1",
        "--train_dir=runs/baseline",
        cwd=tmp_path,
    )
    out = _run(
        "eval",
        *common,
        "--conv_endpoint=fc8",
        "--pooling=avg",
        "--frames_per_video=3",
        "--checkpoint_path=runs/baseline",
        "--results_dir=runs/baseline_eval",
        cwd=tmp_path,
    )
    assert "(4 videos)" in out
    _run(
        "cluster",
        *common,
        "--backbone_weights=runs/baseline/model.keras",
        "--centers=runs/c.npz",
        "--num_frames=4",
        "--frames_per_batch=4",
        cwd=tmp_path,
    )


ENTRY_POINT_PARSER = """
    import sys
    sys.path.insert(0, "experiments")
    entry, flagfiles = sys.argv[1], sys.argv[2:]
    module = __import__(entry)
    from absl import flags
    from flagfiles import expand_flagfiles
    problems = []
    for flagfile in flagfiles:
        values = flags.FLAGS
        values.unparse_flags()
        try:
            values(expand_flagfiles(["prog", f"--flagfile={flagfile}"]))
        except flags.Error as error:
            problems.append(f"{flagfile}: {error}")
    print("\\n".join(problems) or "all parsed")
"""


@pytest.mark.parametrize("entry", ["train", "eval", "cluster"])
def test_every_flagfile_parses_with_its_entry_point(tmp_path, entry):
    """Every flag a runnable flagfile names (includes expanded) is defined by the entry point in its
    run command, with a valid value (enums such as --pooling, --modality, --stage checked)."""
    flagfiles = sorted(
        match.group(2)
        for path in CONFIGS.glob("*.flags")
        for match in RUN.finditer(path.read_text())
        if match.group(1) == entry
    )
    if not flagfiles:
        pytest.skip(f"no flagfile runs {entry}.py")
    script = tmp_path / "parse.py"
    script.write_text(textwrap.dedent(ENTRY_POINT_PARSER))
    run = subprocess.run(
        [sys.executable, str(script), entry, *flagfiles],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"},
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip().endswith("all parsed"), run.stdout


@pytest.mark.slow  # a subprocess of train.py; the resolution itself is tested below in the default run
def test_a_flagfile_runs_from_another_folder(tmp_path):
    """A repository flagfile named by its absolute path runs from any folder: its includes
    (`--flagfile=_hmdb51.flags`) resolve beside it, so train.py gets past flag parsing and stops at
    the data, whose paths stay relative to the working folder."""
    environment = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    flagfile = CONFIGS / "hmdb51_rgb_split1_stage1.flags"
    run = subprocess.run(
        [sys.executable, str(REPO / "experiments" / "train.py"), f"--flagfile={flagfile}"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode != 0
    assert "Flags parsing error" not in run.stderr
    assert "list file not found: data/hmdb51/lists/train_split1.txt" in run.stderr, run.stderr[-3000:]


def test_flagfile_includes_resolve_beside_the_flagfile(tmp_path, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("flagfiles", REPO / "experiments" / "flagfiles.py")
    flagfiles = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(flagfiles)
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "_part.flags").write_text("# a partial\n--num_clusters=8\n--seed=3\n")
    (tmp_path / "configs" / "run.flags").write_text("--flagfile=_part.flags\n--seed=4\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert flagfiles.expand_flagfiles(["prog", f"--flagfile={tmp_path}/configs/run.flags", "--x=1"]) == [
        "prog",
        "--num_clusters=8",
        "--seed=3",
        "--seed=4",
        "--x=1",
    ]
    (tmp_path / "configs" / "bad.flags").write_text("--seed=1\n--flagfile=_missing.flags\n")
    with pytest.raises(Exception, match=r"bad.flags:2: flagfile _missing.flags not found"):
        flagfiles.expand_flagfiles(["prog", f"--flagfile={tmp_path}/configs/bad.flags"])
    (tmp_path / "configs" / "loop.flags").write_text("--flagfile=loop.flags\n")
    with pytest.raises(Exception, match="includes itself"):
        flagfiles.expand_flagfiles(["prog", f"--flagfile={tmp_path}/configs/loop.flags"])
