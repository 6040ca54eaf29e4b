"""Steps forked from a server that imported TensorFlow once (actionvlad_tf.forkserver): the child
runs the command in the step's directory, environment and log, and its exit status is the step's."""

import json
import os
import subprocess
import sys

import pytest

from actionvlad_tf import commands
from actionvlad_tf.forkserver import ForkServers

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork here: steps run as subprocesses")
PROGRAM = [sys.executable, "-m", commands.MODULE]


def test_steps_run_in_forked_children(tmp_path):
    servers = ForkServers(2, PROGRAM, cwd=str(tmp_path))
    try:
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        log = str(tmp_path / "dataset.log")
        flags = ["--output_dir=data", "--num_classes=2", "--train_per_class=1", "--test_per_class=1", "--num_frames=6"]
        code = servers(None, PROGRAM + ["make-demo-dataset", *flags, "--height=32", "--width=32"], log, env)
        assert code == 0, open(log).read()
        assert (tmp_path / "data" / "splits" / "trainlist01.txt").is_file()  # the step's working directory
        assert "4 videos" in open(log).read()  # the child's output went to the step's log
        # the first step started both servers (their imports overlap), not just the one it ran in
        assert len(servers._servers) == 2 and all(server.poll() is None for server in servers._servers)
        # the same server again: a bad flag is absl's exit status 1, an unknown command the launcher's 2
        assert servers(None, PROGRAM + ["make-demo-dataset", "--no_such_flag=1"], log, env) == 1
        assert "no_such_flag" in open(log).read()
        assert servers(None, PROGRAM + ["no-such-command"], log, env) == 2
        assert "no command 'no-such-command'" in open(log).read()
        assert len(servers._servers) == 2 and len(servers._ready) == 2  # no more started, both used
        with pytest.raises(ValueError, match="does not start with"):
            servers(None, ["python", "x.py"], log, env)
    finally:
        servers.close()
    assert not servers._servers


def test_native_thread_pools_sized_from_the_steps_environment():
    """OpenMP / BLAS pools loaded under one environment (the server's) are resized from another (the
    step's): OMP_NUM_THREADS sizes both, a BLAS-specific variable wins for BLAS, junk changes nothing."""
    script = """
import json, sklearn.cluster, threadpoolctl
from actionvlad_tf.forkserver import limit_native_threads
def sizes():
    return sorted({(p["user_api"], p["num_threads"]) for p in threadpoolctl.threadpool_info()})
before = sizes()
applied = [limit_native_threads({"OMP_NUM_THREADS": "1"}), limit_native_threads({"OMP_NUM_THREADS": "junk"})]
after_omp = sizes()
applied.append(limit_native_threads({"OMP_NUM_THREADS": "2,1", "OPENBLAS_NUM_THREADS": "1"}))
print(json.dumps([before, applied, after_omp, sizes()]))
"""
    pytest.importorskip("threadpoolctl")
    env = dict(os.environ, OMP_NUM_THREADS="3", OPENBLAS_NUM_THREADS="", MKL_NUM_THREADS="", BLIS_NUM_THREADS="")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    before, applied, after_omp, after_blas = json.loads(out.stdout.strip().splitlines()[-1])
    apis = {api for api, _ in before}
    assert {"openmp", "blas"} <= apis and ["openmp", 3] in before, before  # loaded with the server's 3
    assert applied == [{"openmp": 1, "blas": 1}, {}, {"openmp": 2, "blas": 1}]
    assert all(n == 1 for _, n in after_omp), after_omp
    assert {(api, n) for api, n in after_blas} == {("openmp", 2), ("blas", 1)}, after_blas


def test_a_pool_that_cannot_be_resized_warns_and_the_step_goes_on(monkeypatch, capsys):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from actionvlad_tf.forkserver import limit_native_threads

    def refuse(limits, user_api):
        if user_api == "blas":
            raise RuntimeError("no symbol to set the thread count")

    monkeypatch.setattr(threadpoolctl, "threadpool_limits", refuse)
    assert limit_native_threads({"OMP_NUM_THREADS": "1"}) == {"openmp": 1}
    assert "the blas thread pools keep their size (RuntimeError: no symbol" in capsys.readouterr().err
