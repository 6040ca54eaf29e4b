r"""Export a trained ActionVLAD model for serving: `EXPORT_DIR/<version>/` (SavedModel, TF Serving's
layout) and `EXPORT_DIR/model.keras`.

  python experiments/export.py --model=runs/rgb/model.keras --class_names=lists/actions.txt \
      --export_dir=exports/hmdb51_rgb
  python experiments/export.py --rgb_model=runs/rgb/model.keras --flow_model=runs/flow/model.keras \
      --flow_weight=0.667 --class_names=lists/actions.txt --export_dir=exports/hmdb51_two_stream

`serving_default` takes raw uint8 frames [T, H, W, 3] (`frames`) and, for two streams, flow stacks
[T, H, W, 20] (`flow`) and does the eval preprocessing in the graph (`--num_crops` crops); the
`preprocessed` signature takes preprocessed batches, and `clips` padded batches of whole clips of any
length [B, N, H, W, 3] with `num_frames` [B], sampled in the graph, and `jpeg_clips` the same clips
as JPEG-encoded frames [B, N]. Every signature also gives the pooled vector (`embedding`).

  python experiments/export.py --model=runs/rgb/model.keras --class_names=lists/actions.txt \
      --export_dir=exports/hmdb51_rgb --format=litert,onnx --parity_videos=held_out_videos/

--format=litert writes `model_{float32,float16,int8}.tflite` (--litert_variants) and onnx writes
`model.onnx` (dynamic batch and frame axes), both on preprocessed frames; each file is run by its own
runtime (ai-edge-litert, onnxruntime: the `[export]` extra) against the Keras model on
--parity_videos (or random frames) and the figures are printed and written to `portable.json`.
See docs/export_and_tools.md.
"""

import flagfiles
from absl import app, flags

import actionvlad_tf  # noqa: F401  (registers the layers that load_model needs)
from actionvlad_tf.data.lists import read_class_names
from actionvlad_tf.export import portable, video_batch
from actionvlad_tf.export.saved_model import export_saved_model, load_model_or_late_fusion
from actionvlad_tf.specs import FLOW_WEIGHT

flags.DEFINE_string("model", None, "A trained .keras model (single stream or two-stream).")
flags.DEFINE_string("rgb_model", None, "With --flow_model: separately trained streams, late-fused in the export.")
flags.DEFINE_string("flow_model", None, "The flow stream's .keras model (with --rgb_model).")
flags.DEFINE_float("flow_weight", FLOW_WEIGHT, "w in (1-w)*rgb + w*flow logits (release 0.667).")
flags.DEFINE_string("class_names", None, "Class names in label order (actions.txt / classInd.txt).")
flags.DEFINE_string("export_dir", None, "The model's export folder; versions go in numbered subfolders.")
flags.DEFINE_integer("version", None, "Version folder; default the next free number.")
flags.DEFINE_bool("overwrite", False, "Replace an existing --version.")
flags.DEFINE_integer("num_crops", 1, "Test crops done by serving_default: 1 or 5 (release §3.7).")
flags.DEFINE_integer(
    "clip_frames",
    None,
    "T sampled by the `clips` signature for a model built for any "
    "T (default 25); a model with a fixed T samples its T.",
)
flags.DEFINE_list(
    "format",
    ["saved_model"],
    f"What to write: saved_model (TF Serving), and/or the standalone files of {', '.join(portable.PORTABLE_FORMATS)}.",
)
flags.DEFINE_list(
    "litert_variants",
    list(portable.LITERT_VARIANTS),
    "LiteRT files: float32, float16 (float16 weights), int8 (dynamic-range int8 weights).",
)
flags.DEFINE_string(
    "parity_videos",
    None,
    "Held-out videos (folder or list) on which each LiteRT / ONNX "
    "file is checked against the Keras model; default: random frames.",
)
flags.DEFINE_integer("parity_frames", 25, "T sampled from --parity_videos for a model built for any T.")
flags.mark_flags_as_required(["class_names", "export_dir"])
FLAGS = flags.FLAGS


def main(argv):
    del argv
    if bool(FLAGS.model) == bool(FLAGS.rgb_model and FLAGS.flow_model) or bool(FLAGS.rgb_model) != bool(
        FLAGS.flow_model
    ):
        raise app.UsageError("give either --model, or both --rgb_model and --flow_model")
    unknown = set(FLAGS.format) - {"saved_model", *portable.PORTABLE_FORMATS}
    if unknown:
        raise app.UsageError(f"--format: unknown {sorted(unknown)}")
    model = load_model_or_late_fusion(FLAGS.model, FLAGS.rgb_model, FLAGS.flow_model, FLAGS.flow_weight)
    if "saved_model" in FLAGS.format:
        paths = export_saved_model(
            model,
            FLAGS.export_dir,
            read_class_names(FLAGS.class_names),
            FLAGS.num_crops,
            FLAGS.version,
            FLAGS.overwrite,
            clip_frames=FLAGS.clip_frames,
        )
        print(f"SavedModel: {paths['saved_model']}\nKeras model: {paths['keras']}")
    formats = [f for f in FLAGS.format if f != "saved_model"]
    if formats:
        jobs = video_batch.find_inputs(FLAGS.parity_videos) if FLAGS.parity_videos else ()
        batches = portable.held_out_batches(model, jobs, FLAGS.num_crops, FLAGS.parity_frames)
        for row in portable.export_portable(model, FLAGS.export_dir, formats, FLAGS.litert_variants, batches):
            check = row["parity"]
            print(
                f"{row['format']} {row['variant']}: {row['file']} ({row['bytes'] / 2**20:.1f} MiB); on "
                f"{check['videos']} {'parity' if jobs else 'random'} videos max |Δp| "
                f"{check['max_abs_probability']:.2e}, top-1 agreement {check['top1_agreement']:.1%}"
            )


if __name__ == "__main__":
    flagfiles.run(main)
