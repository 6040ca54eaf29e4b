r"""The main job on the built-in demo data: the whole ActionVLAD pipeline, end to end, offline.

  python experiments/demo.py --output_dir=demo_out

1. generate the demo dataset (real video files of composite actions, `actionvlad_tf.prep.synthetic`),
2. extract frames and optical flow and make the split lists (`data_prep/*`),
3. for RGB and for flow: train and test the two-stream baseline (frame-level VGG-16, logits averaged
   over frames); cluster conv5 descriptors (k-means); train avg pooling, max pooling and ActionVLAD
   in two stages (classifier over the fixed pooled vector, then conv5 + pooling + classifier);
   evaluate every model,
4. late-fuse RGB and flow logits (1:2, raw logits, as the release), export the two-stream
   ActionVLAD as a SavedModel, and print a table shaped like the paper's Tables 1, 2b and 3.

Every step runs the project's real entry point in a subprocess; the commands are printed and each
step's output goes to `<output_dir>/logs/`. A finished step (its output present) is skipped on a
re-run, so an interrupted demo resumes. Everything lands under `--output_dir`: `data/`, `runs/`,
`results/<model>/` (logits.h5, results.json, confusion), `export/`, `results.json`.

The demo keeps the release's recipe but is sized for two CPU cores (small frames, T = 10, K = 16,
few steps); the paper's values stay the defaults of the entry points. Without network access there
are no ImageNet weights, so the backbone is a seeded He-initialised VGG-16, identical for every model
(`--backbone_weights=imagenet` uses the ImageNet weights where they can be downloaded). With a random
backbone the conv features are weak; the table reports what it measures.
"""
import os
import shutil
import subprocess
import sys
import time

from absl import app, flags

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

flags.DEFINE_string("output_dir", "demo_out", "Where the demo writes everything.")
flags.DEFINE_string("backbone_weights", "random",
                    "random (seeded He-initialised VGG-16, offline) or imagenet (Keras's VGG16 file).")
flags.DEFINE_integer("num_classes", 6, "Demo classes (data_prep/make_demo_dataset.py).")
flags.DEFINE_integer("train_per_class", 10, "Training videos per class.")
flags.DEFINE_integer("test_per_class", 5, "Test videos per class.")
flags.DEFINE_integer("frames_per_video", 10, "T for the video-level models (paper: 25).")
flags.DEFINE_integer("image_size", 64, "Crop side (paper: 224).")
flags.DEFINE_integer("num_clusters", 16, "K (paper: 64).")
flags.DEFINE_string("flow_method", "dis", "Optical flow for the demo (tvl1 is the default of extract_flow.py "
                    "but takes ~15 CPU-minutes on the demo videos).")
flags.DEFINE_integer("baseline_steps", 150, "Updates of the two-stream frame baseline.")
flags.DEFINE_integer("stage1_steps", 100, "Updates of stage 1 (paper: 10000).")
flags.DEFINE_integer("stage2_steps", 50, "Updates of stage 2 (paper: 8000).")
flags.DEFINE_integer("batch_size", 4, "Videos per micro-batch; iter_size makes 16 per update, as the release.")
flags.DEFINE_integer("seed", 0, "Seed of the data, the backbone and training.")
flags.DEFINE_bool("mixed_precision", True, "bfloat16 compute on CPU (about 2× faster for VGG-16).")
FLAGS = flags.FLAGS

PIXEL_SCALE = 64.0  # about the standard deviation of mean-subtracted 0-255 pixels
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STREAMS = ("rgb", "flow")
POOLINGS = ("avg", "max", "netvlad")
ROWS = (
    ("two_stream", "Two-stream (frame logits averaged)"),
    ("avg", "Avg pooling, conv5 (stage 2)"),
    ("max", "Max pooling, conv5 (stage 2)"),
    ("netvlad_stage1", "ActionVLAD, non-trained (stage 1)"),
    ("netvlad", "ActionVLAD (stage 2)"),
)


class Steps:
    """Runs entry points in subprocesses, logs them, and skips a step whose output exists."""

    def __init__(self, output_dir):
        self.logs = os.path.join(output_dir, "logs")
        os.makedirs(self.logs, exist_ok=True)
        self.seconds = {}

    def run(self, name, script, done, **flag_values):
        if done and os.path.exists(done):
            print(f"[skip] {name}: {os.path.relpath(done)} exists")
            return
        args = [f"--{key}={value}" for key, value in flag_values.items()]
        command = [sys.executable, os.path.join(REPO, script)] + args
        print(f"[run ] {name}: python {script} {' '.join(args)}", flush=True)
        start = time.time()
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        log = os.path.join(self.logs, f"{name}.log")
        with open(log, "w") as out:
            code = subprocess.call(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        self.seconds[name] = round(time.time() - start, 1)
        if code != 0:
            with open(log) as f:
                tail = f.read()[-3000:]
            raise RuntimeError(f"step {name} failed (exit {code}); log {log}:\n{tail}")


def write_backbone_init(path, image_size, seed):
    """A seeded He-initialised VGG-16 (fc6/fc7 sized for `image_size`): the demo's stand-in for
    ImageNet weights when none can be downloaded. Glorot-initialised (Keras's default) plain VGG-16
    features shrink ~2× per layer; He keeps their scale, and the first kernel is divided by the
    pixel scale (inputs are 0-255 minus means) so activations stay near unit variance."""
    if os.path.exists(path):
        return
    import keras

    from actionvlad_tf.atomic import atomic_keras_output
    from actionvlad_tf.models.vgg16 import build_vgg16

    keras.utils.set_random_seed(seed)
    model = build_vgg16(conv_endpoint="fc7", input_shape=(image_size, image_size))
    initializer = keras.initializers.HeNormal(seed=seed)
    for layer in model.layers:
        if layer.weights:
            scale = 1.0 / PIXEL_SCALE if layer.name == "block1_conv1" else 1.0
            layer.weights[0].assign(initializer(layer.weights[0].shape) * scale)
    with atomic_keras_output(path) as temporary:
        model.save_weights(temporary)


def fuse_all(results_dir, list_file):
    """Late fusion (raw logits, flow weight 0.667, release §6.3) of every method's two streams."""
    import numpy as np

    from actionvlad_tf.data.lists import read_list
    from actionvlad_tf.evaluation import late_fusion, read_logits, top_k_accuracy

    labels = np.array([entry.label for entry in read_list(list_file)])
    table = {}
    for key, _ in ROWS:
        row = {}
        logits = {}
        for stream in STREAMS:
            logits[stream] = read_logits(os.path.join(results_dir, f"{stream}_{key}", "logits.h5"),
                                         expected_rows=len(labels))
            row[stream] = top_k_accuracy(logits[stream], labels, 1)
        row["fused"] = top_k_accuracy(late_fusion(logits["rgb"], logits["flow"]), labels, 1)
        table[key] = {name: float(value) for name, value in row.items()}
    return table


def print_table(table, num_classes):
    print(f"\nDemo results: top-1 accuracy (%) on the test videos, {num_classes} classes "
          f"(chance {100 / num_classes:.1f})")
    print(f"{'Method':<40}{'RGB':>8}{'Flow':>8}{'Late fuse':>11}")
    for key, label in ROWS:
        row = table[key]
        print(f"{label:<40}{row['rgb']:>8.1f}{row['flow']:>8.1f}{row['fused']:>11.1f}")


def main(argv):
    del argv
    start = time.time()
    out = os.path.abspath(FLAGS.output_dir)
    data, runs, results = (os.path.join(out, d) for d in ("data", "runs", "results"))
    steps = Steps(out)
    lists = os.path.join(data, "lists")

    steps.run("dataset", "data_prep/make_demo_dataset.py", os.path.join(data, "manifest.json"),
              output_dir=data, num_classes=FLAGS.num_classes, train_per_class=FLAGS.train_per_class,
              test_per_class=FLAGS.test_per_class, seed=FLAGS.seed)
    steps.run("frames", "data_prep/extract_frames.py", None, videos=os.path.join(data, "videos"),
              output_dir=os.path.join(data, "frames"), num_workers=2)
    steps.run("flow", "data_prep/extract_flow.py", None, frames=os.path.join(data, "frames"),
              output_dir=os.path.join(data, "flow"), method=FLAGS.flow_method, num_workers=2)
    steps.run("lists", "data_prep/make_lists.py", os.path.join(lists, "test_split1.txt"), dataset="ucf101",
              split_dir=os.path.join(data, "splits"), frames_dir=os.path.join(data, "frames"), output_dir=lists)
    shutil.copyfile(os.path.join(data, "actions.txt"), os.path.join(lists, "actions.txt"))

    backbone = FLAGS.backbone_weights
    if backbone == "random":
        backbone = os.path.join(runs, "backbone_init.weights.h5")
        os.makedirs(runs, exist_ok=True)
        write_backbone_init(backbone, FLAGS.image_size, FLAGS.seed)

    common = dict(
        dataset_name="demo", num_classes=FLAGS.num_classes, dataset_dir=os.path.join(data, "frames"),
        flow_dir=os.path.join(data, "flow"), dataset_list_dir=lists, image_size=FLAGS.image_size,
        seed=FLAGS.seed, mixed_precision=FLAGS.mixed_precision,
    )
    video = dict(frames_per_video=FLAGS.frames_per_video, num_clusters=FLAGS.num_clusters)
    train = dict(batch_size=FLAGS.batch_size, save_every_n_steps=10**6, log_every_n_steps=10)
    cache = os.path.join(runs, "feature_cache")

    def evaluate(stream, key, checkpoint, **model_flags):
        steps.run(f"{stream}_{key}_eval", "experiments/eval.py",
                  os.path.join(results, f"{stream}_{key}", "results.json"), modality=stream,
                  checkpoint_path=checkpoint, results_dir=os.path.join(results, f"{stream}_{key}"),
                  batch_size=5, **common, **video, **model_flags)

    for stream in STREAMS:
        # The two-stream baseline: fc6-fc8 of a frame-level VGG-16 on single random frames (release
        # 005), tested on the mean of T frames' logits. Adam with clipping as the ActionVLAD stages:
        # the release's momentum 0.001 diverges on the random backbone's large activations.
        baseline_dir = os.path.join(runs, f"{stream}_two_stream")
        steps.run(f"{stream}_two_stream_train", "experiments/train.py", os.path.join(baseline_dir, "model.keras"),
                  modality=stream, conv_endpoint="fc8", frames_per_video=1, batch_size=16, iter_size=1,
                  optimizer="adam", learning_rate=1e-4, opt_epsilon=1e-4, clip_gradients=5,
                  backbone_weights=backbone, train_dir=baseline_dir, max_number_of_steps=FLAGS.baseline_steps,
                  save_every_n_steps=10**6, **common)
        evaluate(stream, "two_stream", os.path.join(baseline_dir, "model.keras"), conv_endpoint="fc8")

        centers = os.path.join(runs, f"{stream}_centers.npz")
        steps.run(f"{stream}_cluster", "experiments/cluster.py", centers, modality=stream,
                  backbone_weights=backbone, centers=centers, num_frames=300,
                  num_clusters=FLAGS.num_clusters, **common)
        for pooling in POOLINGS:
            stage1 = os.path.join(runs, f"{stream}_{pooling}_stage1")
            stage2 = os.path.join(runs, f"{stream}_{pooling}_stage2")
            steps.run(f"{stream}_{pooling}_stage1", "experiments/train.py", os.path.join(stage1, "model.keras"),
                      modality=stream, pooling=pooling, stage=1, train_dir=stage1, centers=centers,
                      backbone_weights=backbone, max_number_of_steps=FLAGS.stage1_steps,
                      feature_cache_dir=cache, cache_views=2, **common, **video, **train)
            steps.run(f"{stream}_{pooling}_stage2", "experiments/train.py", os.path.join(stage2, "model.keras"),
                      modality=stream, pooling=pooling, stage=2, train_dir=stage2,
                      checkpoint_path=os.path.join(stage1, "model.keras"), max_number_of_steps=FLAGS.stage2_steps,
                      feature_cache_dir=cache, cache_views=2, **common, **video, **train)
            if pooling == "netvlad":
                evaluate(stream, "netvlad_stage1", os.path.join(stage1, "model.keras"), pooling=pooling)
            evaluate(stream, pooling, os.path.join(stage2, "model.keras"), pooling=pooling)

    steps.run("export", "experiments/export.py", os.path.join(out, "export", "model.keras"),
              rgb_model=os.path.join(runs, "rgb_netvlad_stage2", "model.keras"),
              flow_model=os.path.join(runs, "flow_netvlad_stage2", "model.keras"),
              class_names=os.path.join(lists, "actions.txt"), export_dir=os.path.join(out, "export"))

    table = fuse_all(results, os.path.join(lists, "test_split1.txt"))
    print_table(table, FLAGS.num_classes)
    summary = {
        "top1": table,
        "rows": dict(ROWS),
        "config": {name: FLAGS[name].value for name in (
            "backbone_weights", "num_classes", "train_per_class", "test_per_class", "frames_per_video",
            "image_size", "num_clusters", "flow_method", "baseline_steps", "stage1_steps",
            "stage2_steps", "batch_size", "seed", "mixed_precision")},
        "seconds": {"total": round(time.time() - start, 1), **steps.seconds},
    }
    from actionvlad_tf.atomic import write_json

    write_json(os.path.join(out, "results.json"), summary)
    print(f"\nwall time {summary['seconds']['total']:.0f} s; everything under {out} "
          f"(results.json, results/*/logits.h5 and confusion.png, export/1/)")


if __name__ == "__main__":
    app.run(main)
