r"""Makes the demo's offline stand-in for ImageNet VGG-16 weights: the VGG-16 topology pretrained from
scratch on generated stills (`actionvlad_tf.prep.stills`, `actionvlad_tf.training.pretrain`).

  python experiments/pretrain_backbone.py --output=standin
  # writes standin.weights.h5 (the backbone), standin.heads.npz (the stills heads), standin.json (card)

`--backbone_weights=standin.weights.h5 --backbone_width=<width>` then loads it like ImageNet's file.
The shipped file (`--backbone_weights=demo_standin`) was made with the command in its card,
actionvlad_tf/zoo/demo_standin.json (docs/pretrained_standin.md).
"""
import os
import shlex
import sys

from absl import app, flags

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from actionvlad_tf.training import pretrain  # noqa: E402

_DEFAULTS = pretrain.PretrainConfig()
flags.DEFINE_string("output", None, "Output prefix: writes <output>.weights.h5, <output>.heads.npz and "
                    "<output>.json.", required=True)
flags.DEFINE_float("width", _DEFAULTS.width, "VGG-16 width multiplier (1 = the paper's VGG-16).")
flags.DEFINE_integer("image_size", _DEFAULTS.image_size, "Side of the square stills (the demo's crop side).")
flags.DEFINE_integer("steps", _DEFAULTS.steps, "Adam updates.")
flags.DEFINE_integer("batch_size", _DEFAULTS.batch_size, "Stills per update.")
flags.DEFINE_float("learning_rate", _DEFAULTS.learning_rate, "Peak learning rate (after warm-up; cosine decay).")
flags.DEFINE_integer("warmup_steps", _DEFAULTS.warmup_steps, "Linear warm-up updates.")
flags.DEFINE_float("clipnorm", _DEFAULTS.clipnorm, "Global gradient-norm clip (0: none).")
flags.DEFINE_float("label_smoothing", _DEFAULTS.label_smoothing, "Label smoothing of every head.")
flags.DEFINE_float("aux_weight", _DEFAULTS.aux_weight, "Loss weight of the conv3_3 and conv4_3 heads (deep supervision).")
flags.DEFINE_float("dropout", _DEFAULTS.dropout, "Dropout on the pooled conv5 vector before the heads.")
flags.DEFINE_integer("curriculum_steps", _DEFAULTS.curriculum_steps,
                     "Updates over which the sampled objects widen from the larger half to all sizes (0: off).")
flags.DEFINE_integer("train_images", _DEFAULTS.train_images, "Generated training stills.")
flags.DEFINE_integer("val_images", _DEFAULTS.val_images, "Generated held-out validation stills.")
flags.DEFINE_list("radius_range", [str(v) for v in _DEFAULTS.radius_range], "Object radius range in px.")
flags.DEFINE_integer("eval_every", _DEFAULTS.eval_every, "Validate every N updates (0: at the end only).")
flags.DEFINE_bool("mixed_precision", None,
                  "bfloat16 compute (the weights file is float32 or float16 regardless); default: where the "
                  "CPU has native bfloat16 (AVX512-BF16 / AMX), else float32.")
flags.DEFINE_bool("float16", False, "Store the weights file in float16 (half the size; loads into float32).")
flags.DEFINE_integer("seed", _DEFAULTS.seed, "Seed of the stills, the initialisation and the batches.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    config = pretrain.PretrainConfig(
        width=FLAGS.width, image_size=FLAGS.image_size, steps=FLAGS.steps, batch_size=FLAGS.batch_size,
        learning_rate=FLAGS.learning_rate, warmup_steps=FLAGS.warmup_steps, clipnorm=FLAGS.clipnorm,
        label_smoothing=FLAGS.label_smoothing, aux_weight=FLAGS.aux_weight, dropout=FLAGS.dropout,
        curriculum_steps=FLAGS.curriculum_steps, train_images=FLAGS.train_images, val_images=FLAGS.val_images,
        radius_range=tuple(float(v) for v in FLAGS.radius_range), mixed_precision=FLAGS.mixed_precision,
        seed=FLAGS.seed, eval_every=FLAGS.eval_every)
    model, summary = pretrain.pretrain(config)
    weights = pretrain.save_backbone_weights(model, f"{FLAGS.output}.weights.h5", float16=FLAGS.float16)
    pretrain.save_heads(model, f"{FLAGS.output}.heads.npz")
    command = "python experiments/pretrain_backbone.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    pretrain.write_card(f"{FLAGS.output}.json", summary, command=command, weights_file=weights)
    print(f"wrote {weights} and {FLAGS.output}.json: val accuracy {summary['val_accuracy']}, "
          f"{summary['seconds']} s on {summary['cpu']}")


if __name__ == "__main__":
    app.run(main)
