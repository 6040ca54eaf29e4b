r"""Does a backbone's conv5 separate the demo's objects? Linear probes (shape, colour, shape×colour)
on the demo's frames, for the given weights and for random He-initialised VGG-16s
(`actionvlad_tf.evaluation.probe`; docs/pretrained_standin.md).

  python experiments/probe_backbone.py --work_dir=/tmp/probe --backbone_weights=demo_standin \
      --backbone_width=0.25 --random_widths=0.25,1

Generates the demo dataset (`data_prep/make_demo_dataset.py`'s library call) and extracts its frames
(`data_prep/extract_frames.py`'s) under --work_dir unless they are there, then prints and writes
`<work_dir>/probe.json`.
"""

import json
import os

from absl import app, flags

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from actionvlad_tf.data import augment  # noqa: E402
from actionvlad_tf.evaluation import probe  # noqa: E402
from actionvlad_tf.prep import extraction, synthetic  # noqa: E402

flags.DEFINE_string("work_dir", None, "Folder for the demo dataset, its frames and probe.json.", required=True)
flags.DEFINE_string("backbone_weights", "demo_standin", "Weights to probe (a shipped name or a file).")
flags.DEFINE_float("backbone_width", 0.25, "VGG-16 width of --backbone_weights.")
flags.DEFINE_list("random_widths", ["0.25", "1"], "Widths of random He-initialised VGG-16s to compare.")
flags.DEFINE_integer("image_size", 64, "The demo's crop side; frames are resized as the pipeline does for it.")
flags.DEFINE_integer("frame_step", 2, "Probe every N-th frame of each sub-action.")
flags.DEFINE_integer("train_per_class", 10, "Demo training videos per class.")
flags.DEFINE_integer("test_per_class", 5, "Demo test videos per class.")
flags.DEFINE_integer("seed", 0, "Seed of the demo data and the random backbones.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    import keras

    from actionvlad_tf.models.vgg16 import build_vgg16
    from actionvlad_tf.training.pretrain import cpu_description, he_initialise

    demo_dir, frames_dir = os.path.join(FLAGS.work_dir, "demo"), os.path.join(FLAGS.work_dir, "frames")
    synthetic.generate_demo_dataset(
        demo_dir,
        train_per_class=FLAGS.train_per_class,
        test_per_class=FLAGS.test_per_class,
        seed=FLAGS.seed,
        progress=False,
    )
    jobs, _ = extraction.find_videos(os.path.join(demo_dir, "videos"))
    summary = extraction.extract_frames(jobs, frames_dir, progress=False)
    if not summary.ok:
        raise SystemExit(summary.report())
    frames, labels, is_train = probe.demo_frames(demo_dir, frames_dir, FLAGS.frame_step)
    resize_shape = augment.default_resize_shape(FLAGS.image_size)
    backbones = {
        f"{FLAGS.backbone_weights} (width {FLAGS.backbone_width:g})": build_vgg16(
            weights=FLAGS.backbone_weights, width=FLAGS.backbone_width
        )
    }
    for width in FLAGS.random_widths:
        keras.utils.set_random_seed(FLAGS.seed)
        backbones[f"random He (width {float(width):g})"] = he_initialise(build_vgg16(width=float(width)), FLAGS.seed)
    results = {
        "frames": {"train": int(is_train.sum()), "test": int((~is_train).sum())},
        "resize_shape": list(resize_shape),
        "chance": probe.chance(labels, is_train),
        "cpu": cpu_description(),
        "probes": {},
    }
    for name, backbone in backbones.items():
        results["probes"][name] = probe.linear_probe(
            probe.conv5_pooled(backbone, frames, resize_shape), labels, is_train, FLAGS.seed
        )
    print(
        f"{results['frames']} frames resized to {resize_shape}; test accuracy of linear probes on conv5 "
        "(global max + mean):"
    )
    print(f"{'backbone':32s} " + " ".join(f"{t:>12s}" for t in probe.TARGETS))
    for name, scores in [("chance (majority)", results["chance"])] + list(results["probes"].items()):
        print(f"{name:32s} " + " ".join(f"{scores[t]:12.3f}" for t in probe.TARGETS))
    with open(os.path.join(FLAGS.work_dir, "probe.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    app.run(main)
