"""The online input path: list files, temporal sampling, preprocessing, tf.data pipelines and
packed-shard reading. Offline preparation (decoding, flow, splits, shard writing) is `actionvlad_tf.prep`."""
