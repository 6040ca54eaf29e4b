"""The main job end to end at toy size: every entry point in a subprocess (several minutes)."""

import json
import subprocess
import sys

import pytest
from test_installed import TOY  # the demo at toy size


@pytest.mark.slow
def test_demo_runs_the_whole_chain_and_a_rerun_runs_nothing(tmp_path, repo_root):
    command = [
        sys.executable,
        str(repo_root / "experiments" / "demo.py"),
        f"--output_dir={tmp_path}",
        *TOY,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Late fuse" in result.stdout and "predict.py on the held-out" in result.stdout
    assert "precision " in result.stdout  # the choice is printed with its reason
    summary = json.loads((tmp_path / "results.json").read_text())
    assert set(summary["top1"]) == {"two_stream", "avg", "max", "netvlad_stage1", "netvlad"}
    for row in summary["top1"].values():
        assert set(row) == {"rgb", "flow", "fused"}
    sweep = summary["netvlad_fusion_by_flow_weight"]  # weight 0 is RGB alone, 1 flow alone
    assert sweep["0.0"] == summary["top1"]["netvlad"]["rgb"] and sweep["1.0"] == summary["top1"]["netvlad"]["flow"]
    assert summary["num_test_videos"] == 3 and summary["seconds"]["total"] > 0
    assert all(summary["seconds"][name] is not None for name in summary["steps_run"])
    assert (tmp_path / "export" / "1" / "saved_model.pb").is_file()
    assert (tmp_path / "results" / "rgb_netvlad" / "logits.h5").is_file()
    assert (tmp_path / "results" / "flow_netvlad" / "confusion.png").is_file()
    assert list((tmp_path / "action_words").glob("*.png"))

    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "[run " not in again.stdout and json.loads((tmp_path / "results.json").read_text())["steps_run"] == []


def test_seeds_table_gives_mean_and_sample_std_of_every_cell():
    from actionvlad_tf import demo

    def summary(seed, shift):
        top1 = {key: {"rgb": 80.0 + shift, "flow": 40.0, "fused": 70.0 + 2 * shift} for key, _ in demo.ROWS}
        return {
            "config": {"seed": seed, "num_classes": 6, "flow_weight": 0.333},
            "top1": top1,
            "num_test_videos": 120,
            "seconds": {"total": 400.0 + seed},
            "machine": {"cpu_model": "Some CPU"},
            "precision": {"policy": "float32"},
        }

    text = demo.seeds_table([summary(0, -1.0), summary(1, 0.0), summary(2, 1.0)], "a backbone")
    assert "seeds 0, 1, 2 (120 test videos per seed, chance 16.7); late fusion 0.667·RGB + 0.333·flow" in text
    assert "| ActionVLAD (stage 2) | 80.0 ± 1.0 | 40.0 ± 0.0 | 70.0 ± 2.0 |" in text
    assert "400 s, 401 s, 402 s; Some CPU, precision float32." in text
