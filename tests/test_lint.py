"""ruff over the tree (ruff.toml: line length 120; pycodestyle, pyflakes and import order), lint and
format check; `ruff format .` and `ruff check --fix .` make the tree pass."""

import importlib.util
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "args", [["check", "--no-cache", "."], ["format", "--check", "--no-cache", "."]], ids=["check", "format"]
)
def test_the_tree_passes_ruff(args):
    if importlib.util.find_spec("ruff") is None:
        pytest.skip("ruff is not installed (pip install '.[test]' installs it)")
    run = subprocess.run([sys.executable, "-m", "ruff", *args], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"ruff {' '.join(args)}:\n{run.stdout[-4000:]}{run.stderr[-2000:]}"
