r"""Top contributing action words for a video's class (paper Fig. 8).

  python experiments/viz_top_words.py --model=runs/rgb/model.keras --class_names=lists/actions.txt \
      --video=brush_hair.avi --output=figures/top_words.png [--class_index=3]

Ranks the K action words by their share of the class score (classifier weights × ActionVLAD
vector, summed per word) and shows the frames where the top words fire. Default class: the
predicted one.
"""

import numpy as np
import viz_flags
from absl import app, flags

from actionvlad_tf.data.lists import read_class_names
from actionvlad_tf.viz import common, top_words

flags.DEFINE_string("video", None, "The video file.")
flags.DEFINE_string("class_names", None, "Class names in label order (actions.txt / classInd.txt).")
flags.DEFINE_integer("class_index", None, "The class whose score is explained; default the predicted class.")
flags.DEFINE_integer("num_words", 4, "Top words shown with their frames.")
flags.DEFINE_integer("frames_per_word", 4, "Frames shown per top word.")
flags.DEFINE_string("output", None, "The PNG to write.")
flags.mark_flags_as_required(["model", "video", "output"])
FLAGS = flags.FLAGS


def main(argv):
    del argv
    model = viz_flags.load_stream_model()
    crops, internals = common.analyse_video(model, FLAGS.video, FLAGS.frames_per_video, FLAGS.flow_method)
    logits = internals["logits"]
    names = read_class_names(FLAGS.class_names) if FLAGS.class_names else [str(i) for i in range(len(logits))]
    predicted = int(np.argmax(logits))
    explained, contributions = top_words.class_contributions(internals, FLAGS.class_index)
    probabilities = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    title = f"'{names[explained]}' (p = {probabilities[explained]:.2f}); predicted '{names[predicted]}'"
    top = top_words.plot_top_words(
        crops, internals["assignments"], contributions, FLAGS.output, title, FLAGS.num_words, FLAGS.frames_per_word
    )
    print(
        f"{FLAGS.output}: {title}; top words {top} contribute "
        f"{', '.join(f'{contributions[k]:+.3f}' for k in top)} of score {logits[explained]:.3f}"
    )


if __name__ == "__main__":
    app.run(main)
