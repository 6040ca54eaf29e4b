r"""The built-in demo dataset: short videos of composite actions (actionvlad_tf.prep.synthetic).

  python data_prep/make_demo_dataset.py --output_dir=demo_out/data
  python data_prep/extract_frames.py --videos=demo_out/data/videos --output_dir=demo_out/data/frames
  python data_prep/extract_flow.py --frames=demo_out/data/frames --output_dir=demo_out/data/flow
  python data_prep/make_lists.py --dataset=ucf101 --split_dir=demo_out/data/splits \
      --frames_dir=demo_out/data/frames --output_dir=demo_out/data/lists

Writes `videos/<Class>/v_<Class>_gNN_c01.avi`, UCF101-format `splits/`, `actions.txt` and
`manifest.json`; deterministic by `--seed`; videos already there are kept.
"""

import time

from absl import app, flags

from actionvlad_tf.prep import synthetic

flags.DEFINE_string("output_dir", None, "Where the dataset goes.")
flags.DEFINE_integer(
    "num_classes", 6, f"Classes (1 … {synthetic.MAX_CLASSES}; beyond 6, single streams confuse some pairs by design)."
)
flags.DEFINE_integer("train_per_class", 10, "Training videos per class.")
flags.DEFINE_integer("test_per_class", 5, "Test videos per class.")
flags.DEFINE_integer(
    "val_per_class",
    0,
    "Training videos per class held out as split 2's test list "
    "(a validation split cut from the training videos; split 2 trains on the rest).",
)
flags.DEFINE_integer("num_frames", synthetic.DEFAULT_NUM_FRAMES, "Frames per video.")
flags.DEFINE_integer("height", 96, "Frame height.")
flags.DEFINE_integer("width", 128, "Frame width.")
flags.DEFINE_integer("seed", 0, "Random seed: same seed, same videos.")
flags.DEFINE_integer("num_workers", 1, "Processes that render and encode the videos (the same files for any number).")
flags.mark_flags_as_required(["output_dir"])
FLAGS = flags.FLAGS


def main(argv):
    del argv
    start = time.perf_counter()
    summary = synthetic.generate_demo_dataset(
        FLAGS.output_dir,
        FLAGS.num_classes,
        FLAGS.train_per_class,
        FLAGS.test_per_class,
        FLAGS.num_frames,
        FLAGS.height,
        FLAGS.width,
        seed=FLAGS.seed,
        val_per_class=FLAGS.val_per_class,
        num_workers=FLAGS.num_workers,
    )
    print(
        f"{summary.num_videos} videos ({summary.written} written, {summary.kept} kept), "
        f"{summary.num_frames} frames, {summary.video_bytes / 1e6:.1f} MB, "
        f"{time.perf_counter() - start:.1f} s"
    )


if __name__ == "__main__":
    app.run(main)
