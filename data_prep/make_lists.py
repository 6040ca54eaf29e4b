r"""The release's list files (`video nframes label`, release §3.2) from official splits and frames.

  # UCF101: frame folders keep the video paths
  python data_prep/make_lists.py --dataset=ucf101 --split_dir=ucfTrainTestlist \
      --frames_dir=data/ucf101/frames --output_dir=data/ucf101/lists
  # HMDB51: the release renames videos to <class>/<id>; extract frames through its renaming list
  python data_prep/make_lists.py --dataset=hmdb51 --split_dir=testTrainMulti_7030_splits \
      --write_video_list=data/hmdb51/videos.txt
  python data_prep/extract_frames.py --videos=data/hmdb51/videos.txt --video_root=hmdb51_org \
      --output_dir=data/hmdb51/frames
  python data_prep/make_lists.py --dataset=hmdb51 --split_dir=testTrainMulti_7030_splits \
      --frames_dir=data/hmdb51/frames --output_dir=data/hmdb51/lists --check=RELEASE_LISTS_DIR
  # Charades: --split_dir holds Charades_v1_{train,test}.csv; 4-column per-clip lists
  python data_prep/make_lists.py --dataset=charades --split_dir=Charades --write_video_list=... \
      --frames_dir=data/charadesV1/frames --output_dir=data/charadesV1/lists

Writes `{train,test}_split{N}.txt` and `actions.txt` (Charades: `train_split1.txt`,
`test_split1.txt` (label −1), `test_split1_perClip.txt`). `--check` (a release list, or a folder of
them) compares each generated list with the release list of the same file name: same videos and
labels, frame counts within `--check_tolerance` (decoders differ by a frame), same order; prints a
report and exits with status 1 on any mismatch.
"""

import os
import sys

from absl import app, flags

from actionvlad_tf.data.frames import RGB_TEMPLATE
from actionvlad_tf.prep import splits

flags.DEFINE_enum("dataset", None, list(splits.LIST_MAKERS), "Which official split format to read.")
flags.DEFINE_string(
    "split_dir",
    None,
    "Official split folder (UCF101 ucfTrainTestlist, HMDB51 "
    "testTrainMulti_7030_splits, or the folder of the Charades csv files).",
)
flags.DEFINE_string("frames_dir", None, "Root of the extracted frame folders (frame counts).")
flags.DEFINE_string("output_dir", None, "Where the list files go.")
flags.DEFINE_list("splits", [], "Split numbers (default: every split found).")
flags.DEFINE_string("frame_template", RGB_TEMPLATE, "Frame file name in the frame folders.")
flags.DEFINE_bool("skip_missing", False, "Leave out (and report) videos without frames instead of failing.")
flags.DEFINE_string(
    "all_videos", None, "HMDB51: the release's AllVideos.txt (default: the same order rebuilt from the split files)."
)
flags.DEFINE_string(
    "charades_fps",
    "length",
    "Charades clip frame rate: 'length' (frames / the "
    "csv's length column), 'video' (header of --charades_video_dir/<id>.mp4) or a "
    "number (24 for the official 24 fps frame dumps).",
)
flags.DEFINE_string("charades_video_dir", None, "Charades videos, for --charades_fps=video.")
flags.DEFINE_string(
    "write_video_list",
    None,
    "HMDB51 / Charades: write the video → frame folder renaming list for extract_frames.py --videos here.",
)
flags.DEFINE_string("check", None, "A release list file, or a folder of them, to compare with.")
flags.DEFINE_integer("check_tolerance", 1, "Allowed frame-count difference in --check.")
flags.mark_flags_as_required(["dataset", "split_dir"])
FLAGS = flags.FLAGS


def _check(list_names, output_dir, release, tolerance):
    """Compares generated lists with the same-named release lists; True if all agree."""
    if os.path.isdir(release):
        pairs = [(n, os.path.join(release, n)) for n in list_names if os.path.isfile(os.path.join(release, n))]
    elif os.path.basename(release) in list_names:
        pairs = [(os.path.basename(release), release)]
    else:
        pairs = []
    if not pairs:
        raise app.UsageError(
            f"--check={release}: no release list named like the generated ones ({', '.join(list_names)})"
        )
    results = [splits.check_list(os.path.join(output_dir, n), path, tolerance) for n, path in pairs]
    for result in results:
        print(result.report())
    return all(r.ok for r in results)


def main(argv):
    del argv
    if FLAGS.write_video_list:
        pairs = splits.video_renaming_list(FLAGS.dataset, FLAGS.split_dir, FLAGS.all_videos)
        splits.write_list(FLAGS.write_video_list, pairs, separator="\t")
        print(f"wrote {len(pairs)} videos to {FLAGS.write_video_list}")
        if FLAGS.frames_dir is None:
            return
    if FLAGS.frames_dir is None or FLAGS.output_dir is None:
        raise app.UsageError("--frames_dir and --output_dir are needed to make lists")
    fps = FLAGS.charades_fps if FLAGS.charades_fps in ("length", "video") else float(FLAGS.charades_fps)
    list_set = splits.make_lists(
        FLAGS.dataset,
        FLAGS.split_dir,
        FLAGS.frames_dir,
        [int(s) for s in FLAGS.splits],
        FLAGS.frame_template,
        FLAGS.skip_missing,
        FLAGS.all_videos,
        fps,
        FLAGS.charades_video_dir,
    )
    splits.write_list_set(list_set, FLAGS.output_dir)
    print(list_set.report())
    if FLAGS.check and not _check(list(list_set.lists), FLAGS.output_dir, FLAGS.check, FLAGS.check_tolerance):
        sys.exit(1)


if __name__ == "__main__":
    app.run(main)
