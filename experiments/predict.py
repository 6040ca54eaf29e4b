r"""Classify a video file, or many into a file, with a trained ActionVLAD model (a `.keras` file or a
SavedModel export).

  python experiments/predict.py --model=exports/hmdb51_rgb --video=clip.avi
  python experiments/predict.py --model=runs/rgb/model.keras --class_names=lists/actions.txt --video=clip.avi
  python experiments/predict.py --model=exports/two_stream --video=long.mp4 \
      --sliding_window --window=25 --stride=12
  python experiments/predict.py --model=exports/hmdb51_rgb --videos=my_videos/ --output=preds.csv

With --videos (a folder of video files and frame folders, or a list file) and --output (.csv or
.jsonl), every video is classified into one file, the next videos decoded by --workers threads
while the model runs; a re-run skips the videos already in --output; unreadable videos are named
and skipped, and the videos/s is printed at the end (`export.predictions`).

Streams the video (memory does not grow with its length: only the sampled frames, or the current
window's, are kept), samples `frames_per_video` frames with the release's step (§3.3), computes TV-L1
flow for a flow or two-stream model (`--flow_method`), and prints the top-5 classes with their
probabilities. `--sliding_window` scores windows of `--window` consecutive frames every `--stride`
frames, prints one timeline line per window (the release author's suggestion,
https://github.com/rohitgirdhar/ActionVLAD/issues/10) and, with `--timeline_png`, plots the class
probabilities over time. For flow, a window needs at least T + 10 frames to give distinct stacks
(the release's flow step ⌊(n − 10)/T⌋, §3.3).
"""

import flagfiles
import video_flags
from absl import app, flags

from actionvlad_tf.export import predictions, predictor, video_batch
from actionvlad_tf.viz.timeline import plot_timeline

flags.DEFINE_string("video", None, "The video file to classify.")
flags.DEFINE_string("output", None, "With --videos: the predictions file, .csv or .jsonl (added to on a re-run).")
flags.DEFINE_integer("top_k", 5, "Classes printed per video (at most 5).")
flags.DEFINE_bool("sliding_window", False, "Score windows of --window frames every --stride frames.")
flags.DEFINE_integer("window", predictor.DEFAULT_FRAMES_PER_VIDEO, "Frames per window.")
flags.DEFINE_integer("stride", predictor.DEFAULT_FRAMES_PER_VIDEO, "Frames between window starts.")
flags.DEFINE_string(
    "timeline_png", None, "With --sliding_window: plot the top classes' probabilities over time into this PNG."
)
flags.mark_flags_as_required(["model"])
FLAGS = flags.FLAGS


def format_scores(scores, top_k):
    return "\n".join(
        f"  {p:7.2%}  {name}"
        for name, p in zip(scores["top5_classes"][:top_k], scores["probabilities"][scores["top5_indices"][:top_k]])
    )


def predict_many(classifier):
    windows = dict(window=FLAGS.window, stride=FLAGS.stride) if FLAGS.sliding_window else {}
    summary = predictions.predict_videos(
        classifier,
        video_batch.find_inputs(FLAGS.videos),
        FLAGS.output,
        FLAGS.top_k,
        **windows,
        **video_flags.run_options(),
    )
    print(f"{FLAGS.output}: {summary.report()}")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    if bool(FLAGS.video) == bool(FLAGS.videos) or bool(FLAGS.videos) != bool(FLAGS.output):
        raise app.UsageError("give --video, or --videos with --output")
    if FLAGS.videos and FLAGS.timeline_png:
        raise app.UsageError("--timeline_png plots one --video")
    classifier = video_flags.classifier()
    if FLAGS.videos:
        return predict_many(classifier)
    num_frames = predictor.count_video_frames(FLAGS.video)
    width, height = predictor.video_size(FLAGS.video)
    print(
        f"{FLAGS.video}: {num_frames} frames {width}x{height}; model "
        f"{classifier.path} ({'+'.join(classifier.modalities)})"
    )
    if not FLAGS.sliding_window:
        scores = predictor.classify_video(
            classifier,
            FLAGS.video,
            FLAGS.frames_per_video,
            FLAGS.flow_method,
            where=FLAGS.video,
            num_frames=num_frames,
            flow_bound=FLAGS.flow_bound,
        )
        print(format_scores(scores, FLAGS.top_k))
        return
    fps = predictor.video_fps(FLAGS.video)
    rows, windows = [], []
    for start, end, scores in predictor.classify_windows(
        classifier,
        FLAGS.video,
        FLAGS.window,
        FLAGS.stride,
        FLAGS.frames_per_video,
        FLAGS.flow_method,
        where=FLAGS.video,
        flow_bound=FLAGS.flow_bound,
    ):
        seconds = f"{start / fps:7.2f}-{end / fps:7.2f} s  " if fps else ""
        best = scores["top5_indices"][0]
        rows.append(
            f"frames {start + 1:6d}-{end:6d}  {seconds}{scores['probabilities'][best]:7.2%}  "
            f"{scores['top5_classes'][0]}"
        )
        windows.append((start, end, scores))
    print("\n".join(rows))
    if FLAGS.timeline_png:
        print(f"timeline: {plot_timeline(windows, FLAGS.timeline_png, fps, FLAGS.top_k, FLAGS.video)}")


if __name__ == "__main__":
    flagfiles.run(main)
