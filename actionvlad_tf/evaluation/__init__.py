"""Evaluation: metrics (top-k, mean class accuracy, confusion, Charades mAP/wAP), logits I/O, late fusion."""

from actionvlad_tf.evaluation.fusion import fuse_idt, fuse_streams, late_fusion, normalize_scores, search_flow_weight
from actionvlad_tf.evaluation.logits_io import (
    charades_video_id,
    read_charades_submission,
    read_logits,
    scores_for_videos,
    write_charades_submission,
    write_logits,
)
from actionvlad_tf.evaluation.metrics import (
    charades_evaluate,
    charades_map,
    evaluate_logits,
    mean_class_accuracy,
    read_charades_ground_truth,
    top_k_accuracy,
)

__all__ = [
    "charades_evaluate",
    "charades_map",
    "charades_video_id",
    "evaluate_logits",
    "fuse_idt",
    "fuse_streams",
    "late_fusion",
    "mean_class_accuracy",
    "normalize_scores",
    "read_charades_ground_truth",
    "read_charades_submission",
    "read_logits",
    "scores_for_videos",
    "search_flow_weight",
    "top_k_accuracy",
    "write_charades_submission",
    "write_logits",
]
