"""Conversion of the original release's TF 0.12 checkpoints and k-means pickles (release §1.7, §5)."""

from actionvlad_tf.convert.release_ckpt import (
    ConversionReport,
    convert_two_stream,
    kmeans_centers_from_pickle,
    load_release_checkpoint,
    read_checkpoint,
    release_architecture,
    release_variable_pairs,
    save_centers_npz,
)

__all__ = [
    "ConversionReport",
    "convert_two_stream",
    "kmeans_centers_from_pickle",
    "load_release_checkpoint",
    "read_checkpoint",
    "release_architecture",
    "release_variable_pairs",
    "save_centers_npz",
]
