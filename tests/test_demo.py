"""The main job end to end at toy size: every entry point in a subprocess (several minutes)."""
import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_demo_runs_the_whole_chain_and_a_rerun_runs_nothing(tmp_path, repo_root):
    command = [
        sys.executable, str(repo_root / "experiments" / "demo.py"), f"--output_dir={tmp_path}",
        "--num_classes=3", "--train_per_class=3", "--val_per_class=1", "--test_per_class=1",
        "--frames_per_video=3", "--num_clusters=2", "--baseline_steps=2", "--stage1_steps=2",
        "--stage2_steps=2", "--batch_size=2", "--predict_videos=1",
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
