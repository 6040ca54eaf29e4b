r"""Evaluates a trained model on a test list (release `eval_image_classifier.py` with `--store_feat
stream0/logits`, §2.2, §6): T = 25 frames, 1 or 5 crops in one bag, videos in list order.

  python experiments/eval.py --flagfile=experiments/configs/hmdb51_rgb_split1_eval.flags

Writes the logits `.h5` (dataset `stream0/logits`, rows in list order) and, in --results_dir,
`results.json` (top-1, top-5, mean class and per-class accuracy), `confusion.npy` and `.png`; for
Charades (`--dataset_name=charades`) the whole-video mAP and wAP of the official script instead
(`actionvlad_tf.evaluation.run.evaluate_experiment`). `--packed_files` or `--tfds_name` read the
test videos from packed shards or a TFDS builder instead of frame folders.
"""

import common_flags
import flagfiles
from absl import flags

from actionvlad_tf.evaluation.run import evaluate_experiment
from actionvlad_tf.viz.report import write_results

flags.DEFINE_string("checkpoint_path", None, "A train_dir (its latest checkpoint), a checkpoint or a .keras file.")
flags.DEFINE_string("split_name", "test", "Evaluate {split_name}_split{N}.txt.")
flags.DEFINE_string("logits_file", None, "Output .h5 of the logits (default: <results_dir>/logits.h5).")
flags.DEFINE_string("results_dir", None, "Output folder of results.json and the confusion matrix.")
flags.DEFINE_string("charades_csv", None, "Charades_v1_test.csv (default: in --dataset_list_dir).")
flags.DEFINE_string(
    "feature_cache_dir",
    None,
    "Read the part stage 2 freezes (conv1_1 … pool4 at conv5) from an evaluation feature cache of the "
    "split in this folder, built on first use: models sharing it (avg, max, ActionVLAD stage 1 and 2 over "
    "one backbone) run it once between them. Not for the frame baseline nor rgb+flow.",
)
FLAGS = flags.FLAGS


def main(argv):
    del argv
    dataset, model, inputs = common_flags.specs()
    results = evaluate_experiment(
        dataset,
        model,
        inputs,
        FLAGS.checkpoint_path,
        FLAGS.results_dir,
        FLAGS.logits_file,
        FLAGS.split_name,
        FLAGS.charades_csv,
        FLAGS.seed,
        FLAGS.deterministic,
        FLAGS.mixed_precision,
        FLAGS.feature_cache_dir,
    )
    write_results(results, FLAGS.results_dir)
    print(f"weights: {results['weights']}")
    print(f"logits ({results['num_videos']}, {model.num_classes}) → {results['logits_file']}")
    if "mAP" in results:
        print(f"mAP {results['mAP']:.2f}  wAP {results['wAP']:.2f}")
        return
    print(
        f"top-1 {results['top1']:.2f}  top-5 {results['top5']:.2f}  "
        f"mean class {results['mean_class_accuracy']:.2f}  ({results['num_videos']} videos) → {FLAGS.results_dir}"
    )


if __name__ == "__main__":
    flags.mark_flags_as_required(["checkpoint_path", "results_dir"])
    common_flags.require_videos()
    flagfiles.run(main)
