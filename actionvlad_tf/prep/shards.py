"""Writing packed shards (the record layout and the reader: `actionvlad_tf.data.packed`)."""

import json
import os

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from actionvlad_tf.atomic import atomic_output, write_json
from actionvlad_tf.data.frames import (
    FLOW_TEMPLATE,
    RGB_TEMPLATE,
    check_modality_and_error_policy,
    file_names,
    flow_file_names,
    jpeg_ok,
)
from actionvlad_tf.data.packed import STREAMS


def _int64(values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def _bytes(values):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))


def video_files(
    entry, frames_root=None, flow_root=None, modality="rgb", rgb_template=RGB_TEMPLATE, flow_template=FLOW_TEMPLATE
):
    """{stream: [paths]} of every file of a list entry, in record order (flow interleaved)."""
    numbers = entry.start_frame + np.arange(1, entry.num_frames + 1)
    files = {}
    if "rgb" in STREAMS[modality]:
        files["rgb"] = [os.path.join(frames_root, entry.path, n) for n in file_names(rgb_template, numbers)]
    if "flow" in STREAMS[modality]:
        files["flow"] = [
            os.path.join(flow_root, entry.path, n) for n in flow_file_names(flow_template, numbers[:-1, None])
        ]
    return files


def read_video_contents(
    entry, frames_root=None, flow_root=None, modality="rgb", rgb_template=RGB_TEMPLATE, flow_template=FLOW_TEMPLATE
):
    """({stream: [JPEG bytes]}, problem): problem names missing or bad files, or is None."""
    contents = {}
    for stream, paths in video_files(entry, frames_root, flow_root, modality, rgb_template, flow_template).items():
        missing = [p for p in paths if not os.path.isfile(p)]
        if missing:
            return None, f"{len(missing)} {stream} file(s) missing: {', '.join(missing[:3])}"
        data = []
        for path in paths:
            with open(path, "rb") as f:
                data.append(f.read())
        bad = [p for p, ok in zip(paths, jpeg_ok(data).numpy()) if not ok]
        if bad:
            return None, f"corrupt, truncated or empty JPEG file(s): {', '.join(bad[:3])}"
        contents[stream] = data
    return contents, None


def video_example(entry, index, contents):
    """A `tf.train.Example` of one video from its `read_video_contents`."""
    feature = {
        "video/path": _bytes([entry.path.encode()]),
        "video/where": _bytes([entry.where.encode()]),
        "video/index": _int64([index]),
        "video/label": _int64([entry.label]),
        "video/num_frames": _int64([entry.num_frames]),
        "video/start_frame": _int64([entry.start_frame]),
    }
    for stream, data in contents.items():
        feature[f"{stream}/encoded"] = _bytes(data)
    return tf.train.Example(features=tf.train.Features(feature=feature))


def shard_paths(output_prefix, num_shards):
    return [f"{output_prefix}-{i:05d}-of-{num_shards:05d}.tfrecord" for i in range(num_shards)]


def write_packed_shards(
    entries,
    output_prefix,
    frames_root=None,
    flow_root=None,
    modality="rgb",
    num_shards=1,
    rgb_template=RGB_TEMPLATE,
    flow_template=FLOW_TEMPLATE,
    on_error="raise",
    report=None,
    progress=True,
):
    """Writes the videos of `entries` (a list, in order) into `num_shards` packed shards.

    Args:
        entries: `VideoEntry`s (e.g. `read_list(...)`); record `video/index` is the position here.
        output_prefix: `<dir>/<name>`; shards `<prefix>-0000i-of-0000n.tfrecord`.
        frames_root, flow_root: roots of the frame and flow folders (flow_root defaults to
            frames_root, as in TSN dumps that keep both in one folder).
        modality: which streams to store: "rgb", "flow" or "rgb+flow".
        on_error: "raise" (ValueError naming the video, its list line and the file) or "skip"
            (the video is left out and recorded in `report`, a `DatasetReport`, and the sidecars).
        progress: show a tqdm bar.

    Returns:
        the shard paths. Complete shards from an earlier run are kept, not rewritten.
    """
    check_modality_and_error_policy(modality, on_error, report)
    flow_root = flow_root if flow_root is not None else frames_root
    paths = shard_paths(output_prefix, num_shards)
    bounds = np.linspace(0, len(entries), num_shards + 1).astype(int)
    bar = tqdm(total=len(entries), desc="packing videos", unit="video", disable=not progress)
    total = 0
    for shard, path in enumerate(paths):
        positions = range(bounds[shard], bounds[shard + 1])
        sidecar = f"{path}.json"
        if os.path.exists(path) and os.path.exists(sidecar):  # complete from an earlier run
            with open(sidecar, encoding="utf-8") as f:
                done = json.load(f)
            bar.update(len(positions))
        else:
            done = {"videos": 0, "skipped": []}
            with atomic_output(path) as partial, tf.io.TFRecordWriter(partial) as writer:
                for position in positions:
                    entry = entries[position]
                    contents, problem = read_video_contents(
                        entry, frames_root, flow_root, modality, rgb_template, flow_template
                    )
                    bar.update(1)
                    if problem is not None:
                        if on_error == "raise":
                            raise ValueError(f"{entry.path} ({entry.where}): {problem}")
                        done["skipped"].append([position, entry.path, entry.where, problem])
                        continue
                    writer.write(video_example(entry, position, contents).SerializeToString())
                    done["videos"] += 1
                write_json(sidecar, done)  # before the shard appears, so a shard implies it
        if done["skipped"] and report is None:
            raise ValueError(
                f"{path} (an earlier run with on_error='skip') left out {len(done['skipped'])} video(s); see {sidecar}"
            )
        for skipped in done["skipped"]:
            report.add(*skipped)
        total += done["videos"]
    bar.close()
    write_json(
        f"{output_prefix}.json", {"modality": modality, "videos": total, "shards": [os.path.basename(p) for p in paths]}
    )
    return paths
