"""Step keys of the demo's workflow: a re-run repeats exactly the steps whose flags, code or inputs
changed, and an interrupted step resumes (no subprocess: a fake executor writes the outputs)."""

import os

import pytest

from actionvlad_tf import demo
from actionvlad_tf.workflow import Step, StepFailed, Workflow

CONFIG = dict(
    backbone_weights="x",
    backbone_width=0.25,
    num_classes=3,
    train_per_class=4,
    val_per_class=1,
    test_per_class=2,
    evaluate_on="test",
    frames_per_video=3,
    image_size=32,
    num_clusters=2,
    flow_method="dis",
    flow_bound=5.0,
    baseline_steps=2,
    baseline_learning_rate=1e-3,
    stage1_steps=2,
    stage1_learning_rate=0.01,
    stage2_steps=2,
    stage2_learning_rate=1e-4,
    flow_weight=0.333,
    batch_size=2,
    seed=0,
    mixed_precision="auto",
    predict_videos=2,
    jobs=1,
)


def fake_execute(step, command, log_path, env):
    """Writes every output of the step, as the entry point would."""
    for path in step.outputs:
        if os.path.splitext(path)[1]:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(step.name)
        else:
            os.makedirs(path, exist_ok=True)
            with open(os.path.join(path, "made_by"), "w") as f:
                f.write(step.name)
    with open(log_path, "w") as f:
        f.write(f"{step.name} done\r")
    return 0


def demo_workflow(tmp_path, version="v1", **changes):
    backbones = {}
    for stream in ("rgb", "flow"):
        backbone = tmp_path / f"{stream}_backbone.weights.h5"
        if not backbone.exists():
            backbone.write_bytes(b"weights")
        backbones[stream] = str(backbone)
    config = dict(CONFIG, **changes)
    steps = demo.build_steps(config, str(tmp_path / "out"), backbones, 0.25, 32, "float32")
    return Workflow(
        steps,
        ["actionvlad"],
        str(tmp_path / "out" / "steps"),
        str(tmp_path / "out" / "logs"),
        version=version,
        execute=fake_execute,
        echo=lambda line: None,
    )


def test_a_changed_flag_reruns_exactly_the_steps_that_depend_on_it(tmp_path):
    first = demo_workflow(tmp_path)
    assert set(first.run()) == set(first.steps)  # 33 steps: the whole chain
    assert demo_workflow(tmp_path).run() == []  # nothing changed: nothing runs

    stage2 = {f"{s}_{p}_stage2" for s in ("rgb", "flow") for p in ("avg", "max", "netvlad")}
    evals = {f"{s}_{p}_eval" for s in ("rgb", "flow") for p in ("avg", "max", "netvlad")}
    finish = {"export", "predict", "action_words"}
    assert set(demo_workflow(tmp_path, stage2_learning_rate=3e-4).run()) == stage2 | evals | finish

    # The fusion weight changes only the exported two-stream model and what reads it.
    assert set(demo_workflow(tmp_path, stage2_learning_rate=3e-4, flow_weight=0.5).run()) == {
        "export",
        "predict",
    }

    # The flow method reaches every flow step and what uses both streams, no RGB-only step.
    workflow = demo_workflow(tmp_path, stage2_learning_rate=3e-4, flow_weight=0.5, flow_method="farneback")
    flow_steps = {name for name in workflow.steps if name.startswith("flow")}
    assert set(workflow.run()) == flow_steps | {"export", "predict"}


def test_inputs_and_code_version_are_part_of_the_key(tmp_path):
    demo_workflow(tmp_path).run()
    (tmp_path / "rgb_backbone.weights.h5").write_bytes(b"other weights")
    ran = set(demo_workflow(tmp_path).run())
    # The RGB backbone feeds the RGB two-stream network, RGB k-means and RGB stage 1, and all after them.
    assert {"rgb_two_stream", "rgb_cluster", "rgb_netvlad_stage1", "export"} <= ran
    assert not ran & {"dataset", "frames", "flow", "lists"} and not any(name.startswith("flow") for name in ran)
    # The flow stream's starting weights feed the flow two-stream network and everything after it.
    (tmp_path / "flow_backbone.weights.h5").write_bytes(b"other weights")
    ran = set(demo_workflow(tmp_path).run())
    assert {"flow_two_stream", "flow_cluster", "flow_netvlad_stage2", "export"} <= ran
    assert not any(name.startswith("rgb") for name in ran) and "action_words" not in ran
    assert set(demo_workflow(tmp_path, version="v2").run()) == set(demo_workflow(tmp_path).steps)


def test_a_step_rerun_with_a_new_key_starts_clean_and_an_interrupted_one_resumes(tmp_path):
    out = tmp_path / "out"
    outputs, calls = [str(out / "train")], []

    def execute(step, command, log_path, env):
        calls.append(sorted(os.listdir(outputs[0])) if os.path.isdir(outputs[0]) else None)
        if step.flags.get("fail"):
            os.makedirs(outputs[0], exist_ok=True)
            (out / "train" / "checkpoint").write_text("partial")
            return 1
        os.makedirs(outputs[0], exist_ok=True)
        return 0

    def workflow(**flags):
        return Workflow(
            [Step("train", "train", flags, outputs=tuple(outputs))],
            ["actionvlad"],
            str(out / "steps"),
            str(out / "logs"),
            execute=execute,
            echo=lambda line: None,
        )

    with pytest.raises(StepFailed, match="step train failed"):
        workflow(fail=1, lr=1).run()
    # Same key after a failure/interruption: the partial checkpoint is kept, so training resumes.
    with pytest.raises(StepFailed):
        workflow(fail=1, lr=1).run()
    assert calls[-1] == ["checkpoint"]
    # Another key: the old outputs go first (no resuming from a checkpoint made with other flags).
    workflow(lr=2).run()
    assert calls[-1] is None


def test_ready_steps_start_by_the_longest_chain_of_costs_behind_them(tmp_path):
    order = []

    def execute(step, command, log_path, env):
        order.append(step.name)
        open(log_path, "w").close()
        return 0

    steps = [Step("short", "a", cost=5), Step("long1", "a", cost=1), Step("long2", "a", deps=("long1",), cost=10)]
    workflow = Workflow(steps, ["x"], str(tmp_path / "s"), str(tmp_path / "l"), execute=execute, echo=lambda _: None)
    assert workflow.priorities == {"short": 5, "long1": 11, "long2": 10}
    workflow.run()
    assert order == ["long1", "long2", "short"]  # not the plan's order
    # The demo: the flow chain goes first, and flow ActionVLAD does not wait for the flow frame network.
    demo_steps = demo_workflow(tmp_path)
    assert demo_steps.priorities["flow"] > demo_steps.priorities["rgb_two_stream"]
    assert "flow_two_stream" not in demo_steps.steps["flow_cluster"].deps


def test_a_dependency_cycle_and_an_unknown_dependency_are_refused(tmp_path):
    with pytest.raises(ValueError, match="cycle"):
        Workflow([Step("a", "a", deps=("b",)), Step("b", "b", deps=("a",))], [], "", "")
    with pytest.raises(ValueError, match="unknown"):
        Workflow([Step("a", "a", deps=("c",))], [], "", "")


def test_last_lines_quiet_leaves_out_tensorflow_start_up_noise(tmp_path):
    from actionvlad_tf.workflow import last_lines

    log = tmp_path / "predict.log"
    log.write_text(
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        "I0000 00:00:1796236118.948169   11259 port.cc:153] oneDNN custom operations are on.\n"
        "video.avi: 36 frames\n   26.24%  RH_GV_BZ\n"
    )
    assert last_lines(str(log), 4, quiet=True) == "video.avi: 36 frames\n   26.24%  RH_GV_BZ"
    assert last_lines(str(log), 4).startswith("WARNING")
    assert last_lines(str(tmp_path / "missing.log"), 3) == ""


def test_every_demo_step_is_a_launcher_command_run_on_this_package(tmp_path):
    from actionvlad_tf import commands

    steps = demo_workflow(tmp_path).steps.values()
    assert {step.entry for step in steps} <= set(commands.scripts())
    assert Step("s", "train", {"x": 1}).command(["python", "-m", commands.MODULE]) == [
        "python",
        "-m",
        "actionvlad_tf.commands",
        "train",
        "--x=1",
    ]
    # From a source tree the steps put it first on PYTHONPATH; an installed package needs nothing.
    assert demo.step_environment()["PYTHONPATH"].split(os.pathsep)[0] == commands.source_root()
