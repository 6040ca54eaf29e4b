r"""Packs the frame (and flow) JPEGs of the videos of a list into sharded TFRecord files.

One `tf.train.Example` per video (`actionvlad_tf.data.packed`); shards are written atomically and a
re-run keeps the complete ones. Read them with
`make_video_dataset(packed_files="<output_prefix>-*.tfrecord", ...)`.

Example:

    python data_prep/build_tfrecords.py --list=data/hmdb51/lists/train_split1.txt \
        --frames_root=data/hmdb51/frames --flow_root=data/hmdb51/flow --modality=rgb+flow \
        --output_prefix=data/hmdb51/packed/train_split1 --num_shards=64
"""

import sys

from absl import app, flags

from actionvlad_tf.data.frames import FLOW_TEMPLATE, RGB_TEMPLATE, DatasetReport
from actionvlad_tf.data.lists import read_list
from actionvlad_tf.prep.shards import write_packed_shards

flags.DEFINE_string("list", None, "list file (3 or 4 columns, release §3.2)")
flags.DEFINE_string("frames_root", None, "root of <video>/image_%05d.jpg folders")
flags.DEFINE_string("flow_root", None, "root of <video>/flow_{x,y}_%05d.jpg (default frames_root)")
flags.DEFINE_enum("modality", "rgb", ["rgb", "flow", "rgb+flow"], "streams to store")
flags.DEFINE_string("output_prefix", None, "shards are <prefix>-0000i-of-0000n.tfrecord")
flags.DEFINE_integer("num_shards", 1, "number of shards (list order is kept across them)")
flags.DEFINE_string("rgb_template", RGB_TEMPLATE, "frame file names (TSN: img_%05d.jpg)")
flags.DEFINE_string("flow_template", FLOW_TEMPLATE, "flow file names, {} = x or y")
flags.DEFINE_integer("num_classes", None, "labels >= num_classes are list errors")
flags.DEFINE_enum(
    "on_error", "raise", ["raise", "skip"], "bad video: stop with an error, or leave it out and name it in the summary"
)
flags.mark_flags_as_required(["list", "output_prefix"])
FLAGS = flags.FLAGS


def main(argv):
    del argv
    report = DatasetReport()
    try:
        entries = read_list(FLAGS.list, FLAGS.num_classes)
        shards = write_packed_shards(
            entries,
            FLAGS.output_prefix,
            FLAGS.frames_root,
            FLAGS.flow_root,
            FLAGS.modality,
            FLAGS.num_shards,
            FLAGS.rgb_template,
            FLAGS.flow_template,
            FLAGS.on_error,
            report,
        )
    except ValueError as error:  # a bad list line or video: the message names it
        sys.exit(f"error: {error}")
    print(
        f"{len(entries) - len(report)} of {len(entries)} videos in {len(shards)} shard(s) "
        f"{FLAGS.output_prefix}-*.tfrecord"
    )
    if len(report):  # skipped videos: named, and a non-zero exit so scripts notice
        print(report.summary())
        sys.exit(1)


if __name__ == "__main__":
    app.run(main)
