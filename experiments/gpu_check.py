r"""The GPU check: one prepared run that says how this project uses a GPU machine, in under 8 minutes.

  python experiments/gpu_check.py --json=gpu_check.json

Rows (docs/performance.md "The GPU check"; `actionvlad_tf.benchmark.gpu_check`): the stage-2 update
at the paper's shape in float32 and bfloat16 against the GPU's peak; `tvl1_tf` on the GPU against
OpenCV's TV-L1 on every CPU core; the release's update mirrored over every visible GPU against one
(update shape, max |Δw|, seconds per update); the demo's first RGB chain (dataset, frames, lists,
k-means, ActionVLAD stages 1 and 2, evaluation: `experiments/demo.py`'s steps up to `rgb_netvlad_eval`,
with its flags, which this command accepts too). Rows that would overrun `--budget_s` are skipped and
named; the chain is stopped at the budget's end.

Without a GPU the same rows run at smoke size on the CPU (about 2 minutes on 2 cores), the mirrored
row over two logical CPU devices, and the table says so.
"""

import json
import os
import tempfile

import demo as demo_flags  # noqa: F401  (the demo's flags: the chain runs as experiments/demo.py would)
from absl import app, flags, logging

from actionvlad_tf import demo
from actionvlad_tf.atomic import atomic_output
from actionvlad_tf.benchmark import gpu_check

flags.DEFINE_string("json", None, "Also write the results (every row's figures and the machine) to this JSON file.")
flags.DEFINE_float(
    "budget_s",
    gpu_check.BUDGET_S,
    "Seconds the whole check may take; rows that would overrun are "
    "skipped and named, the demo chain is stopped at the end.",
)
flags.DEFINE_list("rows", list(gpu_check.ROWS), f"Rows to run, of {', '.join(gpu_check.ROWS)}.")
flags.DEFINE_bool("smoke", None, "Tiny shapes on the CPU (default: where no GPU is visible).")
flags.DEFINE_string(
    "workdir",
    None,
    "Folder for the chain's data and runs and the mirrored row's train_dirs (default: a temporary one, deleted after).",
)
FLAGS = flags.FLAGS

# The demo's toy size (tests/test_demo.py): flags the command line did not set take these in smoke mode.
SMOKE_DEMO = dict(
    num_classes=3,
    train_per_class=3,
    val_per_class=1,
    test_per_class=1,
    frames_per_video=3,
    num_clusters=2,
    stage1_steps=2,
    stage2_steps=2,
    batch_size=2,
)


def main(argv):
    del argv
    logging.set_verbosity(logging.ERROR)  # the strategies' and tracing's INFO / WARNING lines would bury the table
    gpu_check.prepare_devices()  # before TensorFlow starts its devices
    if FLAGS.workdir:
        os.makedirs(FLAGS.workdir, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=FLAGS.workdir, prefix="gpu_check_") as out:
        config = dict({name: FLAGS[name].value for name in demo.CONFIG_KEYS}, jobs=FLAGS.jobs)
        smoke = FLAGS.smoke if FLAGS.smoke is not None else not gpu_check.visible_gpus()
        if smoke:
            config.update({name: value for name, value in SMOKE_DEMO.items() if not FLAGS[name].present})
        results = gpu_check.run_gpu_check(
            FLAGS.rows,
            smoke=smoke,
            budget_s=FLAGS.budget_s,
            chain=gpu_check.demo_chain(config, os.path.join(out, "demo")),
            workdir=out,
        )
    print(gpu_check.format_check(results))
    if FLAGS.json:
        with atomic_output(FLAGS.json) as partial, open(partial, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=1)


if __name__ == "__main__":
    app.run(main)
