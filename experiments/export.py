r"""Export a trained ActionVLAD model for serving: `EXPORT_DIR/<version>/` (SavedModel, TF Serving's
layout) and `EXPORT_DIR/model.keras`.

  python experiments/export.py --model=runs/rgb/model.keras --class_names=lists/actions.txt \
      --export_dir=exports/hmdb51_rgb
  python experiments/export.py --rgb_model=runs/rgb/model.keras --flow_model=runs/flow/model.keras \
      --flow_weight=0.667 --class_names=lists/actions.txt --export_dir=exports/hmdb51_two_stream

`serving_default` takes raw uint8 frames [T, H, W, 3] (`frames`) and, for two streams, flow stacks
[T, H, W, 20] (`flow`) and does the eval preprocessing in the graph (`--num_crops` crops); the
`preprocessed` signature takes preprocessed batches. See docs/export_and_tools.md.
"""
from absl import app, flags

import actionvlad_tf  # noqa: F401  (registers the layers that load_model needs)
from actionvlad_tf.data.lists import read_class_names
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
flags.mark_flags_as_required(["class_names", "export_dir"])
FLAGS = flags.FLAGS


def main(argv):
    del argv
    if bool(FLAGS.model) == bool(FLAGS.rgb_model and FLAGS.flow_model) or bool(FLAGS.rgb_model) != bool(FLAGS.flow_model):
        raise app.UsageError("give either --model, or both --rgb_model and --flow_model")
    model = load_model_or_late_fusion(FLAGS.model, FLAGS.rgb_model, FLAGS.flow_model, FLAGS.flow_weight)
    paths = export_saved_model(model, FLAGS.export_dir, read_class_names(FLAGS.class_names), FLAGS.num_crops,
                               FLAGS.version, FLAGS.overwrite)
    print(f"SavedModel: {paths['saved_model']}\nKeras model: {paths['keras']}")


if __name__ == "__main__":
    app.run(main)
