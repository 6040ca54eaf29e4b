r"""The main job on the built-in demo data: the release's whole chain, end to end, offline.

  python experiments/demo.py --output_dir=demo_out
  python experiments/demo.py --output_dir=demo_out --seeds=0,1,2 --seeds_table=docs/demo_seeds.md

1. generate the demo dataset (real video files of composite actions, `actionvlad_tf.prep.synthetic`),
   extract frames and optical flow, make the split lists (`data_prep/*`);
2. the backbones: the release starts RGB from ImageNet VGG-16 and flow from a flow network trained
   on the target dataset's flow; offline, the demo uses the project's pretrained stand-ins (the VGG-16
   topology pretrained on generated stills, `--backbone_weights`, and on generated flow stacks,
   `--flow_backbone_weights`);
3. the release's initialisation chain: the two-stream frame networks (release 005) train fc6–fc8
   over each stream's backbone; ActionVLAD starts from the stream's conv layers (for flow the
   release's flow network; the demo's flow frame network leaves the flow stand-in's conv layers as
   they are, so flow ActionVLAD reads them from the stand-in and does not wait for it); k-means on
   those features; stage 1 (classifier over the fixed VLAD); stage 2 (conv5 + VLAD + classifier);
   the same two stages for the avg / max pooling baselines, all on one feature cache per stream
   (the frames run through conv1_1 … pool4 once, `--cache_via_stage2`), from which the frame
   networks also draw their single frames (`--cache_frames_per_video`);
4. evaluation of every model (the poolings of a stream read one evaluation cache of the test
   videos' pool4 maps, `eval.py --feature_cache_dir`), late fusion of RGB and flow (raw logits at
   the release's weights, flow 2:1: `--flow_weight`), export of the two-stream ActionVLAD as a
   SavedModel, `predict.py` on held-out test videos through it (one run over their list), and the
   action-word maps of the trained RGB model (paper Fig. 6–7).

Every step runs the project's real entry point in a subprocess (`actionvlad_tf.workflow`): the
console shows one line per step with its progress, each step's output goes to
`<output_dir>/logs/`, and each step is keyed by its flags, the code version and its inputs, so a
re-run repeats exactly the steps whose key changed and an interrupted demo resumes. Independent steps
run two at a time, the one with the longest chain of work behind it first. `results.json` holds the
table, the configuration, the precision chosen and each step's seconds.

The demo is sized for two CPU cores (small frames, T = 10, few steps; K = 64 as the paper); the paper's values stay
the defaults of the entry points. `--evaluate_on=val` trains on split 2 (split 1's training videos
without a held-out part) and tests on that held-out part: every choice of steps and learning rates was
made that way, never on the test videos.
"""

import os

from absl import app, flags

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

flags.DEFINE_string("output_dir", "demo_out", "Where the demo writes everything.")
flags.DEFINE_string(
    "backbone_weights",
    "demo_standin",
    "demo_standin (the shipped VGG-16 pretrained offline on generated stills), imagenet (Keras's "
    "VGG16 file, needs network), random (seeded He-initialised VGG-16), or a weights file.",
)
flags.DEFINE_string(
    "flow_backbone_weights",
    "auto",
    "The flow stream's starting weights: auto (demo_standin_flow, the shipped VGG-16 pretrained offline "
    "on generated flow stacks, when --backbone_weights=demo_standin; otherwise the RGB backbone with a "
    "cross-modality first layer, release §4), a shipped name, imagenet, random, or a weights file.",
)
flags.DEFINE_float("backbone_width", None, "Width multiplier of VGG-16 (default: the stand-in's, else 1).")
flags.DEFINE_integer("num_classes", 6, "Demo classes (data_prep/make_demo_dataset.py).")
flags.DEFINE_integer("train_per_class", 50, "Training videos per class.")
flags.DEFINE_integer("val_per_class", 10, "Of those, held out as the validation split (--evaluate_on=val).")
flags.DEFINE_integer("test_per_class", 20, "Test videos per class.")
flags.DEFINE_enum(
    "evaluate_on",
    "test",
    ["test", "val"],
    "test: train on all training videos, test on the test videos; val: train on split 2 "
    "(without the held-out videos) and test on the held-out validation videos.",
)
flags.DEFINE_integer("frames_per_video", 10, "T for the video-level models (paper: 25).")
flags.DEFINE_integer(
    "image_size",
    96,
    "Crop side (paper: 224). 96 was chosen on the validation split: "
    "RGB ActionVLAD stage 2 reached 63.3 % at 64², 73.3 % at 96², 70.0 % at 128² (docs/demo.md).",
)
flags.DEFINE_integer(
    "num_clusters",
    64,
    "K, the paper's 64. Chosen on the validation split: RGB ActionVLAD stage 2 "
    "reached 75.0 % with K = 16 or 32 and 86.7 % with 64 (docs/demo.md).",
)
flags.DEFINE_string(
    "flow_method",
    "tvl1_tf_fast",
    "Optical flow for the demo: Dual TV-L1, the release's algorithm, with a short schedule, in "
    "TensorFlow (tvl1_tf_fast; tvl1_fast is the same schedule in OpenCV, within 0.05 px of it and about half "
    "as fast on 2 cores; extract_flow.py's default, full tvl1, takes ~15× longer). dis and farneback are "
    "faster but blur the demo's small objects into blobs, so that flow cannot tell their shapes apart "
    "(docs/demo.md).",
)
flags.DEFINE_float(
    "flow_bound",
    5.0,
    "Flow is clipped to ±bound pixels before quantisation (release: 20 for "
    "real videos; the demo's objects move 2–4 pixels per frame, which 20 would squeeze "
    "into a sixth of the 0–255 range).",
)
flags.DEFINE_integer("baseline_steps", 300, "Updates of each two-stream frame network.")
flags.DEFINE_float("baseline_learning_rate", 1e-3, "Adam learning rate of the two-stream frame networks.")
flags.DEFINE_integer("stage1_steps", 300, "Updates of stage 1 (paper: 10000).")
flags.DEFINE_float("stage1_learning_rate", 0.01, "Stage 1 learning rate (release 0.01).")
flags.DEFINE_integer("stage2_steps", 100, "Updates of stage 2 (paper: 8000).")
flags.DEFINE_float(
    "stage2_learning_rate",
    1e-3,
    "Stage 2 learning rate (release 1e-4 for 8000 updates; the demo's 100 "
    "updates at 1e-3 took RGB ActionVLAD from 86.7 to 95.0 % on the validation split, docs/demo.md).",
)
flags.DEFINE_float(
    "flow_weight",
    0.667,
    "Late fusion (1 - w)·RGB + w·flow of raw logits; the release's 2:1 for flow (§6.3). The demo's classes "
    "include a pair that only flow tells apart (actionvlad_tf/prep/synthetic.py, docs/demo.md).",
)
flags.DEFINE_integer("batch_size", 4, "Videos per micro-batch (clipped as one); 16 per update, as the release.")
flags.DEFINE_integer("seed", 0, "Seed of the data, the backbone and training.")
flags.DEFINE_list(
    "seeds",
    [],
    "Run the whole demo once per seed (in <output_dir>/seed_N) and write the mean ± standard deviation of every row.",
)
flags.DEFINE_string("seeds_table", None, "Also write the several-seeds table (Markdown) to this file.")
flags.DEFINE_string(
    "mixed_precision",
    "auto",
    "auto (bfloat16 only on a CPU with native bfloat16, else "
    "float32; see actionvlad_tf.hardware), float32, bfloat16 or float16.",
)
flags.DEFINE_integer("jobs", 2, "Steps run side by side (each with cores / jobs TensorFlow threads).")
flags.DEFINE_integer("predict_videos", 3, "Held-out test videos classified through the SavedModel at the end.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    from actionvlad_tf import demo, hardware

    policy, reason = hardware.choose_precision(FLAGS.mixed_precision)
    precision = {"mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}.get(policy, policy)
    config = dict({name: FLAGS[name].value for name in demo.CONFIG_KEYS}, jobs=FLAGS.jobs)
    out = os.path.abspath(FLAGS.output_dir)
    if FLAGS.seeds:
        demo.run_seeds(config, out, FLAGS.seeds, precision, reason, [FLAGS.seeds_table] if FLAGS.seeds_table else [])
    else:
        demo.run_demo(config, out, precision, reason)


if __name__ == "__main__":
    app.run(main)
