r"""The performance table (docs/performance.md): NetVLAD, backbone, input pipeline, end to end.

Reproduce the table of docs/performance.md (about 4–6 minutes on 2 CPU cores):

  python experiments/bench.py --json=bench.json

A smoke run on tiny shapes (seconds): `--quick`. One or more sections: `--sections=netvlad,backbone`
(netvlad, backbone, input_pipeline, end_to_end, and on request flow: `--sections=flow`,
OpenCV's TV-L1 against actionvlad_tf.tvl1, pairs/s and endpoint errors; `--sections=predict_folder`,
predict.py --videos against the model alone on decoded frames, at the demo's and the paper's shapes).
Every figure is a median over `--repeats` after
`--warmup` rounds; figures that are compared are measured side by side in this one run.
"""

import json
import logging

from absl import app, flags

from actionvlad_tf.atomic import atomic_output
from actionvlad_tf.benchmark.run import CLIPS_DIR, DEFAULT_SECTIONS, SECTIONS, run_benchmark
from actionvlad_tf.benchmark.table import format_table

flags.DEFINE_string("json", None, "Also write the results (every sample, the targets) to this JSON file.")
flags.DEFINE_bool("quick", False, "Tiny shapes instead of the paper's (a smoke run).")
flags.DEFINE_list(
    "sections",
    list(DEFAULT_SECTIONS),
    f"Sections to run, of {', '.join(SECTIONS)} (flow: OpenCV's TV-L1 against the TensorFlow one, speed and accuracy).",
)
flags.DEFINE_string("clips_dir", CLIPS_DIR, "Real clips for the flow section's agreement with OpenCV.")
flags.DEFINE_integer("repeats", None, "Timed repeats per figure (default: per section, 3; 2 with --quick).")
flags.DEFINE_integer("warmup", 1, "Untimed rounds before the timed ones (tracing, allocation).")
flags.DEFINE_bool("memory", True, "Measure NetVLAD's peak memory (TensorFlow allocator statistics).")
flags.DEFINE_bool("xla", True, "Add XLA-compiled (jit_compile) backbone rows.")
flags.DEFINE_bool("mixed", True, "Add end-to-end rows under mixed precision (bfloat16 on CPU, float16 on GPU).")
flags.DEFINE_string("workdir", None, "Folder for generated frames, shards and caches (default: a temporary one).")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    logging.getLogger("actionvlad_tf.benchmark").setLevel(logging.INFO)
    results = run_benchmark(
        FLAGS.sections,
        quick=FLAGS.quick,
        repeats=FLAGS.repeats,
        warmup=FLAGS.warmup,
        memory=FLAGS.memory,
        xla=FLAGS.xla,
        mixed=FLAGS.mixed,
        workdir=FLAGS.workdir,
        clips_dir=FLAGS.clips_dir,
    )
    print(format_table(results))
    if FLAGS.json:
        with atomic_output(FLAGS.json) as partial, open(partial, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=1)


if __name__ == "__main__":
    app.run(main)
