"""The layer tests on the other Keras 3 backends: each in its own process (the backend is fixed at
`import keras`), with TensorFlow made unimportable, so `import actionvlad_tf` and the layers are
shown to need none."""

import importlib.util
import os
import subprocess
import sys

import pytest

LAYER_TESTS = ["tests/test_netvlad.py", "tests/test_pooling.py"]
RUN_WITHOUT_TENSORFLOW = """
import sys
sys.modules["tensorflow"] = None  # any `import tensorflow` now raises ImportError
import keras
assert keras.backend.backend() == sys.argv[1], keras.backend.backend()
import actionvlad_tf, pytest
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "-p", "no:randomly", *sys.argv[2:]]))
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_layer_tests_pass_without_tensorflow(backend, repo_root):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed (pip install 'actionvlad_tf[test]')")
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(repo_root), "CUDA_VISIBLE_DEVICES": ""}
    run = subprocess.run(
        [sys.executable, "-c", RUN_WITHOUT_TENSORFLOW, backend, *LAYER_TESTS],
        cwd=repo_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary
