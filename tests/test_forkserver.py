"""Steps forked from a server that imported TensorFlow once (actionvlad_tf.forkserver): the child
runs the command in the step's directory, environment and log, and its exit status is the step's."""

import os
import sys

import pytest

from actionvlad_tf import commands
from actionvlad_tf.forkserver import ForkServers

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork here: steps run as subprocesses")
PROGRAM = [sys.executable, "-m", commands.MODULE]


def test_steps_run_in_forked_children(tmp_path):
    servers = ForkServers(1, PROGRAM, cwd=str(tmp_path))
    try:
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        log = str(tmp_path / "dataset.log")
        flags = ["--output_dir=data", "--num_classes=2", "--train_per_class=1", "--test_per_class=1", "--num_frames=6"]
        code = servers(None, PROGRAM + ["make-demo-dataset", *flags, "--height=32", "--width=32"], log, env)
        assert code == 0, open(log).read()
        assert (tmp_path / "data" / "splits" / "trainlist01.txt").is_file()  # the step's working directory
        assert "4 videos" in open(log).read()  # the child's output went to the step's log
        # the same server again: a bad flag is absl's exit status 1, an unknown command the launcher's 2
        assert servers(None, PROGRAM + ["make-demo-dataset", "--no_such_flag=1"], log, env) == 1
        assert "no_such_flag" in open(log).read()
        assert servers(None, PROGRAM + ["no-such-command"], log, env) == 2
        assert "no command 'no-such-command'" in open(log).read()
        assert len(servers._servers) == 1  # one server ran them all
        with pytest.raises(ValueError, match="does not start with"):
            servers(None, ["python", "x.py"], log, env)
    finally:
        servers.close()
    assert not servers._servers
