"""Packed shards: one `tf.train.Example` per video, holding the JPEG bytes of its frames and flow.

This module holds the record layout and its parser (the online side); the writer is
`actionvlad_tf.prep.shards.write_packed_shards`.

Reading a few large sequential files instead of ~100-1000 small JPEGs per video is the fast path on
network disks. The JPEG bytes are stored as they are on disk (no re-encoding), so a pipeline that
reads shards gives exactly the tensors of the frame-folder pipeline.

Record features:

| key | type | value |
|---|---|---|
| `video/path` | bytes | video folder relative to the frame root (the list's first column) |
| `video/where` | bytes | `list_file:line` it came from (named in errors) |
| `video/index` | int64 | position in the list (logits are written in list order) |
| `video/label` | int64 | 0-based class, −1 unlabelled |
| `video/num_frames`, `video/start_frame` | int64 | the list's frame count and clip offset |
| `rgb/encoded` | bytes list | frames start+1 … start+n (`image_%05d.jpg`), n JPEGs |
| `flow/encoded` | bytes list | flow start+1 … start+n−1 interleaved x, y, x, y, …: 2(n−1) JPEGs |

Shards are named `<prefix>-00000-of-00004.tfrecord`; shard i holds a contiguous run of the list, so
reading the shards in order gives list order. Each shard is written to a temporary file and renamed
when complete, with a sidecar `<shard>.json` (videos written, videos skipped and why); a re-run
keeps complete shards (resume). `<prefix>.json` lists the shards at the end.
"""

import tensorflow as tf

from actionvlad_tf.specs import STREAMS  # noqa: F401  (re-exported)


def parse_video_example(serialized, modality="rgb"):
    """Serialized record → dict of tensors: the `video/*` scalars (without the prefix) and, per
    stream of `modality`, `rgb` [n] / `flow` [2(n−1)] JPEG bytes (empty where not stored)."""
    spec = {f"video/{k}": tf.io.FixedLenFeature([], tf.string) for k in ("path", "where")}
    spec.update(
        {f"video/{k}": tf.io.FixedLenFeature([], tf.int64) for k in ("index", "label", "num_frames", "start_frame")}
    )
    spec.update({f"{s}/encoded": tf.io.RaggedFeature(tf.string) for s in STREAMS[modality]})
    parsed = tf.io.parse_single_example(serialized, spec)
    return {
        key.split("/")[1] if key.startswith("video/") else key.split("/")[0]: value for key, value in parsed.items()
    }
