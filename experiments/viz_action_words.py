r"""Action words (paper Fig. 6 and 7) of a trained ActionVLAD model on video files.

  python experiments/viz_action_words.py --model=runs/rgb/model.keras \
      --videos=a.avi,b.avi,c.avi --output_dir=figures/action_words

Writes `video_<i>_<name>.png` per video (Fig. 7: `--num_words` words of that video over its frames)
and `word_<k>.png` for as many words over all videos (Fig. 6: the frames of all videos where word k
fires most). `--rank=frequency` (default) shows the words that win the most positions, which in
scenes with little foreground are background words; `--rank=contribution` the words that add most
to each video's predicted class score (classifier weights × ActionVLAD vector per word, Fig. 8),
and for the word figures the words most often among them. `--words=3,17` picks the word figures'
words instead.
"""

import collections
import os

import numpy as np
import viz_flags
from absl import app, flags

from actionvlad_tf.viz import action_words, common, top_words

flags.DEFINE_list("videos", None, "Video files.")
flags.DEFINE_string("output_dir", None, "Folder for the PNGs.")
flags.DEFINE_list(
    "words", None, "Action words (cluster indices) for the word_<k>.png figures; default: the most frequent."
)
flags.DEFINE_integer("num_words", 2, "Words per video figure, and word figures when --words is not given.")
flags.DEFINE_enum(
    "rank",
    "frequency",
    ["frequency", "contribution"],
    "Which words to show: the most frequent, or those that add most to the predicted class score.",
)
flags.DEFINE_integer("examples", 8, "Frames per word figure.")
flags.DEFINE_integer("max_frames", 8, "Frames per video figure.")
flags.DEFINE_integer("max_per_video", 2, "Frames of one video per word figure.")
flags.mark_flags_as_required(["model", "videos", "output_dir"])
FLAGS = flags.FLAGS


def main(argv):
    del argv
    model = viz_flags.load_stream_model()
    names = [os.path.splitext(os.path.basename(v))[0] for v in FLAGS.videos]
    crops, assignments, contributing = [], [], []
    for index, (video, name) in enumerate(zip(FLAGS.videos, names)):
        shown, internals = common.analyse_video(model, video, FLAGS.frames_per_video, FLAGS.flow_method)
        crops.append(shown)
        assignments.append(internals["assignments"])
        video_words = None
        if FLAGS.rank == "contribution":
            video_words = top_words.contributing_words(internals, FLAGS.num_words)
            contributing.extend(video_words)
        path = os.path.join(FLAGS.output_dir, f"video_{index + 1}_{name}.png")
        words = action_words.plot_video_action_words(
            shown,
            internals["assignments"],
            path,
            words=video_words,
            num_words=FLAGS.num_words,
            max_frames=FLAGS.max_frames,
            title=name,
        )
        print(f"{path}: words {words} over the frames of {video}")
    if FLAGS.words:
        words = [int(w) for w in FLAGS.words]
    elif FLAGS.rank == "contribution":  # most often among the videos' top words, first seen first on ties
        words = [word for word, _ in collections.Counter(contributing).most_common(FLAGS.num_words)]
    else:
        words = action_words.frequent_words(np.concatenate(assignments), FLAGS.num_words)
    for word in words:
        path = os.path.join(FLAGS.output_dir, f"word_{word}.png")
        shown = action_words.plot_action_word_examples(
            crops, assignments, word, path, FLAGS.examples, video_names=names, max_per_video=FLAGS.max_per_video
        )
        print(f"{path}: word {word} in {len(shown)} frames of {len({v for v, _, _ in shown})} videos")


if __name__ == "__main__":
    app.run(main)
