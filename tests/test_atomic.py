"""Tests of actionvlad_tf.atomic: a file appears whole or not at all."""

import os
import stat

import pytest

from actionvlad_tf.atomic import atomic_output


def test_interrupted_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "results.json"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_output(path) as temporary:
            with open(temporary, "w") as handle:
                handle.write("half a file")
            raise RuntimeError("interrupted")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["results.json"]


def test_completed_write_replaces_with_umask_permissions(tmp_path):
    path = tmp_path / "new" / "folder" / "results.json"
    previous = os.umask(0o022)
    try:
        with atomic_output(path) as temporary:
            assert os.path.dirname(temporary) == str(path.parent)
            with open(temporary, "w") as handle:
                handle.write("new")
    finally:
        os.umask(previous)
    assert path.read_text() == "new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert os.listdir(path.parent) == ["results.json"]
