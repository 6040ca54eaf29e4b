"""Offline data preparation, run once per dataset by `data_prep/`: video decoding and TV-L1 flow
(`extraction`), official splits (`splits`), the demo dataset (`synthetic`), the generated stills for
pretraining (`stills`), packed-shard writing (`shards`) and the tensorflow-datasets builder
(`tfds_builder`)."""
