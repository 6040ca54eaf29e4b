r"""ActionVLAD features of one's own videos: per video its VLAD vector (the classifier's input),
its logits and, with --assignments, each frame's soft assignments, in one HDF5 file.

  python experiments/extract_features.py --model=runs/rgb/model.keras --videos=my_videos/ \
      --output=features.h5
  python experiments/extract_features.py --model=exports/hmdb51_rgb --videos=list.txt --output=features.h5

--videos is a folder (video files and frame folders under it) or a list file. Each video is streamed
(only its T sampled frames are kept), the next ones decoded while the model runs; a re-run skips the
videos already in --output; unreadable videos are named and counted at the end. Datasets `videos`,
`embedding` [N, K·D], `logits` [N, C] (and `assignments` [N, T, h, w, K]); see docs/your_data.md.
"""

import flagfiles
import video_flags
from absl import app, flags

from actionvlad_tf.export import features, video_batch

flags.DEFINE_string("output", None, "The HDF5 file (.h5) to write, or to add to on a re-run.")
flags.DEFINE_bool(
    "assignments",
    False,
    "Also store each frame's soft assignments [T, h, w, K] (needs a .keras model with NetVLAD pooling).",
)
flags.mark_flags_as_required(["model", "videos", "output"])
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    classifier = video_flags.classifier(assignments=FLAGS.assignments)
    summary = features.extract_features(
        classifier, video_batch.find_inputs(FLAGS.videos), FLAGS.output, **video_flags.run_options()
    )
    print(f"{FLAGS.output}: {summary.report()}")


if __name__ == "__main__":
    flagfiles.run(main)
