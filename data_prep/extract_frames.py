r"""Frames of videos as `<output_dir>/<video>/image_%05d.jpg`, 1-indexed (release §3.1).

  python data_prep/extract_frames.py --videos=UCF-101 --output_dir=data/ucf101/frames --num_workers=8

`--videos` is a folder (searched recursively for video files; the folder name of a video is its
path below it, extension kept: `ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi/`) or a list file with
one video per line, `path` or `path<TAB>name` (paths relative to `--video_root`, default the list's
folder; `make_lists.py --write_video_list` writes HMDB51's and Charades' renaming lists). Decoding
is sequential, so raw MPEG-4 streams with wrong headers are read fully. A finished video is
skipped on re-run and a half-written one redone. Ends with a summary; exit status 1 if any failed.
"""

import sys

import beam_flags  # noqa: E402  (--runner, --beam_pipeline_options; data_prep/ is on sys.path)
from absl import app, flags

from actionvlad_tf.data.frames import RGB_TEMPLATE
from actionvlad_tf.prep import extraction

flags.DEFINE_string("videos", None, "Folder of videos, or a list file of videos (`path[<TAB>name]`).")
flags.DEFINE_string("output_dir", None, "Root of the frame folders to write.")
flags.DEFINE_string(
    "video_root", None, "Folder the paths of a --videos list are relative to (default: the list file's folder)."
)
flags.DEFINE_string(
    "template",
    RGB_TEMPLATE,
    "Frame file name, 1-indexed printf pattern (the release's image_%05d.jpg; TSN's img_%05d.jpg).",
)
flags.DEFINE_string(
    "resize",
    "",
    "Empty: keep the size; N: short side N (aspect kept); WxH: fixed size, e.g. 340x256 as the common TSN dumps.",
)
flags.DEFINE_integer("quality", extraction.DEFAULT_JPEG_QUALITY, "JPEG quality (0-100).")
flags.DEFINE_integer(
    "num_workers", 1, "Processes, one video each at a time (the local pool, or the DirectRunner's processes)."
)
flags.DEFINE_bool(
    "keep_extension",
    True,
    "Keep the video file's extension in its folder name (release §3.1: UCF101 folders are `v_x.avi`).",
)
flags.mark_flags_as_required(["videos", "output_dir"])
FLAGS = flags.FLAGS


def main(argv):
    del argv
    jobs, ignored = extraction.find_videos(FLAGS.videos, FLAGS.video_root, keep_extension=FLAGS.keep_extension)
    summary = extraction.extract_frames(
        jobs,
        FLAGS.output_dir,
        FLAGS.template,
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
