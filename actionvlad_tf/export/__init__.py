"""Serving and deployment: SavedModel export with serving signatures, LiteRT and ONNX files (`portable`),
classification of a video file or of many (`predictions`), and their features (`features`)."""

from actionvlad_tf.export.predictor import Classifier, classify_video, classify_windows
from actionvlad_tf.export.saved_model import export_saved_model, late_fuse, save_keras_atomic

__all__ = ["Classifier", "classify_video", "classify_windows", "export_saved_model", "late_fuse", "save_keras_atomic"]
