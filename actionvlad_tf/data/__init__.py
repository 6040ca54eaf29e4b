"""Data: list files, temporal sampling, preprocessing and tf.data pipelines, frame/flow extraction."""
