r"""Difference of two confusion matrices with class names (paper appendix Fig. 9).

  python experiments/viz_confusion_diff.py --a=results/rgb_split1.h5,results/flow_split1.h5 \
      --b=results/rgb_split1.h5 --list_file=lists/test_split1.txt --class_names=lists/actions.txt \
      --output=figures/confusion_diff.png --title="RGB+flow minus RGB"

Each side is one logits .h5 (release layout, rows in list order) or two (RGB, flow) late-fused with
`--flow_weight` on raw logits (§6.3). Red = the fraction of a true class grew from b to a.
"""

import numpy as np
from absl import app, flags

from actionvlad_tf.data.lists import read_class_names, read_list
from actionvlad_tf.evaluation import fusion, logits_io, metrics
from actionvlad_tf.viz.confusion import plot_confusion_difference

flags.DEFINE_list("a", None, "Logits .h5 of the first model (one file, or rgb,flow to late-fuse).")
flags.DEFINE_list("b", None, "Logits .h5 of the second model, subtracted (one file, or rgb,flow).")
flags.DEFINE_string("list_file", None, "Test list whose last column gives the labels.")
flags.DEFINE_string("class_names", None, "Class names in label order.")
flags.DEFINE_string("dataset", logits_io.LOGITS_DATASET, "Dataset inside the .h5 files.")
flags.DEFINE_float("flow_weight", fusion.FLOW_WEIGHT, "w in (1-w)*rgb + w*flow for a two-file side.")
flags.DEFINE_string("output", None, "The PNG to write.")
flags.DEFINE_string("title", None, "Figure title.")
flags.mark_flags_as_required(["a", "b", "list_file", "class_names", "output"])
FLAGS = flags.FLAGS


def side_confusion(paths, labels, num_classes):
    """Confusion matrix of one side: a logits file, or RGB and flow files late-fused."""
    if len(paths) not in (1, 2):
        raise app.UsageError(f"a side is one .h5 or two (rgb,flow), got {paths}")
    logits = [logits_io.read_logits(p, labels.size, FLAGS.list_file, FLAGS.dataset) for p in paths]
    scores = logits[0] if len(logits) == 1 else fusion.late_fusion(logits[0], logits[1], FLAGS.flow_weight)
    return metrics.confusion_matrix(labels, np.argmax(scores, axis=1), num_classes)


def main(argv):
    del argv
    labels = np.array([entry.label for entry in read_list(FLAGS.list_file)], np.int64)
    names = read_class_names(FLAGS.class_names)
    a, b = (side_confusion(paths, labels, len(names)) for paths in (FLAGS.a, FLAGS.b))
    plot_confusion_difference(a, b, names, FLAGS.output, FLAGS.title)
    gain = np.nan_to_num(metrics.per_class_accuracy(a) - metrics.per_class_accuracy(b))  # points
    order = np.argsort(-gain, kind="stable")
    print(
        f"{FLAGS.output}: top-1 {np.trace(a) / a.sum():.2%} vs {np.trace(b) / b.sum():.2%}; largest gains "
        + ", ".join(f"{names[i]} {gain[i]:+.1f} pt" for i in order[:3])
        + "; largest losses "
        + ", ".join(f"{names[i]} {gain[i]:+.1f} pt" for i in order[::-1][:3])
    )


if __name__ == "__main__":
    app.run(main)
