r"""Makes the demo's offline stand-ins: for ImageNet VGG-16 weights, the VGG-16 topology pretrained from
scratch on generated stills (`--modality=rgb`, `actionvlad_tf.prep.stills`); for the release's flow
network, the same topology with a 20-channel first layer pretrained on generated flow stacks
(`--modality=flow`, `actionvlad_tf.prep.flow_stacks`); both by `actionvlad_tf.training.pretrain`.

  python experiments/pretrain_backbone.py --output=standin
  # writes standin.weights.h5 (the backbone), standin.heads.npz (the task's heads), standin.json (card)
  python experiments/pretrain_backbone.py --modality=flow --output=standin_flow

`--backbone_weights=standin.weights.h5 --backbone_width=<width>` then loads it like ImageNet's file.
The shipped files (`--backbone_weights=demo_standin`, `demo_standin_flow`) were made with the commands
in their cards, actionvlad_tf/zoo/*.json (docs/pretrained_standin.md).
"""

import os
import shlex
import sys

from absl import app, flags

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from actionvlad_tf.training import pretrain  # noqa: E402

_DEFAULTS = pretrain.PretrainConfig()
flags.DEFINE_string(
    "output", None, "Output prefix: writes <output>.weights.h5, <output>.heads.npz and <output>.json.", required=True
)
flags.DEFINE_enum(
    "modality",
    _DEFAULTS.modality,
    sorted(pretrain.TASKS),
    "rgb: generated stills (shape, colour, texture); flow: generated flow stacks (shape, motion).",
)
flags.DEFINE_float("width", _DEFAULTS.width, "VGG-16 width multiplier (1 = the paper's VGG-16).")
flags.DEFINE_integer("image_size", _DEFAULTS.image_size, "Side of the square stills (the demo's crop side).")
flags.DEFINE_integer("steps", _DEFAULTS.steps, "Adam updates.")
flags.DEFINE_integer("batch_size", _DEFAULTS.batch_size, "Stills per update.")
flags.DEFINE_float("learning_rate", _DEFAULTS.learning_rate, "Peak learning rate (after warm-up; cosine decay).")
flags.DEFINE_integer("warmup_steps", _DEFAULTS.warmup_steps, "Linear warm-up updates.")
flags.DEFINE_float("clipnorm", _DEFAULTS.clipnorm, "Global gradient-norm clip (0: none).")
flags.DEFINE_float("label_smoothing", _DEFAULTS.label_smoothing, "Label smoothing of every head.")
flags.DEFINE_float(
    "aux_weight", _DEFAULTS.aux_weight, "Loss weight of the conv3_3 and conv4_3 heads (deep supervision)."
)
flags.DEFINE_float("dropout", _DEFAULTS.dropout, "Dropout on the pooled conv5 vector before the heads.")
flags.DEFINE_integer(
    "curriculum_steps",
    _DEFAULTS.curriculum_steps,
    "Updates over which the sampled objects widen from the larger half to all sizes (0: off).",
)
flags.DEFINE_integer("train_images", _DEFAULTS.train_images, "Generated training stills.")
flags.DEFINE_integer("val_images", _DEFAULTS.val_images, "Generated held-out validation stills.")
flags.DEFINE_list("radius_range", None, "Object radius range in px (default: the task's, rgb 4,20; flow 4,14).")
flags.DEFINE_string(
    "flow_method",
    _DEFAULTS.flow_method,
    "Flow only: the optical flow estimator of the stacks "
    "(as data_prep/extract_flow.py --method; the demo's is tvl1_fast).",
)
flags.DEFINE_float(
    "flow_bound", _DEFAULTS.flow_bound, "Flow only: the quantisation bound in px (the demo's --flow_bound)."
)
flags.DEFINE_integer("eval_every", _DEFAULTS.eval_every, "Validate every N updates (0: at the end only).")
flags.DEFINE_bool(
    "mixed_precision",
    None,
    "bfloat16 compute (the weights file is float32 or float16 regardless); default: where the "
    "CPU has native bfloat16 (AVX512-BF16 / AMX), else float32.",
)
flags.DEFINE_string(
    "init_weights",
    None,
    "Start the backbone from these weights (a file or shipped name, as "
    "--backbone_weights; a 3-channel first layer becomes cross-modal for flow) instead of He "
    "initialisation.",
)
flags.DEFINE_bool("float16", False, "Store the weights file in float16 (half the size; loads into float32).")
flags.DEFINE_integer("seed", _DEFAULTS.seed, "Seed of the stills, the initialisation and the batches.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    config = pretrain.PretrainConfig(
        modality=FLAGS.modality,
        flow_method=FLAGS.flow_method,
        flow_bound=FLAGS.flow_bound,
        width=FLAGS.width,
        image_size=FLAGS.image_size,
        steps=FLAGS.steps,
        batch_size=FLAGS.batch_size,
        learning_rate=FLAGS.learning_rate,
        warmup_steps=FLAGS.warmup_steps,
        clipnorm=FLAGS.clipnorm,
        label_smoothing=FLAGS.label_smoothing,
        aux_weight=FLAGS.aux_weight,
        dropout=FLAGS.dropout,
        curriculum_steps=FLAGS.curriculum_steps,
        train_images=FLAGS.train_images,
        val_images=FLAGS.val_images,
        radius_range=tuple(float(v) for v in FLAGS.radius_range) if FLAGS.radius_range else None,
        mixed_precision=FLAGS.mixed_precision,
        seed=FLAGS.seed,
        eval_every=FLAGS.eval_every,
        init_weights=FLAGS.init_weights,
    )
    model, summary = pretrain.pretrain(config)
    weights = pretrain.save_backbone_weights(model, f"{FLAGS.output}.weights.h5", float16=FLAGS.float16)
    pretrain.save_heads(model, f"{FLAGS.output}.heads.npz", FLAGS.modality)
    command = "python experiments/pretrain_backbone.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    pretrain.write_card(f"{FLAGS.output}.json", summary, command=command, weights_file=weights)
    print(
        f"wrote {weights} and {FLAGS.output}.json: val accuracy {summary['val_accuracy']}, "
        f"{summary['seconds']} s on {summary['cpu']}"
    )


if __name__ == "__main__":
    app.run(main)
