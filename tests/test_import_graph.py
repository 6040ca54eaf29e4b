"""The package's import graph: the contracts in `.importlinter` (layers, no cycles, no TensorFlow in
the layers and model builders) hold, and no project import hides inside a function."""

import ast
import os
import pathlib
import subprocess
import sys

import pytest

pytest.importorskip("importlinter")

import actionvlad_tf  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = REPO_ROOT / "actionvlad_tf"


def test_the_package_under_test_is_this_checkout():
    assert pathlib.Path(actionvlad_tf.__file__).resolve().parent == PACKAGE, (
        "run with PYTHONPATH=<checkout> so the graph checked is this checkout's"
    )


def test_import_contracts_are_kept():
    # A subprocess: import-linter's console writes to the stdout it found at import.
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from importlinter.cli import lint_imports; "
            "sys.exit(lint_imports(config_filename=sys.argv[1], no_cache=True, no_logo=True))",
            str(REPO_ROOT / ".importlinter"),
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout


def _function_level_project_imports(path, root=REPO_ROOT):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for function in ast.walk(tree):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(function):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            if any(name == "actionvlad_tf" or name.startswith("actionvlad_tf.") for name in names):
                found.append(f"{path.relative_to(root)}:{node.lineno}")
    return found


def test_no_project_import_inside_a_function():
    """A project import inside a function hides a dependency (often a cycle) from the reader."""
    found = [hit for path in sorted(PACKAGE.rglob("*.py")) for hit in _function_level_project_imports(path)]
    assert found == []


def test_the_function_level_check_finds_one(tmp_path):
    module = tmp_path / "actionvlad_tf" / "example.py"
    module.parent.mkdir()
    module.write_text("def f():\n    from actionvlad_tf.models import bn_inception\n    import numpy\n")
    assert _function_level_project_imports(module, tmp_path) == ["actionvlad_tf/example.py:2"]
