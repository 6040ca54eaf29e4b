"""Serving: SavedModel export with serving signatures, and classification of video files."""
from actionvlad_tf.export.predictor import Classifier, classify_video, classify_windows
from actionvlad_tf.export.saved_model import export_saved_model, late_fuse, save_keras_atomic

__all__ = ["Classifier", "classify_video", "classify_windows", "export_saved_model", "late_fuse",
           "save_keras_atomic"]
