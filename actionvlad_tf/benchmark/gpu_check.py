"""The GPU check (`experiments/gpu_check.py`, docs/performance.md "The GPU check"): one run, under a
time budget, that says how this project uses a GPU machine. Rows, in order:

* `update`: the stage-2 update at the paper's shape (release §2.5: 16 videos per update, clipped as
  one micro-batch, T = 25, 224² crops, K = 64, 51 classes) through the trainer's compiled steps
  (`updates.bench_updates`), on the feature cache and from frames, in float32 and bfloat16, against
  the device's peak: its GEMM of the same dtype timed in the same rounds, and the data-sheet peak
  (`machine.gpu_peak_flops`; on a CPU, cores × clock × vector width);
* `tvl1`: `tvl1_tf` with XLA on the device against OpenCV's TV-L1 on every CPU core (`flow`);
* `mirrored`: the release's update (`training.update_shape`) from frames on one device and mirrored
  over all of them: the decomposition, max |Δw| between the two after one update, seconds per update;
* `demo_chain`: the demo's first RGB chain (`demo_chain`: its steps up to the RGB ActionVLAD
  evaluation, in subprocesses as `experiments/demo.py` runs them), stopped at the budget's end.

Without a GPU the same functions run at smoke size on the CPU (`SIZES["smoke"]`), the mirrored row
over two logical CPU devices (`prepare_devices`), and each row says so. A row whose estimate exceeds the
time left is skipped and named; a row that fails is reported with its error and the others run.
"""

import dataclasses
import json
import os
import signal
import subprocess
import tempfile
import time

import numpy as np
import tensorflow as tf

from actionvlad_tf import demo, hardware
from actionvlad_tf.benchmark import flow, machine, updates
from actionvlad_tf.benchmark.pipelines import _model
from actionvlad_tf.benchmark.table import text_table
from actionvlad_tf.training import trainer
from actionvlad_tf.workflow import StepFailed

ROWS = ("update", "tvl1", "mirrored", "demo_chain")
BUDGET_S = 450.0  # with TensorFlow's start-up and the clean-up, under 8 minutes
TIMED_OUT = 124  # a step stopped at the deadline exits as timeout(1) does
_STAGE2 = trainer.recipe_defaults(2)
_PAPER = dict(
    frames=25,
    image_size=224,
    num_clusters=64,
    num_classes=51,
    width=1.0,
    videos_per_update=_STAGE2["videos_per_update"],
    videos_per_micro_batch=_STAGE2["videos_per_micro_batch"],
)
_SMOKE = dict(
    frames=2, image_size=32, num_clusters=4, num_classes=3, width=0.25, videos_per_update=4, videos_per_micro_batch=4
)
# gpu: the paper's shapes; the estimates (seconds, tracing and XLA compilation included) are
# guesses for one H100-class GPU, not measurements: the first GPU run should replace them.
# smoke: tiny shapes, measured on 2 AVX2 EPYC cores under load.
SIZES = {
    "gpu": dict(
        update=dict(_PAPER, matmul_size=8192, repeats=3),
        tvl1=dict(height=256, width=340, pairs_per_core=2, batch=64, repeats=2),
        mirrored=dict(_PAPER, updates=4),
        estimates_s=dict(update=100, tvl1=90, mirrored=120, demo_chain=150),
    ),
    "smoke": dict(
        update=dict(_SMOKE, matmul_size=256, repeats=1),
        tvl1=dict(height=40, width=48, pairs_per_core=1, batch=2, repeats=1),
        mirrored=dict(_SMOKE, updates=2),
        estimates_s=dict(update=20, tvl1=40, mirrored=10, demo_chain=150),
    ),
}


@dataclasses.dataclass
class Row:
    """One line of the check: `figure` is what was measured, `ratio` what it is compared with;
    `status` ran, smoke (ran at smoke size), skipped, cut (stopped at the deadline) or failed."""

    name: str
    what: str
    device: str = ""
    figure: str = ""
    ratio: str = ""
    status: str = "ran"
    note: str = ""
    seconds: float = 0.0
    data: dict = dataclasses.field(default_factory=dict)


def prepare_devices(cpu_replicas=2):
    """Before TensorFlow starts its devices: GPU memory grows as used (the demo chain's steps are
    other processes on the same GPU), and where fewer than two GPUs are visible the CPU is split
    into `cpu_replicas` logical devices for the mirrored row's rehearsal. Returns the logical CPU
    devices' count (1 where TensorFlow had started already)."""
    gpus = tf.config.list_physical_devices("GPU")
    try:
        for gpu in gpus:
            tf.config.experimental.set_memory_growth(gpu, True)
        if len(gpus) < 2:
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_replicas)
    except RuntimeError:  # TensorFlow's devices are fixed already (e.g. inside a test process)
        pass
    return len(tf.config.list_logical_devices("CPU"))


def visible_gpus():
    """Names of the logical GPU devices (starts TensorFlow's devices: after `prepare_devices`)."""
    return [device.name for device in tf.config.list_logical_devices("GPU")]


def _percent(rate, peak):
    return f"{100 * rate / peak:.0f} %" if rate and peak else "n/a"


def bfloat16_plan(gpu, smoke):
    """(run, reason) of the bfloat16 rows: on a GPU where it has bfloat16 tensor cores (`hardware.
    choose_precision`); on a CPU where it is native, or emulated at smoke size only."""
    if gpu:
        policy, reason = hardware.choose_precision("auto")
        return policy == "mixed_bfloat16", reason
    native, reason = hardware.native_bfloat16_cpu()
    if native:
        return True, reason
    return smoke, f"{reason}; {'timed at smoke size only' if smoke else 'skipped at full size'}"


def theoretical_peak(gpu_name, dtype):
    """(FLOP/s or None, unit) of one device in `dtype`: a GPU's data-sheet peak (TF32 tensor cores
    for float32 where TensorFlow enables them), else the CPU's cores × clock × vector width."""
    if gpu_name:
        kind = dtype
        if dtype == "float32" and tf.config.experimental.tensor_float_32_execution_enabled():
            kind = "tf32" if machine.gpu_peak_flops(gpu_name, "tf32") else "float32"
        return machine.gpu_peak_flops(gpu_name, kind), kind
    return machine.describe_machine().get(f"theoretical_peak_{dtype}_flops"), dtype


def update_rows(size, gpu_name, smoke, device):
    """The stage-2 update (cached and from frames) in float32 and bfloat16 against the peaks."""
    shape = trainer.update_shape(size["videos_per_update"], size["videos_per_micro_batch"])
    model_shape = {k: size[k] for k in ("frames", "image_size", "num_clusters", "num_classes", "width")}
    described = (
        f"T = {size['frames']}, {size['image_size']}², K = {size['num_clusters']}, "
        f"{size['num_classes']} classes, {shape.describe()}"
    )
    trainer_update = f"update ({shape.iter_size}×{shape.videos_per_micro_batch} videos, clip 5)"
    rows = []
    for dtype, policy in (("float32", "float32"), ("bfloat16", "mixed_bfloat16")):
        run, reason = bfloat16_plan(bool(gpu_name), smoke) if dtype == "bfloat16" else (True, "")
        if not run:
            rows.append(Row(f"update_{dtype}", f"stage-2 update, {dtype}", device, status="skipped", note=reason))
            continue
        result = updates.bench_updates(
            **model_shape,
            videos=shape.videos_per_update,
            micro_batch=shape.videos_per_micro_batch,
            repeats=size["repeats"],
            variants=(trainer_update, "stage-2 update without"),
            policy=policy,
            matmul_size=size["matmul_size"],
        )
        peak, unit = theoretical_peak(gpu_name, dtype)
        for variant, figures in result["variants"].items():
            source = "feature cache" if variant == trainer_update else "frames"
            rate = figures["gflops"] * 1e9
            rows.append(
                Row(
                    f"update_{dtype}_{'cache' if source == 'feature cache' else 'frames'}",
                    f"stage-2 update from the {source}, {dtype}: {described}",
                    device,
                    f"{figures['median_s'] * 1e3:.0f} ms, {figures['gflops']:.0f} GFLOP/s",
                    f"{_percent(rate, result['matmul_flops'])} of its GEMM, {_percent(rate, peak)} of the {unit} peak",
                    note=reason,
                    data=dict(
                        figures,
                        matmul_flops=result["matmul_flops"],
                        peak_flops=peak,
                        peak_unit=unit,
                        shape=result["shape"],
                    ),
                )
            )
    return rows


def tvl1_row(size, gpu_name, device):
    """`tvl1_tf` (XLA) on the device against OpenCV's TV-L1 in one process per CPU core."""
    cores = os.cpu_count() or 1
    pairs = size["pairs_per_core"] * cores
    first, second = flow.smooth_pairs(size["height"], size["width"], pairs)
    opencv = max(flow.opencv_pairs_per_second(first, second, cores) for _ in range(size["repeats"]))
    rates, _ = flow.tvl1_tf_rates(
        first, second, {"tvl1_tf": ("/GPU:0" if gpu_name else "/CPU:0", True, size["batch"])}, repeats=size["repeats"]
    )
    rate = rates["tvl1_tf"]
    return [
        Row(
            "tvl1",
            f"TV-L1 flow, {size['width']}×{size['height']}, tvl1_tf XLA {size['batch']} pairs per call "
            f"against OpenCV on {cores} CPU cores ({pairs} pairs)",
            f"{device}; OpenCV on the CPU",
            f"{rate:.1f} pairs/s (OpenCV {opencv:.1f})",
            f"{rate / opencv:.2f}× OpenCV on all cores",
            data=dict(tvl1_tf_pairs_per_s=rate, opencv_pairs_per_s=opencv, cores=cores, pairs=pairs),
        )
    ]


def mirrored_update(devices, size, workdir, seed=0):
    """(UpdateShape, weight change of the first update [per variable], median seconds per update
    after the first) of the release's stage-2 update from frames, mirrored over `devices`."""
    strategy = trainer.make_strategy(devices)
    shape = trainer.update_shape(
        size["videos_per_update"], size["videos_per_micro_batch"], strategy.num_replicas_in_sync
    )
    with strategy.scope():
        model = _model(
            2,
            num_classes=size["num_classes"],
            frames_per_video=size["frames"],
            image_size=size["image_size"],
            num_clusters=size["num_clusters"],
            policy="float32",
            seed=seed,
            width=size["width"],
        )
    rng = np.random.default_rng(seed)
    videos = rng.uniform(
        -100, 100, (shape.videos_per_update, size["frames"], size["image_size"], size["image_size"], 3)
    ).astype(np.float32)
    labels = rng.integers(0, size["num_classes"], shape.videos_per_update)
    dataset = tf.data.Dataset.from_tensor_slices((videos, labels)).batch(shape.videos_per_micro_batch).repeat()
    # SGD, as tests/test_trainer.py's 1- vs 2-replica test: Adam's first step, ≈ lr·sign(g), would
    # turn rounding differences of near-zero gradients into full-size ones.
    config = trainer.TrainConfig(
        train_dir=os.path.join(workdir, f"mirrored_{len(devices)}"),
        max_number_of_steps=size["updates"],
        iter_size=shape.iter_size,
        optimizer="sgd",
        learning_rate=1e-3,
        clip_gradients=_STAGE2["clip_gradients"],
        save_every_n_steps=10**6,
        checkpoint_iterator=False,
        final_model_path="",
        progress=False,
    )
    before = [w.numpy().copy() for w in model.trainable_weights]
    first = []

    def keep_first(step, metrics):
        del metrics
        if step == 1:
            first.extend(w.numpy() - b for w, b in zip(model.trainable_weights, before))

    result = trainer.train(model, dataset, config, strategy=strategy, stage=2, on_update=keep_first)
    return shape, first, result.seconds_per_step


def mirrored_row(devices, size, workdir, device, tolerance):
    """Item 1's check: the update on `devices[:1]` and mirrored over `devices`, the same videos."""
    one_shape, one, one_s = mirrored_update(devices[:1], size, workdir)
    all_shape, every, all_s = mirrored_update(devices, size, workdir)
    difference = max(float(np.abs(a - b).max()) for a, b in zip(one, every))
    relative = difference / max(float(np.abs(a).max()) for a in one)
    same = relative < tolerance
    return Row(
        f"mirrored_{len(devices)}",
        f"stage-2 update from frames, T = {size['frames']}, {size['image_size']}², "
        f"K = {size['num_clusters']}: {all_shape.describe()}; against {one_shape.describe()}",
        device,
        f"{one_s:.2f} s / update on 1, {all_s:.2f} s on {len(devices)}",
        f"max |Δw| {difference:.1e} ({relative:.1e} of the update; "
        f"{'same update' if same else 'NOT THE SAME UPDATE'}), speed-up {one_s / all_s:.2f}×",
        note=f"tolerance {tolerance:g} relative",
        data=dict(
            devices=list(devices),
            per_replica_batch=all_shape.per_replica_batch,
            iter_size=all_shape.iter_size,
            videos_per_update=all_shape.videos_per_update,
            videos_per_micro_batch=all_shape.videos_per_micro_batch,
            max_abs_dw=difference,
            relative_dw=relative,
            same_update=same,
            seconds_per_update_1=one_s,
            seconds_per_update_n=all_s,
        ),
    )


def mirrored_rows(size, smoke_size, gpus, workdir, gpu_name, cpu_name):
    """Over every GPU where there are two or more (TF32 rounding: tolerance 1e-2); otherwise the
    update through `train` on the one GPU, if any, and the check on two logical CPU devices at
    smoke size (float32: tolerance 1e-4), saying why."""
    if len(gpus) >= 2:
        return [mirrored_row(gpus, size, workdir, f"{len(gpus)} × {gpu_name}", 1e-2)]
    rows = []
    if gpus:
        shape, _, seconds = mirrored_update(gpus, size, workdir)
        rows.append(
            Row(
                "mirrored_1",
                f"stage-2 update from frames through train(), T = {size['frames']}, "
                f"{size['image_size']}², K = {size['num_clusters']}: {shape.describe()}",
                gpu_name,
                f"{seconds:.2f} s / update",
                "no second GPU to compare with",
                note="1 GPU visible: MirroredStrategy over 1 GPU is the 1-device update; item 1's check "
                "ran on 2 logical CPU devices at smoke size (next row)",
                data=dict(devices=list(gpus), seconds_per_update_1=seconds),
            )
        )
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    if len(cpus) < 2:
        rows.append(
            Row(
                "mirrored_cpus",
                "MirroredStrategy over 2 logical CPU devices",
                cpu_name,
                status="skipped",
                note="the CPU was not split (TensorFlow started before prepare_devices): run the check in a "
                "fresh process",
            )
        )
        return rows
    row = mirrored_row(cpus[:2], smoke_size, workdir, f"2 logical devices of {cpu_name}", 1e-4)
    row.status = "smoke"
    row.note += "; the 2 logical devices share the CPU's cores, so the speed-up says nothing"
    return rows + [row]


def chain_row(chain, deadline, device):
    """Times `chain(deadline)` → {what, steps: {name: seconds}, finished, top1, note}."""
    start = time.monotonic()
    result = chain(deadline)
    seconds = time.monotonic() - start
    top1 = result.get("top1")
    return [
        Row(
            "demo_chain",
            result["what"],
            device,
            f"{seconds:.0f} s, {len(result['steps'])} steps",
            f"top-1 {top1:.1f} %" if top1 is not None else "",
            "ran" if result["finished"] else "cut",
            result.get("note", ""),
            data=result,
        )
    ]


def steps_up_to(steps, target):
    """The steps `target` needs (itself and its dependencies, transitively), in their order, with
    `after` (ordering only) kept to the steps chosen (`actionvlad_tf.workflow.Step`)."""
    by_name = {step.name: step for step in steps}
    needed, todo = set(), [target]
    while todo:
        name = todo.pop()
        if name not in needed:
            needed.add(name)
            todo.extend(by_name[name].deps)
    return [
        dataclasses.replace(step, after=tuple(a for a in step.after if a in needed))
        for step in steps
        if step.name in needed
    ]


class StopAt:
    """A `Workflow` execute function that stops a step's process group at `deadline`
    (time.monotonic) and answers TIMED_OUT; the steps it stopped are in `timed_out`."""

    def __init__(self, deadline, cwd=None):
        self.deadline, self.cwd, self.timed_out = deadline, cwd, []

    def __call__(self, step, command, log_path, env):
        with open(log_path, "w", encoding="utf-8", errors="replace") as log:
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.cwd, start_new_session=True
            )
            try:
                return process.wait(timeout=max(0.0, self.deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                self.timed_out.append(step.name)
                return TIMED_OUT


def demo_chain(config, out, target="rgb_netvlad_eval"):
    """The chain row's callable: the demo's steps (`actionvlad_tf.demo.build_steps` of `config`, its
    CONFIG_KEYS and "jobs") up to `target` under `out`, run as `run_demo` runs them, stopped at the deadline."""

    def run(deadline):
        runs = os.path.join(out, "runs")
        os.makedirs(runs, exist_ok=True)
        backbones, width, image_size, _ = demo.resolve_backbones(config, runs)
        steps = demo.build_steps(config, out, backbones, width, image_size, config["mixed_precision"])
        chain = steps_up_to(steps, target)
        stop = StopAt(deadline, cwd=out)
        workflow = demo.make_workflow(chain, out, config["jobs"], execute=stop)
        note = ""
        try:
            workflow.run()
        except StepFailed:
            if not stop.timed_out:
                raise
            note = f"stopped at the budget's end in {', '.join(stop.timed_out)}"
        seconds = {name: s for name, s in workflow.recorded_seconds().items() if s is not None}
        top1 = None
        if not stop.timed_out:
            results_dir = next(step for step in chain if step.name == target).flags["results_dir"]
            with open(os.path.join(results_dir, "results.json"), encoding="utf-8") as f:
                top1 = json.load(f)["top1"]
        return dict(
            what=f"the demo's RGB chain ({', '.join(s.name for s in chain)}): {config['num_classes']} classes, "
            f"{config['train_per_class']} training videos each, T = {config['frames_per_video']}, "
            f"{image_size}², K = {config['num_clusters']}, stage 1 {config['stage1_steps']} and stage 2 "
            f"{config['stage2_steps']} updates, precision {config['mixed_precision']}, "
            f"backbone {config['backbone_weights']}",
            steps=seconds,
            finished=not stop.timed_out,
            top1=top1,
            note=note,
        )

    return run


def run_gpu_check(rows=ROWS, smoke=None, budget_s=BUDGET_S, chain=None, workdir=None, clock=time.monotonic):
    """Runs the selected `rows` (of ROWS, in ROWS order) within `budget_s` seconds; returns the
    results dict (JSON-ready; `format_check` prints it).

    Args:
        smoke: tiny shapes on the CPU; None: where no GPU is visible.
        chain: callable(deadline) for the demo_chain row (`demo_chain`, `chain_row`); None skips it.
        workdir: where the mirrored row's train_dirs go (default: a temporary folder).
    """
    unknown = set(rows) - set(ROWS)
    if unknown:
        raise ValueError(f"unknown rows {sorted(unknown)}; choose from {ROWS}")
    start = clock()
    deadline = start + budget_s
    gpus = visible_gpus()
    smoke = not gpus if smoke is None else smoke
    sizes = SIZES["smoke" if smoke else "gpu"]
    described = machine.describe_machine()
    gpu_name = (hardware.gpu_names() or [None])[0] if gpus else None
    cpu_name = f"{described['cpu_model']} ({described['cpu_cores']} cores)"
    device = gpu_name or cpu_name
    results = {
        "mode": "smoke" if smoke else "gpu",
        "budget_s": budget_s,
        "tensorflow": tf.__version__,
        "machine": described,
        "gpus": gpus,
        "rows": [],
    }
    with tempfile.TemporaryDirectory(dir=workdir, prefix="actionvlad_gpu_check_") as scratch:
        plan = {
            "update": lambda: update_rows(sizes["update"], gpu_name, smoke, device),
            "tvl1": lambda: tvl1_row(sizes["tvl1"], gpu_name, device),
            "mirrored": lambda: mirrored_rows(
                sizes["mirrored"], SIZES["smoke"]["mirrored"], gpus, scratch, gpu_name, cpu_name
            ),
            "demo_chain": lambda: chain_row(chain, deadline, device),
        }
        for name in ROWS:
            estimate, left = sizes["estimates_s"][name], deadline - clock()
            if name not in rows or (name == "demo_chain" and chain is None):
                made = [Row(name, "", device, status="skipped", note="not asked for")]
            elif left < estimate:
                made = [
                    Row(
                        name,
                        "",
                        device,
                        status="skipped",
                        note=f"out of time: {max(left, 0):.0f} s of the {budget_s:.0f} s budget left, "
                        f"the row needs ≈ {estimate} s",
                    )
                ]
            else:
                began = clock()
                try:
                    made = plan[name]()
                except Exception as error:  # pylint: disable=broad-except  (reported; the other rows run)
                    made = [Row(name, "", device, status="failed", note=f"{type(error).__name__}: {error}"[:300])]
                for row in made:
                    row.seconds = clock() - began
                    if smoke and row.status == "ran":
                        row.status = "smoke"
            results["rows"] += [dataclasses.asdict(row) for row in made]
    results["wall_s"] = clock() - start
    return results


def format_check(results):
    """The printed table: the machine, one line per row, then what was skipped or shrunk."""
    described = results["machine"]
    out = [
        f"GPU check ({results['mode']} size), TensorFlow {results['tensorflow']}; machine: "
        f"{machine.machine_line(described)}; {results['wall_s']:.0f} s of the {results['budget_s']:.0f} s budget"
    ]
    out += text_table(
        ["row", "figure", "against", "device", "status", "s"],
        [
            [r["name"], r["figure"], r["ratio"], r["device"], r["status"], f"{r['seconds']:.0f}"]
            for r in results["rows"]
        ],
        left=5,
    )
    out += [""] + [
        f"{r['name']}: {r['what']}" + (f" [{r['note']}]" if r["note"] else "")
        for r in results["rows"]
        if r["what"] or r["note"]
    ]
    skipped = [f"{r['name']} ({r['note']})" for r in results["rows"] if r["status"] in ("skipped", "cut", "failed")]
    shrunk = [r["name"] for r in results["rows"] if r["status"] == "smoke"]
    out.append("")
    out.append("skipped, cut or failed: " + ("; ".join(skipped) if skipped else "none"))
    if shrunk:
        out.append(f"at smoke size ({'no GPU' if not results['gpus'] else 'asked for'}): {', '.join(shrunk)}")
    return "\n".join(out)
