r"""Optical flow as `<output_dir>/<video>/flow_{x,y}_%05d.jpg`, n−1 per direction (release §3.1).

  python data_prep/extract_flow.py --frames=data/hmdb51/frames --output_dir=data/hmdb51/flow \
      --method=tvl1 --num_workers=8

From frame folders (`--frames`, every folder under it holding `--frame_template % 1`) or from
videos (`--videos`, a folder or list as in extract_frames.py). Flow file i is the flow from frame i
to frame i+1 of the grayscale frames, clipped to ±`--bound` pixels and mapped to [0, 255] with 128 =
no motion, as TSN's dense_flow. `--method=tvl1` (OpenCV's Dual TV-L1, what the release's flow was
made with) is slow on CPUs; `--method=tvl1_tf` computes the same algorithm in TensorFlow, 16 frame
pairs of a video per call, on the GPU where there is one (use --num_workers=1 there: TensorFlow uses
every core); `dis` and `farneback` are 10-80× faster and coarser. Resumable and parallel like
extract_frames.py; exit status 1 if any video failed.
"""

import sys

import beam_flags  # noqa: E402  (--runner, --beam_pipeline_options; data_prep/ is on sys.path)
from absl import app, flags

from actionvlad_tf.data.frames import FLOW_TEMPLATE, RGB_TEMPLATE
from actionvlad_tf.prep import extraction

flags.DEFINE_string("frames", None, "Root of frame folders to compute flow from.")
flags.DEFINE_string("videos", None, "Or: folder of videos, or a list file of videos.")
flags.DEFINE_string("video_root", None, "Folder the paths of a --videos list are relative to.")
flags.DEFINE_string("output_dir", None, "Root of the flow folders to write.")
flags.DEFINE_enum("method", "tvl1", list(extraction.FLOW_METHODS), "Optical flow algorithm.")
flags.DEFINE_float("bound", extraction.DEFAULT_FLOW_BOUND, "Flow is clipped to ±bound pixels.")
flags.DEFINE_string("frame_template", RGB_TEMPLATE, "Frame file name in --frames folders (TSN folders: img_%05d.jpg).")
flags.DEFINE_string("flow_template", FLOW_TEMPLATE, "Flow file name, {} = x or y.")
flags.DEFINE_string("resize", "", "Resize frames before the flow: N (short side) or WxH.")
flags.DEFINE_integer("quality", extraction.DEFAULT_JPEG_QUALITY, "JPEG quality (0-100).")
flags.DEFINE_integer(
    "num_workers", 1, "Processes, one video each at a time (the local pool, or the DirectRunner's processes)."
)
flags.DEFINE_bool("keep_extension", True, "With --videos: keep the extension in folder names.")
flags.mark_flags_as_required(["output_dir"])
flags.register_multi_flags_validator(
    ["frames", "videos"],
    lambda f: (f["frames"] is None) != (f["videos"] is None),
    message="give exactly one of --frames and --videos",
)
FLAGS = flags.FLAGS


def main(argv):
    del argv
    if FLAGS.frames is not None:
        jobs, ignored = extraction.find_frame_folders(FLAGS.frames, FLAGS.frame_template), []
        source_kind = "frames"
    else:
        jobs, ignored = extraction.find_videos(FLAGS.videos, FLAGS.video_root, keep_extension=FLAGS.keep_extension)
        source_kind = "video"
    summary = extraction.extract_flow(
        jobs,
        FLAGS.output_dir,
        source_kind,
        FLAGS.method,
        FLAGS.bound,
        FLAGS.flow_template,
        FLAGS.frame_template,
        FLAGS.resize,
        FLAGS.quality,
        FLAGS.num_workers,
        runner=beam_flags.beam_runner(FLAGS.num_workers),
    )
    summary.ignored = ignored
    print(summary.report())
    sys.exit(0 if summary.ok else 1)


if __name__ == "__main__":
    app.run(main)
