"""Evaluation of a trained model on a test split, and late fusion of two streams' logits files:
what `experiments/eval.py` and `experiments/fuse.py` call (release §2.2, §6).

`evaluate_experiment`: T frames, 1 or 5 crops in one bag, videos in list order; writes the logits
`.h5` (dataset `stream0/logits`, rows in list order) and returns the figures: top-1, top-5, mean
class and per-class accuracy and the confusion matrix, or for a dataset whose metric is
"charades_map" the whole-video mAP and wAP of the official script (`viz.report.write_results`
writes them to a results folder).
"""

import os

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from actionvlad_tf import runtime
from actionvlad_tf.atomic import ensure_writable_dir
from actionvlad_tf.data import datasets, sources
from actionvlad_tf.data.lists import read_list
from actionvlad_tf.evaluation import fusion, logits_io, metrics
from actionvlad_tf.models import set_training_stage
from actionvlad_tf.models.builder import build_model
from actionvlad_tf.training.feature_cache import build_eval_cache, frames_description
from actionvlad_tf.training.split import split_at_frozen_boundary
from actionvlad_tf.training.trainer import load_model_weights


def predict_in_list_order(model, dataset, num_videos=None):
    """(logits [N, C], labels [N], paths [N]) of a one-pass evaluation dataset with metadata, checked
    to be in list order: positions 0 … N−1 for a list of `num_videos`, else increasing (records
    whose packing left bad videos out)."""
    predict = tf.function(lambda videos: model(videos, training=False), reduce_retracing=True)
    logits, labels, order, paths = [], [], [], []
    with tqdm(total=num_videos, unit="video", desc="eval") as bar:
        for videos, label, metadata in dataset:
            logits.append(np.asarray(predict(videos), np.float32))
            labels.append(label.numpy())
            order.append(metadata["index"].numpy())
            paths += [p.decode() for p in metadata["path"].numpy()]
            bar.update(len(order[-1]))
    order = np.concatenate(order) if order else np.zeros(0, np.int64)
    in_order = (
        np.array_equal(order, np.arange(num_videos))
        if num_videos is not None
        else order.size > 0 and bool(np.all(np.diff(order) > 0))
    )
    if not in_order:
        expected = f"the {num_videos} videos of the list" if num_videos is not None else "increasing positions"
        raise RuntimeError(
            f"the evaluation yielded {order.size} videos out of list order; expected {expected} in order"
        )
    return np.concatenate(logits), np.concatenate(labels), paths


def evaluate_experiment(
    dataset_spec,
    model_spec,
    input_spec,
    checkpoint_path,
    results_dir,
    logits_file=None,
    split_name="test",
    charades_csv=None,
    seed=0,
    deterministic=False,
    mixed_precision="auto",
    feature_cache_dir=None,
):
    """Evaluates the weights at `checkpoint_path` (a train_dir, a checkpoint or a `.keras` file) on
    the `split_name` split; returns the figures (module docstring) with "num_videos", "logits_file"
    and "weights" added. `results_dir`: where the caller writes them (checked writable first), and
    the default folder of the logits.

    `feature_cache_dir`: the frozen part of stage 2 (conv1_1 … pool4 for VGG-16 at conv5) is read
    from an evaluation feature cache of the split there, built on first use (`feature_cache.
    build_eval_cache`), so that the models sharing it (avg, max, ActionVLAD at both stages over one
    backbone) run it once between them; the logits equal the frames' to float rounding."""
    # The outputs are written after the whole evaluation: check them first.
    ensure_writable_dir(results_dir, "--results_dir")
    logits_file = logits_file or os.path.join(results_dir, "logits.h5")
    ensure_writable_dir(os.path.dirname(os.path.abspath(logits_file)), "the logits file's folder")
    runtime.set_determinism(seed, deterministic)
    runtime.set_precision(mixed_precision)
    spec = input_spec.replace(training=False, return_metadata=True)
    dataset, entries = sources.split_dataset(dataset_spec, spec, split_name)
    # The eval graph has no weight decay (release §1.6) and a fixed T · crops per bag.
    model = build_model(model_spec.replace(weight_decay=0.0, num_crops=input_spec.num_crops))
    weights = load_model_weights(model, checkpoint_path)
    if feature_cache_dir:
        model, dataset = _cached_evaluation(model, model_spec, spec, dataset, entries, feature_cache_dir, split_name)
    logits, labels, paths = predict_in_list_order(model, dataset, None if entries is None else len(entries))
    logits_io.write_logits(logits_file, logits)
    common = {"num_videos": int(len(logits)), "logits_file": logits_file, "weights": weights}
    if dataset_spec.metric == "charades_map":
        if charades_csv is None and input_spec.list_dir is None:
            raise ValueError("the Charades metric needs Charades_v1_test.csv (charades_csv or the list folder)")
        csv = charades_csv or os.path.join(input_spec.list_dir, "Charades_v1_test.csv")
        results = metrics.charades_evaluate(logits, [logits_io.charades_video_id(p) for p in paths], csv)
        return {**results, **common}
    results = metrics.evaluate_logits(logits, labels, datasets.class_names(dataset_spec, input_spec.list_dir))
    return {**results, **common}


# What the test input depends on beyond the frames (`frames_description`): in an evaluation cache's key.
EVAL_INPUT_FIELDS = (
    "num_crops",
    "image_size",
    "resize_shape",
    "half_pixel_centers",
    "temporal_jitter",
    "flow_stack",
    "rgb_template",
    "flow_template",
)


def _cached_evaluation(model, model_spec, input_spec, dataset, entries, feature_cache_dir, split_name):
    """(the model after its stage-2 frozen part, the evaluation cache's dataset of that part)."""
    if model_spec.frame_baseline or model_spec.modality == "rgb+flow":
        raise ValueError(
            "the evaluation feature cache holds the frozen part of ActionVLAD's stage 2 of one stream (rgb or flow)"
        )
    if entries is None or input_spec.list_dir is None:
        raise ValueError("the evaluation feature cache is keyed by the list file: give the list folder")
    if input_spec.on_error != "raise":
        raise ValueError("the evaluation feature cache holds every video of the list: use on_error='raise'")
    set_training_stage(model, 2)  # what stage 2 freezes: the same layers in every pooling's model
    split = split_at_frozen_boundary(model)
    cache = build_eval_cache(
        feature_cache_dir,
        split.prefix,
        datasets.split_list_file(input_spec.list_dir, split_name, input_spec.split_id),
        dataset,
        model_spec.modality,
        evaluation={name: getattr(input_spec, name) for name in EVAL_INPUT_FIELDS},
        description=frames_description(input_spec),
    )
    return split.suffix, cache.eval_dataset(input_spec.batch_size)


def _load_split(list_file, rgb_path, flow_path, dataset):
    """Labels of a list and its RGB / flow logits, row counts checked against the list."""
    labels = np.array([entry.label for entry in read_list(list_file)], dtype=np.int64)
    rgb, flow = (
        logits_io.read_logits(path, expected_rows=labels.size, list_file=list_file, dataset=dataset)
        for path in (rgb_path, flow_path)
    )
    return labels, rgb, flow


def _figures(prefix, scores, labels):
    figures = metrics.evaluate_logits(scores, labels)
    return {
        f"{prefix}_top1": figures["top1"],
        f"{prefix}_top5": figures["top5"],
        f"{prefix}_mean_class": figures["mean_class_accuracy"],
    }


def fuse_logit_files(
    list_file,
    rgb_path,
    flow_path,
    flow_weight=fusion.FLOW_WEIGHT,
    normalize="none",
    dataset=logits_io.LOGITS_DATASET,
    idt_path=None,
    idt_dataset=logits_io.IDT_DATASET,
    idt_weight=fusion.IDT_WEIGHT,
    search=None,
    search_step=0.01,
    output=None,
):
    """Fuses one list's logits files (release `combine_streams.py`, §6.3, §6.4); returns the figures
    as a flat dict (accuracies in percent).

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
    result = {"num_videos": int(labels.size), "normalize": normalize, "flow_weight": float(flow_weight), **searched}
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
