"""Shared pytest fixtures. Tests that read ../shared skip where it is absent (a user's fresh clone)."""
import os
import pathlib

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


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
