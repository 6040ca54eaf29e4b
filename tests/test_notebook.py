"""Notebook reuse: saved ActionVLAD models load after `import actionvlad_tf` alone (no
custom_objects, safe mode), and the example notebook runs top to bottom offline."""

import os
import subprocess
import sys

import keras
import nbformat
import numpy as np
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from nbclient import NotebookClient

from actionvlad_tf.export.saved_model import late_fuse
from actionvlad_tf.models import build_actionvlad, build_two_stream

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(REPO, "examples", "netvlad_on_another_backbone.ipynb")
LOAD_IN_FRESH_PROCESS = r"""
import sys
import numpy as np
import actionvlad_tf  # the only preparation a notebook needs
import keras
for path in sys.argv[1:]:
    model = keras.saving.load_model(path, safe_mode=True)
    inputs = dict(np.load(path + ".inputs.npz"))
    outputs = model(inputs if len(inputs) > 1 else inputs["rgb"])
    np.save(path + ".reloaded.npy", keras.ops.convert_to_numpy(outputs))
"""


def test_saved_models_load_without_custom_objects(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.uniform(-100, 100, (1, 2, 32, 32, 3)).astype(np.float32)
    flow = rng.uniform(-100, 100, (1, 2, 32, 32, 20)).astype(np.float32)
    kwargs = dict(frames_per_video=2, image_size=32, num_clusters=3)
    models = {
        "rgb": (build_actionvlad(4, **kwargs), {"rgb": rgb}),
        "two_stream": (build_two_stream(4, **kwargs), {"rgb": rgb, "flow": flow}),
        "early": (build_two_stream(4, fusion="early", **kwargs), {"rgb": rgb, "flow": flow}),
        "late_fuse": (
            late_fuse(build_actionvlad(4, **kwargs), build_actionvlad(4, modality="flow", **kwargs)),
            {"rgb": rgb, "flow": flow},
        ),
    }
    paths, expected = [], {}
    for name, (model, inputs) in models.items():
        path = str(tmp_path / f"{name}.keras")
        model.save(path)
        np.savez(path + ".inputs.npz", **inputs)
        expected[path] = keras.ops.convert_to_numpy(model(inputs if len(inputs) > 1 else inputs["rgb"]))
        paths.append(path)
    result = subprocess.run(
        [sys.executable, "-c", LOAD_IN_FRESH_PROCESS, *paths],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for path in paths:
        np.testing.assert_allclose(np.load(path + ".reloaded.npy"), expected[path], atol=1e-5)


def _python3_kernel():
    """The venv's `python3` kernelspec, installed into the venv (--sys-prefix) where missing."""
    try:
        KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix"], check=True)
    return "python3"


def test_example_notebook_runs_offline(tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook, timeout=300, kernel_name=_python3_kernel(), resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    text = "".join(o.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs)
    assert "loss after one step" in text
    assert "reloaded, max |difference|" in text
    assert "Error" not in text
