r"""Late fusion of RGB and flow test logits (release `combine_streams.py`, §6.3 and §6.4).

Reproduce the release's HMDB51 split-1 figures from its logits (66.73 fused):

  python experiments/fuse.py --rgb=rgb_split1.h5 --flow=flow_split1.h5 \
      --list_file=data/hmdb51/lists/test_split1.txt --flow_weight=0.667 --json

`--normalize=softmax` averages probabilities (the paper's wording) instead of raw logits; `--idt` adds
L2-normalised iDT scores with `--idt_weight`; `--search_list` with `--search_rgb`/`--search_flow`
picks the flow weight on a validation list first. `--json` prints exactly one JSON object (accuracies in
percent); otherwise a small table.
"""

import json

import flagfiles
from absl import app, flags

from actionvlad_tf.evaluation import fusion, logits_io
from actionvlad_tf.evaluation.run import fuse_logit_files

flags.DEFINE_string("rgb", None, "RGB logits .h5 (dataset --dataset), rows in --list_file order.")
flags.DEFINE_string("flow", None, "Flow logits .h5, rows in --list_file order.")
flags.DEFINE_string("list_file", None, "Test list `video nframes label`; labels are its last column.")
flags.DEFINE_string("dataset", logits_io.LOGITS_DATASET, "Dataset name inside the logits .h5 files.")
flags.DEFINE_float("flow_weight", fusion.FLOW_WEIGHT, "w in (1-w)*rgb + w*flow (release 0.667).")
flags.DEFINE_enum(
    "normalize",
    "none",
    list(fusion.NORMALIZATIONS),
    "Per-stream normalisation before fusing: none = raw logits (release), softmax (paper).",
)
flags.DEFINE_string("idt", None, "Optional iDT scores .h5 (dataset --idt_dataset), rows in list order.")
flags.DEFINE_string("idt_dataset", logits_io.IDT_DATASET, "Dataset name inside the iDT .h5 file.")
flags.DEFINE_float("idt_weight", fusion.IDT_WEIGHT, "iDT weight after row-wise L2 normalisation (§6.4).")
flags.DEFINE_string("search_list", None, "Validation list: search the flow weight on it before fusing.")
flags.DEFINE_string("search_rgb", None, "RGB logits .h5 for --search_list.")
flags.DEFINE_string("search_flow", None, "Flow logits .h5 for --search_list.")
flags.DEFINE_float("search_step", 0.01, "Spacing of the flow-weight grid over [0, 1].")
flags.DEFINE_string("output", None, "Optional .h5 to write the final fused scores to (dataset --dataset).")
flags.DEFINE_bool("json", False, "Print one JSON object instead of a table.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    for name in ("rgb", "flow", "list_file"):
        if not FLAGS[name].value:
            raise app.UsageError(f"--{name} is required")
    search_paths = (FLAGS.search_list, FLAGS.search_rgb, FLAGS.search_flow)
    if any(search_paths) and not all(search_paths):
        raise app.UsageError("--search_list, --search_rgb and --search_flow go together")
    result = fuse_logit_files(
        FLAGS.list_file,
        FLAGS.rgb,
        FLAGS.flow,
        FLAGS.flow_weight,
        FLAGS.normalize,
        FLAGS.dataset,
        FLAGS.idt,
        FLAGS.idt_dataset,
        FLAGS.idt_weight,
        search_paths if all(search_paths) else None,
        FLAGS.search_step,
        FLAGS.output,
    )
    if FLAGS.json:
        print(json.dumps(result))
        return
    print(f"{result['num_videos']} videos, flow weight {result['flow_weight']:.3f}, normalize={FLAGS.normalize}")
    print(f"{'scores':<10}{'top-1':>8}{'top-5':>8}{'mean class':>12}")
    for prefix in ("rgb", "flow", "fused", "idt", "fused_idt"):
        if f"{prefix}_top1" in result:
            print(
                f"{prefix:<10}{result[prefix + '_top1']:>8.2f}{result[prefix + '_top5']:>8.2f}"
                f"{result[prefix + '_mean_class']:>12.2f}"
            )


if __name__ == "__main__":
    flagfiles.run(main)
