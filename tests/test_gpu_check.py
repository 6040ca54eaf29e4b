"""The GPU check (experiments/gpu_check.py): its row logic, and the command at smoke size on the CPU,
which runs the GPU rows' own code with smoke sizes and the CPU as the device."""

import json
import subprocess
import sys
import time
import types

import numpy as np
import pytest
from test_workflow import CONFIG  # the demo plan at toy size

from actionvlad_tf.benchmark import gpu_check
from actionvlad_tf.benchmark.machine import gpu_peak_flops


def test_gpu_peaks_by_name():
    assert gpu_peak_flops("NVIDIA H100 80GB HBM3", "bfloat16") == 989.4e12  # SXM
    assert gpu_peak_flops("NVIDIA H100 PCIe", "tf32") == 378e12
    assert gpu_peak_flops("NVIDIA A100-SXM4-80GB", "tf32") == 156e12
    assert gpu_peak_flops("NVIDIA A10G", "tf32") == 62.5e12  # not the A100's
    assert gpu_peak_flops("Tesla T4", "bfloat16") is None  # no bfloat16 unit
    assert gpu_peak_flops("NVIDIA GeForce RTX 4090", "float32") is None  # not in the table: n/a


def test_bfloat16_rows_run_where_the_device_has_it(monkeypatch):
    from actionvlad_tf import hardware

    monkeypatch.setattr(hardware, "choose_precision", lambda value: ("mixed_float16", "compute capability 7.5"))
    assert gpu_check.bfloat16_plan(gpu=True, smoke=False) == (False, "compute capability 7.5")
    monkeypatch.setattr(hardware, "native_bfloat16_cpu", lambda: (False, "no AMX"))
    assert gpu_check.bfloat16_plan(gpu=False, smoke=True)[0]  # emulated, but tiny
    assert not gpu_check.bfloat16_plan(gpu=False, smoke=False)[0]


def test_rows_out_of_time_or_failing_are_named_and_the_others_run():
    def failing_chain(deadline):
        raise RuntimeError("boom")

    results = gpu_check.run_gpu_check(rows=("demo_chain",), smoke=True, budget_s=600, chain=failing_chain)
    by_name = {row["name"]: row for row in results["rows"]}
    assert by_name["demo_chain"]["status"] == "failed" and "boom" in by_name["demo_chain"]["note"]
    assert by_name["update"]["note"] == "not asked for"

    def chain(deadline):
        return dict(what="a chain", steps={"a": 1.0}, finished=True, top1=50.0)

    results = gpu_check.run_gpu_check(rows=("demo_chain",), smoke=True, budget_s=600, chain=chain)
    row = results["rows"][-1]
    assert (row["status"], row["ratio"]) == ("smoke", "top-1 50.0 %")

    results = gpu_check.run_gpu_check(smoke=True, budget_s=1, chain=chain)
    assert all(row["status"] == "skipped" and row["note"].startswith("out of time") for row in results["rows"])
    table = gpu_check.format_check(results)
    assert "skipped, cut or failed: update (out of time" in table and "demo_chain (out of time" in table
    assert results["machine"]["cpu_model"] in table


def test_mirrored_rows_on_one_gpu_say_so(tmp_path):
    # The CPU stands in for the one GPU; TensorFlow started in this process with one CPU device, so
    # the rehearsal on two is skipped and says why.
    size = dict(gpu_check.SIZES["smoke"]["mirrored"])
    rows = gpu_check.mirrored_rows(size, size, ["/cpu:0"], str(tmp_path), "NVIDIA H100", "a CPU")
    assert [row.status for row in rows] == ["ran", "skipped"]
    assert rows[0].note.startswith("1 GPU visible") and rows[0].data["seconds_per_update_1"] > 0
    assert "fresh process" in rows[1].note


def test_steps_up_to_a_target_keep_its_dependencies_in_order():
    from actionvlad_tf import demo

    config = {
        **CONFIG,
        "backbone_weights": "random",
        "flow_backbone_weights": "auto",
        "backbone_width": None,
        "train_per_class": 3,
        "test_per_class": 1,
        "flow_method": "tvl1_fast",
        "stage2_learning_rate": 1e-3,
        "predict_videos": 1,
    }
    steps = demo.build_steps(config, "/out", {"rgb": "rgb.h5", "flow": "flow.h5"}, 1.0, 32, "float32")
    chain = gpu_check.steps_up_to(steps, "rgb_netvlad_eval")
    assert [s.name for s in chain] == [
        "dataset",
        "frames",
        "lists",
        "rgb_cluster",
        "rgb_netvlad_stage1",
        "rgb_netvlad_stage2",
        "rgb_netvlad_eval",
    ]
    stage1 = next(s for s in chain if s.name == "rgb_netvlad_stage1")
    assert stage1.after == ()  # it waited for rgb_max_stage2, which the chain leaves out


def test_stop_at_ends_a_step_at_the_deadline(tmp_path):
    stop = gpu_check.StopAt(time.monotonic() + 1.0)
    started = time.monotonic()
    code = stop(
        types.SimpleNamespace(name="sleeper"),
        [sys.executable, "-c", "import time; time.sleep(60)"],
        str(tmp_path / "sleeper.log"),
        None,
    )
    assert code == gpu_check.TIMED_OUT and stop.timed_out == ["sleeper"]
    assert time.monotonic() - started < 20


def test_tvl1_tf_rates_tile_the_pairs_to_a_batch():
    from actionvlad_tf.benchmark import flow

    first, second = flow.smooth_pairs(24, 32, 2)
    rates, times = flow.tvl1_tf_rates(first, second, {"graph": ("/CPU:0", False, 3)}, repeats=1, warmup=0)
    assert set(rates) == {"graph"} and np.isfinite(rates["graph"]) and rates["graph"] > 0
    assert len(times["graph"].samples) == 1


def _run(tmp_path, repo_root, *flags):
    output = tmp_path / "gpu_check.json"
    run = subprocess.run(
        [sys.executable, "experiments/gpu_check.py", f"--json={output}", f"--workdir={tmp_path}", *flags],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run.stdout, json.loads(output.read_text())


def test_smoke_run_times_the_update_and_checks_the_mirrored_update(tmp_path, repo_root):
    """The command without a GPU (≈ 40 s on 2 cores): the update and mirrored rows at smoke size."""
    out, results = _run(tmp_path, repo_root, "--rows=update,mirrored")
    rows = {row["name"]: row for row in results["rows"]}
    assert results["mode"] == "smoke" and rows["update_float32_cache"]["status"] == "smoke"
    assert {"update_float32_frames", "update_bfloat16_cache", "update_bfloat16_frames"} <= set(rows)
    mirrored = rows["mirrored_2"]["data"]
    assert mirrored["same_update"] and mirrored["per_replica_batch"] * 2 == mirrored["videos_per_micro_batch"]
    assert rows["tvl1"]["note"] == rows["demo_chain"]["note"] == "not asked for"
    assert results["machine"]["cpu_model"] in out and "at smoke size (no GPU)" in out
    assert list(tmp_path.iterdir()) == [tmp_path / "gpu_check.json"]  # scratch folders removed


@pytest.mark.slow
def test_smoke_run_of_every_row(tmp_path, repo_root):
    """All four rows at smoke size (≈ 4 min on 2 cores, most of it the demo chain's 7 subprocesses)."""
    out, results = _run(tmp_path, repo_root)
    rows = {row["name"]: row for row in results["rows"]}
    assert all(row["status"] == "smoke" for row in rows.values()), out
    assert rows["tvl1"]["data"]["tvl1_tf_pairs_per_s"] > 0
    assert rows["demo_chain"]["data"]["finished"] and rows["demo_chain"]["data"]["top1"] is not None
    assert "skipped, cut or failed: none" in out
