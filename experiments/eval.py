r"""Evaluates a trained model on a test list (release `eval_image_classifier.py` with `--store_feat
stream0/logits`, §2.2, §6): T = 25 frames, 1 or 5 crops in one bag, videos in list order.

  python experiments/eval.py --flagfile=experiments/configs/hmdb51_rgb_split1_eval.flags

Writes the logits `.h5` (dataset `stream0/logits`, rows in list order) and, in --results_dir,
`results.json` (top-1, top-5, mean class and per-class accuracy), `confusion.npy` and `.png`; for
Charades (`--dataset_name=charades`) the whole-video mAP and wAP of the official script instead.
"""
import os

import numpy as np
import tensorflow as tf
from absl import app, flags
from tqdm.auto import tqdm

import common_flags
from actionvlad_tf.atomic import ensure_writable_dir, write_json
from actionvlad_tf.data.lists import read_class_names, read_list
from actionvlad_tf.data.video_input import make_video_dataset
from actionvlad_tf.evaluation import charades_evaluate, charades_video_id, evaluate_logits, write_logits
from actionvlad_tf.training import experiment, load_model_weights
from actionvlad_tf.viz.report import write_results

flags.DEFINE_string("checkpoint_path", None, "A train_dir (its latest checkpoint), a checkpoint or a .keras file.")
flags.DEFINE_string("split_name", "test", "Evaluate {split_name}_split{N}.txt.")
flags.DEFINE_string("logits_file", None, "Output .h5 of the logits (default: <results_dir>/logits.h5).")
flags.DEFINE_string("results_dir", None, "Output folder of results.json and the confusion matrix.")
flags.DEFINE_string("charades_csv", None, "Charades_v1_test.csv (default: in --dataset_list_dir).")
FLAGS = flags.FLAGS


def predict_in_list_order(model, dataset, num_videos):
    """Logits [N, C] of a one-pass evaluation dataset with metadata, checked to be in list order."""
    predict = tf.function(lambda videos: model(videos, training=False), reduce_retracing=True)
    logits, order = [], []
    with tqdm(total=num_videos, unit="video", desc="eval") as bar:
        for videos, _, metadata in dataset:
            logits.append(np.asarray(predict(videos), np.float32))
            order.append(metadata["index"].numpy())
            bar.update(len(order[-1]))
    order = np.concatenate(order) if order else np.zeros(0, np.int64)
    if not np.array_equal(order, np.arange(num_videos)):
        raise RuntimeError(f"the evaluation yielded {order.size} videos out of list order; expected "
                           f"the {num_videos} videos of the list in order")
    return np.concatenate(logits)


def main(argv):
    del argv
    # The outputs are written after the whole evaluation: check them first.
    ensure_writable_dir(FLAGS.results_dir, "--results_dir")
    if FLAGS.logits_file:
        ensure_writable_dir(os.path.dirname(os.path.abspath(FLAGS.logits_file)), "--logits_file's folder")
    experiment.set_determinism(FLAGS.seed, FLAGS.deterministic)
    experiment.set_precision(FLAGS.mixed_precision)
    num_classes = experiment.num_classes_of(FLAGS.dataset_name, FLAGS.num_classes)
    list_file = experiment.split_list_file(FLAGS.dataset_list_dir, FLAGS.split_name, FLAGS.split_id)
    charades = FLAGS.dataset_name == "charades"
    entries = read_list(list_file, None if charades else num_classes)
    dataset = make_video_dataset(
        entries, FLAGS.dataset_dir, FLAGS.flow_dir, FLAGS.modality, FLAGS.frames_per_video, training=False,
        batch_size=FLAGS.batch_size, num_crops=FLAGS.num_crops, image_size=FLAGS.image_size,
        resize_shape=common_flags.resize_shape(), return_metadata=True)
    # The eval graph has no weight decay (release §1.6) and fixed T · crops per bag.
    model = experiment.build_model(
        num_classes, FLAGS.modality, FLAGS.pooling, FLAGS.conv_endpoint, FLAGS.fusion, FLAGS.frames_per_video,
        FLAGS.num_crops, FLAGS.image_size, FLAGS.num_clusters, FLAGS.netvlad_alpha, FLAGS.pooled_dropout,
        0.0, FLAGS.model_name, None, FLAGS.dropout, backbone_width=FLAGS.backbone_width)
    print(f"weights: {load_model_weights(model, FLAGS.checkpoint_path)}")
    logits = predict_in_list_order(model, dataset, len(entries))
    logits_file = FLAGS.logits_file or os.path.join(FLAGS.results_dir, "logits.h5")
    write_logits(logits_file, logits)
    print(f"logits {logits.shape} → {logits_file}")
    if charades:
        csv = FLAGS.charades_csv or os.path.join(FLAGS.dataset_list_dir, "Charades_v1_test.csv")
        results = charades_evaluate(logits, [charades_video_id(e.path) for e in entries], csv)
        write_json(os.path.join(FLAGS.results_dir, "results.json"), results)
        print(f"mAP {results['mAP']:.2f}  wAP {results['wAP']:.2f}")
        return
    names_file = experiment.class_names_file(FLAGS.dataset_list_dir)
    class_names = read_class_names(names_file) if names_file else None
    results = evaluate_logits(logits, np.array([e.label for e in entries]), class_names)
    write_results(results, FLAGS.results_dir)
    print(f"top-1 {results['top1']:.2f}  top-5 {results['top5']:.2f}  "
          f"mean class {results['mean_class_accuracy']:.2f}  ({len(entries)} videos) → {FLAGS.results_dir}")


if __name__ == "__main__":
    flags.mark_flags_as_required(["checkpoint_path", "dataset_list_dir", "results_dir"])
    app.run(main)
