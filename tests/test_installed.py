"""The installation, as a user gets it (`pip install '.[cpu,test]'`, not editable, as `.ci/run` does):
the `actionvlad` console command lists every entry point and runs the demo at toy size from a folder
outside the checkout, on the installed package and its installed scripts (about 2–3 minutes on two
cores). Skipped where the package is installed editable or not at all (a developer's venv); every
other test runs this checkout (conftest.py)."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from actionvlad_tf import commands
from actionvlad_tf.workflow import code_version

REPO = commands.source_root()
PROBE = (
    "import json, os, actionvlad_tf.commands as c, actionvlad_tf.workflow as w; print(json.dumps(["
    "c.source_root(), w.code_version(*c.source_folders()), os.listdir(os.path.join(c.script_folders()[0], "
    "'configs'))]))"
)
TOY = [
    "--num_classes=3",
    "--train_per_class=3",
    "--val_per_class=1",
    "--test_per_class=1",
    "--frames_per_video=3",
    "--num_clusters=2",
    "--baseline_steps=2",
    "--stage1_steps=2",
    "--stage2_steps=2",
    "--batch_size=2",
    "--predict_videos=1",
]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(the console script, an environment without this checkout) where a non-editable installation
    of this checkout's code is what a fresh interpreter imports; skips otherwise."""
    environment = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            path
            for path in os.environ.get("PYTHONPATH", "").split(os.pathsep)
            if path and os.path.realpath(path) != os.path.realpath(REPO)
        ),
    )
    probe = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=tmp_path_factory.mktemp("elsewhere"),
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if "No module named 'actionvlad_tf'" in probe.stderr:
        pytest.skip("actionvlad_tf is not installed in this interpreter (pip install '.[cpu,test]')")
    assert probe.returncode == 0, probe.stderr[-3000:]
    root, version, flagfiles = json.loads(probe.stdout.splitlines()[-1])
    if root:
        pytest.skip(
            f"actionvlad_tf is installed editable (its scripts are the source tree's, {root}): "
            "the non-editable installation is tested by .ci/run"
        )
    assert version == code_version(*commands.source_folders()), (
        "the installed actionvlad_tf is not this checkout's code: pip install '.[cpu,test]' again"
    )
    assert sorted(flagfiles) == sorted(os.listdir(os.path.join(REPO, "experiments", "configs")))
    console = shutil.which("actionvlad", path=os.path.dirname(sys.executable))
    assert console, f"no `actionvlad` console script beside {sys.executable} (setup.py entry_points)"
    return console, environment


def test_the_console_command_lists_every_entry_point(installed, tmp_path):
    console, environment = installed
    run = subprocess.run(
        [console, "--help"], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-3000:]
    for command, path in commands.scripts().items():
        assert f"  {command} " in run.stdout and commands.summary(path) in run.stdout


def test_the_demo_runs_through_the_console_command_from_outside_the_checkout(installed, tmp_path):
    console, environment = installed
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = subprocess.run(
        [console, "demo", f"--output_dir={out}"] + TOY,
        cwd=elsewhere,
        env=environment,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "Late fuse" in run.stdout and "[run ] rgb_netvlad_stage2: actionvlad train --modality=rgb" in run.stdout
    summary = json.loads((out / "results.json").read_text())
    assert set(summary["top1"]) == {"two_stream", "avg", "max", "netvlad_stage1", "netvlad"}
    assert len(summary["steps_run"]) == len(os.listdir(out / "logs"))
    assert (out / "export" / "1" / "saved_model.pb").is_file() and list((out / "action_words").glob("*.png"))


def test_ci_installs_non_editable_and_runs_the_readmes_test_command():
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    with open(os.path.join(REPO, ".ci", "run"), encoding="utf-8") as f:
        ci = f.read()
    test_line = next(line for line in readme.splitlines() if line.endswith("&& python -m pytest"))
    command = test_line.split("&& ", 2)[-1]  # after the venv line
    assert command == "pip install '.[cpu,test]' && python -m pytest"
    assert command.replace("pip install", "pip install -q") in ci.splitlines()
