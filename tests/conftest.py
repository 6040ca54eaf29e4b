"""Shared pytest fixtures. Tests that read ../shared skip where it is absent (a user's fresh clone).

The suite tests this checkout, whatever is installed: its root goes first on sys.path (as `python -m
pytest` from the root does; plain `pytest` would import an installed copy) and on PYTHONPATH, so the
entry points the tests start (`python experiments/x.py`, `python -m actionvlad_tf.commands`) import
the same package as the tests. tests/test_installed.py alone tests the installation.
"""

import os
import pathlib
import sys

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
sys.path.insert(0, str(REPO_ROOT))
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(REPO_ROOT)]
    + [path for path in os.environ.get("PYTHONPATH", "").split(os.pathsep) if path and path != str(REPO_ROOT)]
)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than ~30 s on 2 cores; run with -m slow")


@pytest.fixture(scope="session")
def shared_data():
    """Path to ../shared/data, or skip the test when it is not there."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent (fresh clone)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def repo_root():
    return REPO_ROOT
