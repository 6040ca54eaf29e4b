"""The README's "Reproducing the paper" block is the documented recipe: statically, every input a
command names (through its flagfile or its own flags) is written by an earlier command of the block
or is the downloaded data, for splits 1, 2 and 3; the two routes to the flow start write the same
file. Slow: the block runs literally, in order, from a folder outside the checkout, on an
HMDB51-shaped fixture (official `testTrainMulti_7030_splits` files, original-style video names,
all 51 classes, three videos each), overriding only sizes, steps and start weights."""

import importlib.util
import json
import os
import pathlib
import re
import shlex
import subprocess
import sys

import pytest
from test_viz import _write_video  # a small MJPG video of a moving texture

REPO = pathlib.Path(__file__).resolve().parents[1]
_SPEC = importlib.util.spec_from_file_location("flagfiles", REPO / "experiments" / "flagfiles.py")
flagfiles = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(flagfiles)

DOWNLOADED = ("hmdb51_org", "testTrainMulti_7030_splits")  # what the block says the folder holds
SHIPPED_WEIGHTS = ("imagenet", "demo_standin", "demo_standin_flow")
# Per command: the flags naming what it reads, and what it writes.
READS = {
    "make-lists": ("split_dir", "frames_dir"),
    "extract-frames": ("videos", "video_root"),
    "extract-flow": ("frames",),
    "cluster": ("dataset_dir", "dataset_list_dir", "backbone_weights"),
    "train": ("dataset_dir", "dataset_list_dir", "backbone_weights", "centers", "checkpoint_path"),
    "eval": ("dataset_dir", "dataset_list_dir", "checkpoint_path"),
    "fuse": ("rgb", "flow", "list_file"),
    "export": ("rgb_model", "flow_model", "class_names"),
    "predict": ("model", "video"),
    "release-model": (),
}
WRITES = {
    "make-lists": ("write_video_list", "output_dir"),
    "extract-frames": ("output_dir",),
    "extract-flow": ("output_dir",),
    "cluster": ("centers",),
    "train": ("train_dir",),
    "eval": ("results_dir", "logits_file"),
    "fuse": (),
    "export": ("export_dir",),
    "predict": (),
    "release-model": ("output",),
}


def _block():
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Reproducing the paper on a real dataset") :]
    return section[section.index("```bash\n") + 8 : section.index("```\n", section.index("```bash\n") + 8)]


def recipe(split=1):
    """[(command, args)] of the block's command lines, in order, for HMDB51 split `split`, and the
    commented alternative route(s) `#   actionvlad …` likewise."""
    commands, alternatives = [], []
    for line in _block().replace("split1", f"split{split}").splitlines():
        match = re.match(r"^(#\s+)?actionvlad (\S+)(.*)$", line.strip())
        if match:
            (alternatives if match.group(1) else commands).append((match.group(2), shlex.split(match.group(3))))
    return commands, alternatives


def _values(args):
    """The flags of a command line with its flagfiles expanded (later values win)."""
    values = {}
    for arg in flagfiles.expand_flagfiles(["prog", *args])[1:]:
        name, _, value = arg.lstrip("-").partition("=")
        values[name] = value
    return values


def _made_by(path, produced):
    parts = pathlib.PurePosixPath(path).parts
    return any(parts[: len(pathlib.PurePosixPath(p).parts)] == pathlib.PurePosixPath(p).parts for p in produced)


@pytest.mark.parametrize("split", [1, 2, 3])
def test_every_input_of_the_recipe_is_written_by_an_earlier_step(split, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # outside the checkout: flagfiles are found by name
    commands, alternatives = recipe(split)
    produced = set(DOWNLOADED)
    names = [name for name, _ in commands]
    assert {"cluster", "train", "eval", "fuse", "export", "predict"} <= set(names)
    for name, args in commands:
        values = _values(args)
        if values.get("modality") == "flow" and name in ("cluster", "train", "eval"):
            reads = READS[name] + ("flow_dir",)
        else:
            reads = READS[name]
        for flag in reads:
            for path in filter(None, values.get(flag, "").split(",")):
                if flag == "backbone_weights" and path in SHIPPED_WEIGHTS:
                    continue
                assert _made_by(path, produced), (
                    f"split {split}: `actionvlad {name} {' '.join(args)}` reads "
                    f"--{flag}={path}, which no earlier command writes"
                )
        produced.update(values[flag] for flag in WRITES[name] if values.get(flag))
    # Both streams to the end: ActionVLAD RGB and flow tested, fused, exported.
    fused = [_values(args) for name, args in commands if name == "fuse"]
    assert {(f["rgb"], f["flow"]) for f in fused} >= {
        (f"runs/hmdb51/rgb_split{split}/eval/logits.h5", f"runs/hmdb51/flow_split{split}/eval/logits.h5"),
        (
            f"runs/hmdb51/twostream_rgb_split{split}/eval/logits.h5",
            f"runs/hmdb51/twostream_flow_split{split}/eval/logits.h5",
        ),
    }
    # The two routes to the flow start write the one file the flow cluster and stage 1 read, and the
    # two-stream flow row tests that network.
    ((route, route_args),) = alternatives
    assert route == "release-model"
    start = _values(route_args)["output"]
    by_flagfile = {
        re.search(r"--flagfile=(\S+)\.flags", " ".join(args)).group(1): _values(args)
        for _, args in commands
        if any(a.startswith("--flagfile=") for a in args)
    }
    assert by_flagfile[f"hmdb51_twostream_flow_split{split}_train"]["train_dir"] + "/model.keras" == start
    for step in ("cluster", "stage1"):
        assert by_flagfile[f"hmdb51_flow_split{split}_{step}"]["backbone_weights"] == start
    assert by_flagfile[f"hmdb51_twostream_flow_split{split}_eval"]["checkpoint_path"] == start


def write_hmdb51_fixture(root, classes, videos_per_class=3, frames=12):
    """hmdb51_org/<class>/<name>.avi and testTrainMulti_7030_splits/<class>_test_split{1,2,3}.txt
    (one `name.avi flag` per line: 1 train, 2 test), original-style names."""
    (root / "testTrainMulti_7030_splits").mkdir(parents=True)
    for c, name in enumerate(classes):
        (root / "hmdb51_org" / name).mkdir(parents=True)
        videos = [f"April_09_{name}_u_nm_np1_ba_goo_{v}.avi" for v in range(videos_per_class)]
        for v, video in enumerate(videos):
            _write_video(root / "hmdb51_org" / name / video, num_frames=frames, seed=c * 10 + v)
        for split in (1, 2, 3):
            flags = [1] * (videos_per_class - 1) + [2]
            lines = [f"{video} {flags[(v + split) % videos_per_class]} " for v, video in enumerate(videos)]
            (root / "testTrainMulti_7030_splits" / f"{name}_test_split{split}.txt").write_text("\n".join(lines) + "\n")


SIZE = ["--image_size=32", "--resize_shape=40,48"]
MODEL = [*SIZE, "--num_clusters=4", "--backbone_width=0.25"]
OVERRIDES = {  # sizes, steps, start weights (the shipped stand-ins instead of ImageNet) and workers
    "extract-frames": ["--num_workers=2"],
    "extract-flow": ["--num_workers=2"],
    "cluster": [*MODEL, "--num_frames=16", "--frames_per_batch=8", "--kmeans_n_init=1"],
    "train": [*MODEL, "--frames_per_video=2", "--max_number_of_steps=2"],
    "eval": [*MODEL, "--frames_per_video=2"],
    "predict": ["--frames_per_video=2"],
}


@pytest.mark.slow
def test_the_readme_recipe_runs_literally_outside_the_checkout(tmp_path):
    classes = REPO.parent / "shared" / "data" / "hmdb51" / "actions.txt"
    names = classes.read_text().split() if classes.is_file() else [f"action{c:02d}" for c in range(51)]
    names[0] = "brush_hair"  # the block's predict line names a brush_hair video
    assert len(names) == 51
    write_hmdb51_fixture(tmp_path, names)
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    commands, _ = recipe(1)
    outputs = {}
    for name, args in commands:
        extra = list(OVERRIDES.get(name, []))
        if name in ("cluster", "train") and _values(args).get("backbone_weights") == "imagenet":
            extra.append(
                "--backbone_weights=" + ("demo_standin_flow" if _values(args)["modality"] == "flow" else "demo_standin")
            )
        run = subprocess.run(
            [sys.executable, "-m", "actionvlad_tf.commands", name, *args, *extra],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert run.returncode == 0, (
            f"actionvlad {name} {' '.join(args + extra)}:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
        )
        outputs.setdefault(name, []).append(run.stdout)
    lists = tmp_path / "data" / "hmdb51" / "lists"
    assert len((lists / "test_split1.txt").read_text().splitlines()) == 51
    assert len((lists / "train_split1.txt").read_text().splitlines()) == 102
    for stream in ("rgb", "flow"):
        assert (tmp_path / "runs" / "hmdb51" / f"{stream}_split1" / "eval" / "logits.h5").is_file()
    for printed in outputs["fuse"]:  # ActionVLAD's fusion, then the two-stream network's
        fused = json.loads(printed.strip().splitlines()[-1])
        assert fused["num_videos"] == 51 and {"rgb_top1", "flow_top1", "fused_top1"} <= set(fused)
    assert (tmp_path / "exports" / "hmdb51" / "1" / "saved_model.pb").is_file()
    assert any(name in outputs["predict"][0] for name in names), outputs["predict"][0]
