"""The `actionvlad` launcher (`actionvlad_tf.commands`): every entry point is a command, a new script
becomes one with no other edit, a command runs its script as `python <script>` would, and the shipped
flagfiles resolve by name from any folder."""

import importlib.util
import os
import re
import subprocess
import sys

import pytest

from actionvlad_tf import commands
from actionvlad_tf.workflow import code_version

REPO = commands.source_root()  # the checkout under test (conftest.py puts it first)


def test_every_script_of_the_two_folders_is_a_command_or_a_helper_its_siblings_import():
    assert REPO is not None and os.path.samefile(REPO, os.path.dirname(os.path.dirname(__file__)))
    found = commands.scripts()
    assert {"train", "demo", "extract-frames", "make-demo-dataset", "viz-action-words"} <= set(found)
    for folder in commands.script_folders():
        sources = {
            name: open(os.path.join(folder, name), encoding="utf-8").read()
            for name in os.listdir(folder)
            if name.endswith(".py")
        }
        for name in sources:
            if name[:-3].replace("_", "-") not in found:
                imported = re.compile(rf"^(import {name[:-3]}\b|from {name[:-3]} import)", re.MULTILINE)
                assert any(imported.search(source) for source in sources.values()), (
                    f'{folder}/{name} is neither an entry point (`if __name__ == "__main__":`) nor imported'
                )
    help_text = commands.usage()
    for command, path in found.items():
        assert f"  {command} " in help_text and commands.summary(path) in help_text
    assert "Trains one stage of ActionVLAD" in help_text and "common-flags" not in help_text


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """A source tree of two script folders in place of the project's."""
    folders = tuple(tmp_path / folder for folder in commands.SCRIPT_FOLDERS)
    monkeypatch.setattr(commands, "script_folders", lambda: tuple(map(str, folders)))
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "sibling", raising=False)
    return folders


def test_a_new_script_is_a_command_and_runs_as_python_script_would(tree, capsys):
    experiments, data_prep = tree
    write(experiments / "sibling.py", "GREETING = 'from the sibling'\n")
    write(
        experiments / "extract_features.py",
        '"""Features of every frame.\n\nMore."""\nimport sys\n\n'
        'import sibling\n\nif __name__ == "__main__":\n    print(sibling.GREETING, __name__, sys.argv[1:])\n'
        "    sys.exit(3)\n",
    )
    write(
        data_prep / "make_things.py",
        '"""Makes things, in a sentence that goes\non below."""\nif __name__ == \'__main__\':\n    pass\n',
    )
    assert set(commands.scripts()) == {"extract-features", "make-things"}
    assert "extract-features  Features of every frame." in commands.usage()
    assert "make-things       Makes things, in a sentence that goes …" in commands.usage()
    with pytest.raises(SystemExit) as exit_:
        commands.main(["extract_features", "--x=1"])  # the underscore spelling works too
    assert exit_.value.code == 3
    assert capsys.readouterr().out == "from the sibling __main__ ['--x=1']\n"
    assert sys.argv[0] == str(experiments / "extract_features.py") and sys.path[0] == str(experiments)
    assert commands.main(["make-things"]) == 0


def test_unknown_commands_and_clashing_names_are_refused(tree, capsys):
    experiments, data_prep = tree
    for folder in tree:
        write(folder / "train.py", "if __name__ == '__main__':\n    pass\n")
    with pytest.raises(RuntimeError, match="two entry points are the command 'train'"):
        commands.scripts()
    (data_prep / "train.py").unlink()
    assert commands.main(["trian"]) == 2
    assert "no command 'trian' (did you mean train?)" in capsys.readouterr().err
    assert commands.main([]) == 2 and commands.main(["--help"]) == 0
    assert "experiments/:\n  train" in capsys.readouterr().out


def test_a_command_runs_from_any_folder_through_the_module(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", commands.MODULE, "make-lists", "--helpshort"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 1, run.stderr[-2000:]  # absl's --helpshort exits 1, as `python <script>` does
    assert run.stdout.startswith(commands.summary(commands.scripts()["make-lists"]))
    assert "--split_dir" in run.stdout and "--frames_dir" in run.stdout


def test_an_installation_and_its_source_tree_have_one_code_version(tmp_path):
    installed = tmp_path / "actionvlad_tf"
    for folder in ("sub", "experiments", "data_prep"):
        write(installed / folder / "a.py", folder)
    write(tmp_path / "tree" / "actionvlad_tf" / "sub" / "a.py", "sub")
    for folder in ("experiments", "data_prep"):
        write(tmp_path / "tree" / folder / "a.py", folder)
    inside = code_version(installed, installed / "experiments", installed / "data_prep")
    beside = code_version(*(tmp_path / "tree" / f for f in ("actionvlad_tf", "experiments", "data_prep")))
    assert inside == beside
    write(installed / "data_prep" / "a.py", "changed")
    assert code_version(installed, installed / "experiments", installed / "data_prep") != beside


@pytest.fixture
def flagfiles():
    spec = importlib.util.spec_from_file_location("flagfiles", os.path.join(REPO, "experiments", "flagfiles.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_shipped_flagfile_resolves_by_name_from_any_folder(tmp_path, monkeypatch, flagfiles):
    monkeypatch.chdir(tmp_path)
    name = "hmdb51_rgb_split1_stage1.flags"
    shipped = flagfiles.expand_flagfiles(["prog", f"--flagfile={name}"])
    assert "--modality=rgb" in shipped and "--dataset_name=hmdb51" in shipped
    assert flagfiles.expand_flagfiles(["prog", f"--flagfile=experiments/configs/{name}"]) == shipped
    # A path that exists is never redirected, and a path with a folder is not looked up by name.
    write(tmp_path / name, "--seed=5\n")
    assert flagfiles.expand_flagfiles(["prog", f"--flagfile={name}"]) == ["prog", "--seed=5"]
    with pytest.raises(Exception, match="flagfile configs/nothing.flags not found"):
        flagfiles.expand_flagfiles(["prog", "--flagfile=configs/nothing.flags"])
    with pytest.raises(Exception, match=r"looked for nothing.flags, .*configs/nothing.flags"):
        flagfiles.expand_flagfiles(["prog", "--flagfile=nothing.flags"])
