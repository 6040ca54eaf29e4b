"""Tests of experiments/fuse.py: the release's HMDB51 figures from its logits (§10), iDT, weight search."""

import json
import subprocess
import sys

import numpy as np
import pytest

from actionvlad_tf.data.lists import read_list
from actionvlad_tf.evaluation import fusion, logits_io, metrics

# release §10: RGB, flow, logit fusion, softmax fusion (flow weight 0.667), HMDB51 test splits
RELEASED = {1: (51.37, 58.95, 66.73, 64.12), 2: (49.22, 59.74, 66.54, 64.44), 3: (48.63, 60.59, 66.34, 64.90)}


def _fuse(repo_root, *args):
    return subprocess.run(
        [sys.executable, str(repo_root / "experiments" / "fuse.py"), *args],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_script_reproduces_released_split1(shared_data, repo_root):
    root = shared_data / "hmdb51"
    done = _fuse(
        repo_root,
        f"--rgb={root}/released_logits/rgb_split1.h5",
        f"--flow={root}/released_logits/flow_split1.h5",
        f"--list_file={root}/test_split1.txt",
        "--flow_weight=0.667",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)  # exactly one JSON object on stdout
    got = tuple(round(result[key], 2) for key in ("rgb_top1", "flow_top1", "fused_top1"))
    assert got == RELEASED[1][:3]
    assert result["num_videos"] == 1530 and result["normalize"] == "none"


@pytest.mark.parametrize("split", [1, 2, 3])
def test_library_reproduces_released_logit_and_softmax_fusion(shared_data, split):
    root = shared_data / "hmdb51"
    labels = np.array([entry.label for entry in read_list(root / f"test_split{split}.txt")])
    rgb, flow = (
        logits_io.read_logits(root / "released_logits" / f"{stream}_split{split}.h5", labels.size)
        for stream in ("rgb", "flow")
    )
    got = [
        metrics.top_k_accuracy(scores, labels)
        for scores in (rgb, flow, fusion.late_fusion(rgb, flow, 0.667), fusion.late_fusion(rgb, flow, 0.667, "softmax"))
    ]
    assert tuple(round(value, 2) for value in got) == RELEASED[split]


def _write_list(path, labels):
    path.write_text("".join(f"class{label}/{i} 30 {label}\n" for i, label in enumerate(labels)))
    return path


def test_idt_search_output_and_table(tmp_path, repo_root):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=40)
    onehot = np.eye(4)[labels]
    for split in ("val", "test"):
        _write_list(tmp_path / f"{split}.txt", labels)
        logits_io.write_logits(tmp_path / f"rgb_{split}.h5", rng.normal(size=(40, 4)))
        logits_io.write_logits(tmp_path / f"flow_{split}.h5", onehot + 0.2 * rng.normal(size=(40, 4)))
    logits_io.write_logits(tmp_path / "idt.h5", onehot, dataset="idt")
    common = [
        f"--rgb={tmp_path}/rgb_test.h5",
        f"--flow={tmp_path}/flow_test.h5",
        f"--list_file={tmp_path}/test.txt",
        f"--idt={tmp_path}/idt.h5",
        "--idt_weight=0.5",
        f"--search_list={tmp_path}/val.txt",
        f"--search_rgb={tmp_path}/rgb_val.h5",
        f"--search_flow={tmp_path}/flow_val.h5",
        "--search_step=0.5",
        f"--output={tmp_path}/fused.h5",
    ]
    result = json.loads(_fuse(repo_root, *common, "--json").stdout)
    assert result["flow_weight"] == 1.0 and result["search_best_top1"] == 100.0
    assert result["idt_top1"] == 100.0 and result["fused_idt_top1"] == 100.0
    fused = logits_io.read_logits(tmp_path / "fused.h5", 40)
    np.testing.assert_allclose(fused.argmax(axis=1), labels)
    table = _fuse(repo_root, *common).stdout
    assert "fused_idt" in table and "top-1" in table


def test_row_count_mismatch_names_the_file(tmp_path, repo_root):
    _write_list(tmp_path / "test.txt", [0, 1, 2])
    logits_io.write_logits(tmp_path / "rgb.h5", np.zeros((3, 3)))
    logits_io.write_logits(tmp_path / "flow.h5", np.zeros((2, 3)))
    done = _fuse(
        repo_root,
        f"--rgb={tmp_path}/rgb.h5",
        f"--flow={tmp_path}/flow.h5",
        f"--list_file={tmp_path}/test.txt",
        "--json",
    )
    assert done.returncode != 0
    assert "flow.h5: stream0/logits has 2 rows but list" in done.stderr and "test.txt has 3" in done.stderr
