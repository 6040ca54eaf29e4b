r"""Classify a video file with a trained ActionVLAD model (a `.keras` file or a SavedModel export).

  python experiments/predict.py --model=exports/hmdb51_rgb --video=clip.avi
  python experiments/predict.py --model=runs/rgb/model.keras --class_names=lists/actions.txt --video=clip.avi
  python experiments/predict.py --model=exports/two_stream --video=long.mp4 \
      --sliding_window --window=25 --stride=12

Streams the video (memory does not grow with its length: only the sampled frames, or the current
window's, are kept), samples `frames_per_video` frames with the release's step (§3.3), computes TV-L1
flow for a flow or two-stream model (`--flow_method`), and prints the top-5 classes with their
probabilities. `--sliding_window` scores windows of `--window` consecutive frames every `--stride`
frames, prints one timeline line per window (the release author's suggestion,
https://github.com/rohitgirdhar/ActionVLAD/issues/10) and, with `--timeline_png`, plots the class
probabilities over time. For flow, a window needs at least T + 10 frames to give distinct stacks
(the release's flow step ⌊(n − 10)/T⌋, §3.3).
"""
from absl import app, flags

from actionvlad_tf.data.lists import read_class_names
from actionvlad_tf.export import predictor
from actionvlad_tf.prep.extraction import DEFAULT_FLOW_BOUND, FLOW_METHODS
from actionvlad_tf.viz.timeline import plot_timeline

flags.DEFINE_string("model", None, "A .keras file, a SavedModel folder, or an export folder (highest version).")
flags.DEFINE_string("video", None, "The video file to classify.")
flags.DEFINE_string("class_names", None, "Class names in label order (actions.txt / classInd.txt), "
                    "for a .keras model; a SavedModel has them baked in.")
flags.DEFINE_integer("frames_per_video", predictor.DEFAULT_FRAMES_PER_VIDEO,
                     "T, for a model that accepts any number of frames; otherwise the model's T.")
flags.DEFINE_integer("num_crops", 1, "Test crops for a .keras model (1 or 5, release §3.7).")
flags.DEFINE_enum("flow_method", "tvl1", list(FLOW_METHODS), "Optical flow for flow models (data_prep's).")
flags.DEFINE_float("flow_bound", DEFAULT_FLOW_BOUND, "Flow is clipped to ±bound pixels before quantisation: "
                   "the bound the model's training flow was extracted with (extract_flow.py --bound).")
flags.DEFINE_integer("top_k", 5, "Classes printed per video (at most 5).")
flags.DEFINE_bool("sliding_window", False, "Score windows of --window frames every --stride frames.")
flags.DEFINE_integer("window", predictor.DEFAULT_FRAMES_PER_VIDEO, "Frames per window.")
flags.DEFINE_integer("stride", predictor.DEFAULT_FRAMES_PER_VIDEO, "Frames between window starts.")
flags.DEFINE_string("timeline_png", None, "With --sliding_window: plot the top classes' probabilities "
                    "over time into this PNG.")
flags.mark_flags_as_required(["model", "video"])
FLAGS = flags.FLAGS


def format_scores(scores, top_k):
    return "\n".join(f"  {p:7.2%}  {name}" for name, p in zip(
        scores["top5_classes"][:top_k], scores["probabilities"][scores["top5_indices"][:top_k]]))


def main(argv):
    del argv
    names = read_class_names(FLAGS.class_names) if FLAGS.class_names else None
    classifier = predictor.Classifier(FLAGS.model, names, FLAGS.num_crops)
    num_frames = predictor.count_video_frames(FLAGS.video)
    width, height = predictor.video_size(FLAGS.video)
    print(f"{FLAGS.video}: {num_frames} frames {width}x{height}; model "
          f"{classifier.path} ({'+'.join(classifier.modalities)})")
    if not FLAGS.sliding_window:
        scores = predictor.classify_video(classifier, FLAGS.video, FLAGS.frames_per_video, FLAGS.flow_method,
                                          where=FLAGS.video, num_frames=num_frames, flow_bound=FLAGS.flow_bound)
        print(format_scores(scores, FLAGS.top_k))
        return
    fps = predictor.video_fps(FLAGS.video)
    rows, windows = [], []
    for start, end, scores in predictor.classify_windows(
            classifier, FLAGS.video, FLAGS.window, FLAGS.stride, FLAGS.frames_per_video, FLAGS.flow_method,
            where=FLAGS.video, flow_bound=FLAGS.flow_bound):
        seconds = f"{start / fps:7.2f}-{end / fps:7.2f} s  " if fps else ""
        best = scores["top5_indices"][0]
        rows.append(f"frames {start + 1:6d}-{end:6d}  {seconds}{scores['probabilities'][best]:7.2%}  "
                    f"{scores['top5_classes'][0]}")
        windows.append((start, end, scores))
    print("\n".join(rows))
    if FLAGS.timeline_png:
        print(f"timeline: {plot_timeline(windows, FLAGS.timeline_png, fps, FLAGS.top_k, FLAGS.video)}")


if __name__ == "__main__":
    app.run(main)
