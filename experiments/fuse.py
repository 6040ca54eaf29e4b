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

import numpy as np
from absl import app, flags

from actionvlad_tf.data.lists import read_list
from actionvlad_tf.evaluation import fusion, logits_io, metrics

flags.DEFINE_string("rgb", None, "RGB logits .h5 (dataset --dataset), rows in --list_file order.")
flags.DEFINE_string("flow", None, "Flow logits .h5, rows in --list_file order.")
flags.DEFINE_string("list_file", None, "Test list `video nframes label`; labels are its last column.")
flags.DEFINE_string("dataset", logits_io.LOGITS_DATASET, "Dataset name inside the logits .h5 files.")
flags.DEFINE_float("flow_weight", fusion.FLOW_WEIGHT, "w in (1-w)*rgb + w*flow (release 0.667).")
flags.DEFINE_enum("normalize", "none", list(fusion.NORMALIZATIONS),
                  "Per-stream normalisation before fusing: none = raw logits (release), softmax (paper).")
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


def _load_split(list_file, rgb_path, flow_path, dataset):
    """Labels of a list and its RGB / flow logits, row counts checked against the list."""
    labels = np.array([entry.label for entry in read_list(list_file)], dtype=np.int64)
    rgb, flow = (logits_io.read_logits(path, expected_rows=labels.size, list_file=list_file, dataset=dataset)
                 for path in (rgb_path, flow_path))
    return labels, rgb, flow


def _figures(prefix, scores, labels):
    figures = metrics.evaluate_logits(scores, labels)
    return {f"{prefix}_top1": figures["top1"], f"{prefix}_top5": figures["top5"],
            f"{prefix}_mean_class": figures["mean_class_accuracy"]}


def run_fusion(list_file, rgb_path, flow_path, flow_weight=fusion.FLOW_WEIGHT, normalize="none",
               dataset=logits_io.LOGITS_DATASET, idt_path=None, idt_dataset=logits_io.IDT_DATASET,
               idt_weight=fusion.IDT_WEIGHT, search=None, search_step=0.01, output=None):
    """Fuses one list's logits; returns the figures as a flat dict (accuracies in percent).

    `search` is an optional (list_file, rgb_path, flow_path) validation triple: the flow weight is then
    the grid weight with the best validation top-1, and `flow_weight` is ignored.
    """
    searched = {}
    if search is not None:
        val_labels, val_rgb, val_flow = _load_split(*search, dataset)
        grid = np.round(np.arange(0.0, 1.0 + search_step / 2, search_step), 6)
        flow_weight, _, accuracies = fusion.search_flow_weight(val_rgb, val_flow, val_labels, grid, normalize)
        searched["search_best_top1"] = float(accuracies.max())
    labels, rgb, flow = _load_split(list_file, rgb_path, flow_path, dataset)
    fused = fusion.late_fusion(rgb, flow, flow_weight, normalize)
    result = {"num_videos": int(labels.size), "normalize": normalize, "flow_weight": float(flow_weight),
              **searched}
    result.update(_figures("rgb", rgb, labels))
    result.update(_figures("flow", flow, labels))
    result.update(_figures("fused", fused, labels))
    if idt_path is not None:
        idt = logits_io.read_logits(idt_path, labels.size, list_file, idt_dataset)
        fused = fusion.fuse_idt(fused, idt, idt_weight)
        result["idt_weight"] = float(idt_weight)
        result.update(_figures("idt", idt, labels))
        result.update(_figures("fused_idt", fused, labels))
    if output is not None:
        logits_io.write_logits(output, fused, dataset)
    return result


def main(argv):
    del argv
    for name in ("rgb", "flow", "list_file"):
        if not FLAGS[name].value:
            raise app.UsageError(f"--{name} is required")
    search_paths = (FLAGS.search_list, FLAGS.search_rgb, FLAGS.search_flow)
    if any(search_paths) and not all(search_paths):
        raise app.UsageError("--search_list, --search_rgb and --search_flow go together")
    result = run_fusion(
        FLAGS.list_file, FLAGS.rgb, FLAGS.flow, FLAGS.flow_weight, FLAGS.normalize, FLAGS.dataset,
        FLAGS.idt, FLAGS.idt_dataset, FLAGS.idt_weight, search_paths if all(search_paths) else None,
        FLAGS.search_step, FLAGS.output)
    if FLAGS.json:
        print(json.dumps(result))
        return
    print(f"{result['num_videos']} videos, flow weight {result['flow_weight']:.3f}, normalize={FLAGS.normalize}")
    print(f"{'scores':<10}{'top-1':>8}{'top-5':>8}{'mean class':>12}")
    for prefix in ("rgb", "flow", "fused", "idt", "fused_idt"):
        if f"{prefix}_top1" in result:
            print(f"{prefix:<10}{result[prefix + '_top1']:>8.2f}{result[prefix + '_top5']:>8.2f}"
                  f"{result[prefix + '_mean_class']:>12.2f}")


if __name__ == "__main__":
    app.run(main)
