"""Pretraining the VGG-16 topology on a generated task: the offline stand-ins for ImageNet weights (RGB:
`prep.stills`) and for the release's flow network (flow: `prep.flow_stacks`), docs/pretrained_standin.md.

A task (`TASKS`, by modality) is a generator of labelled inputs, its heads, its input channels, its
preprocessing and its label-preserving horizontal flip. The network is `vgg16.build_vgg16` itself
(conv5 endpoint, plain: no batch norm, He initialisation; 20 input channels for flow) with one
linear head per label — RGB: shape, colour bin, texture; flow: shape, motion — on the global max and
mean of ReLU(conv5_3),
trained from scratch with Adam
(linear warm-up, cosine decay, global gradient-norm clipping, label smoothing, and a size
curriculum that shows the largest 30 % of the objects first). Inputs are preprocessed exactly as the
pipeline does (release §3.5): BGR 0–255 minus the Caffe means, flow minus 128, so the weights
transfer as they are.
The heads sit on conv5, the map ActionVLAD pools, so that every conv5 cell learns to say what
object it sees wherever it is (a fully convolutional task, no fc6/fc7: those stay He-initialised
where a model has them, as in the frame baseline). Only the backbone goes into the weights file
(`save_backbone_weights`): a Keras `.weights.h5` of `build_vgg16(width=w)` (conv1_1 … conv5_3, the
layout of Keras's "notop" ImageNet file), which `--backbone_weights=PATH` loads like ImageNet's; the
heads are kept beside it (`save_heads`) only to check the card's accuracy again.
"""

import dataclasses
import json
import math
import os
import tempfile
import time

import h5py
import keras
import numpy as np
import tensorflow as tf

from actionvlad_tf import hardware
from actionvlad_tf.atomic import atomic_keras_output, atomic_output
from actionvlad_tf.data.augment import BGR_MEANS, FLOW_MEAN
from actionvlad_tf.models import vgg16
from actionvlad_tf.models.builder import copy_layers_by_name
from actionvlad_tf.models.vgg16 import he_initialise  # noqa: F401 (part of this module's API)
from actionvlad_tf.prep import flow_stacks, stills


@dataclasses.dataclass(frozen=True)
class Task:
    """A generated pretraining task: `generate(n, seed, size, radius_range, **options)` → (uint8
    inputs [n, size, size, channels], labels dict with one int array per head and float "radius")."""

    labels: dict  # head → class names, in head order; the first two heads make the "pair" metric
    channels: int
    mean: tuple  # subtracted per channel (the pipeline's preprocessing)
    generate: object
    flip: str  # "mirror": a plain left-right mirror; "flow": mirror and negate the x (even) channels
    description: str
    radius_range: tuple  # default object radii, px
    options: tuple = ()  # (generator keyword, PretrainConfig field) passed on to `generate`

    @property
    def heads(self):
        return tuple(self.labels)

    @property
    def pair(self):
        return "_".join(self.heads[:2])


TASKS = {
    "rgb": Task(
        stills.LABELS,
        3,
        BGR_MEANS,
        stills.generate_stills,
        "mirror",
        "generated stills (actionvlad_tf.prep.stills)",
        stills.DEFAULT_RADIUS_RANGE,
    ),
    "flow": Task(
        flow_stacks.LABELS,
        2 * flow_stacks.FLOW_STACK,
        (FLOW_MEAN,),
        flow_stacks.generate_flow_stacks,
        "flow",
        "generated flow stacks (actionvlad_tf.prep.flow_stacks)",
        flow_stacks.DEFAULT_RADIUS_RANGE,
        (("method", "flow_method"), ("bound", "flow_bound")),
    ),
}
HEADS = TASKS["rgb"].heads  # shape, colour, texture
SMALL_RADIUS = 8.0
# Heads on conv5 (the map ActionVLAD pools) and, as deep supervision, on conv3_3 and conv4_3: their
# short gradient paths get a plain (batch-norm-free) VGG-16 off the loss plateau several times sooner.
SUPERVISED_LAYERS = {
    "conv3": "block3_conv3",
    "conv4": "block4_conv3",
    "conv5": "block5_conv3",
}  # px: objects up to 16 px wide, the demo's hard case


@dataclasses.dataclass
class PretrainConfig:
    """Everything that defines a pretraining run (recorded in the card)."""

    modality: str = "rgb"  # a key of TASKS
    width: float = 0.25
    image_size: int = 64
    steps: int = 1500
    batch_size: int = 64
    learning_rate: float = 1e-3
    warmup_steps: int = 100
    clipnorm: float = 1.0
    label_smoothing: float = 0.1
    aux_weight: float = 0.5  # loss weight of the conv3 and conv4 heads
    dropout: float = 0.2
    curriculum_steps: int = 500
    train_images: int = 16000
    val_images: int = 1000
    radius_range: tuple = None  # None: the task's default
    flow_method: str = "tvl1_fast"  # flow only: the estimator and the quantisation bound of the flow images
    flow_bound: float = flow_stacks.DEFAULT_FLOW_BOUND
    mixed_precision: bool = None  # None: bfloat16 where the CPU computes it natively (`native_bfloat16`)
    seed: int = 0
    eval_every: int = 0  # 0: only at the end
    # Backbone weights to start from instead of He initialisation (a file or shipped name, as
    # --backbone_weights): the flow stand-in starts from the RGB stand-in, its first layer made
    # cross-modal (release §4, TSN), as the release's flow networks started from ImageNet.
    init_weights: str = None


def cpu_description():
    """The CPU model and its vector extensions that matter here (and oneDNN's ISA cap, if set)."""
    info = hardware.cpu_info()
    vector = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in info["flags"]]
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA")
    return f"{info['model']} ({', '.join(vector) or 'no AVX2'})" + (f", ONEDNN_MAX_CPU_ISA={cap}" if cap else "")


def native_bfloat16():
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX; oneDNN's ISA cap respected).
    There, bfloat16 trains several times faster than float32; on AVX2-only machines oneDNN has no
    bfloat16 convolutions (TF aborts), so float32 is used."""
    return hardware.native_bfloat16_cpu()[0]


def build_pretrain_model(width=0.25, image_size=64, dropout=0.2, seed=0, modality="rgb"):
    """inputs [N, S, S, C] (preprocessed) → one logits output per head of the task (RGB: "shape",
    "colour", "texture"; flow: "shape", "motion") from conv5, and the same from conv3_3 and conv4_3
    ("conv3/shape", …: deep supervision, dropped after pretraining). The backbone is the nested model
    "vgg16" (the layers of `build_vgg16`, conv5 endpoint, C input channels, everything trainable,
    tapped at `SUPERVISED_LAYERS`), He-initialised."""
    task = TASKS[modality]
    backbone = vgg16.build_vgg16(
        conv_endpoint="conv5",
        input_shape=(image_size, image_size),
        width=width,
        trainable_from="block1_conv1",
        name="vgg16_conv5",
        modality=modality,
    )
    taps = keras.Model(
        backbone.input, [backbone.get_layer(name).output for name in SUPERVISED_LAYERS.values()], name="vgg16"
    )
    inputs = keras.Input((image_size, image_size, task.channels), name="frames")
    outputs = {}
    for (tap, layer_name), features in zip(SUPERVISED_LAYERS.items(), taps(inputs)):
        features = keras.layers.ReLU(name=f"{tap}_relu")(features)  # conv3_3 has its ReLU already: a no-op
        x = keras.layers.Concatenate(name=f"{tap}_pooled")(
            [
                keras.layers.GlobalMaxPooling2D(name=f"{tap}_max")(features),
                keras.layers.GlobalAveragePooling2D(name=f"{tap}_mean")(features),
            ]
        )
        x = keras.layers.Dropout(dropout, name=f"{tap}_dropout")(x)
        prefix = "" if tap == "conv5" else f"{tap}/"
        for head in task.heads:
            outputs[prefix + head] = keras.layers.Dense(
                len(task.labels[head]), dtype="float32", name=f"{prefix.replace('/', '_')}{head}_logits"
            )(x)
    model = keras.Model(inputs, outputs, name=f"{modality}_pretrain")
    he_initialise(model, seed)
    return model


def preprocess(images, modality="rgb"):
    """uint8 inputs → float32 minus the pipeline's means (release §3.5): BGR stills minus the Caffe
    means, flow stacks minus 128."""
    return tf.cast(images, tf.float32) - tf.constant(TASKS[modality].mean)


def flip(x, modality="rgb"):
    """Left-right mirror of preprocessed inputs [N, S, S, C] that keeps the task's labels: flow x
    channels (even) change sign, 255 − x − 128 = −(x − 128) − 1."""
    x = tf.reverse(x, [2])
    if TASKS[modality].flip == "flow":
        sign = tf.constant([-1.0, 1.0] * (x.shape[-1] // 2))
        x = x * sign + tf.minimum(sign, 0.0)
    return x


def generate(config, count, seed):
    """`count` labelled inputs of the config's task (its modality, image size, radius range)."""
    task = TASKS[config.modality]
    options = {keyword: getattr(config, field) for keyword, field in task.options}
    return task.generate(count, seed, config.image_size, tuple(config.radius_range or task.radius_range), **options)


def evaluate(model, images, labels, batch_size=250, modality="rgb"):
    """Accuracies on (images, labels): per head, the first two heads both right (the task's pair:
    "shape_colour", "shape_motion"), all heads right ("all"), and each of these on small objects
    only (radius ≤ SMALL_RADIUS)."""
    task = TASKS[modality]
    predictions = {head: [] for head in task.heads}
    for start in range(0, len(images), batch_size):
        logits = model(preprocess(images[start : start + batch_size], modality), training=False)
        for head in task.heads:
            predictions[head].append(np.argmax(keras.ops.convert_to_numpy(logits[head]), axis=-1))
    right = {head: np.concatenate(predictions[head]) == labels[head] for head in task.heads}
    right[task.pair] = right[task.heads[0]] & right[task.heads[1]]
    right["all"] = np.logical_and.reduce([right[h] for h in task.heads])
    small = labels["radius"] <= SMALL_RADIUS
    result = {name: float(r.mean()) for name, r in right.items()}
    result.update({f"{name}_small": float(r[small].mean()) for name, r in right.items() if small.any()})
    return result


def chance_levels(modality="rgb"):
    """Accuracy of guessing, per head and for the task's pair of heads together."""
    task = TASKS[modality]
    chance = {head: 1.0 / len(names) for head, names in task.labels.items()}
    chance[task.pair] = chance[task.heads[0]] * chance[task.heads[1]]
    return chance


def _curriculum_indices(rng, order, step, config):
    """A batch of pool indices: from the largest 30 % of the objects at step 0, widening linearly to
    all of them at `curriculum_steps` (`order` sorts the pool by radius, largest first)."""
    fraction = 1.0 if config.curriculum_steps <= 0 else min(1.0, 0.3 + 0.7 * step / config.curriculum_steps)
    eligible = max(config.batch_size, int(round(fraction * len(order))))
    return order[rng.integers(0, eligible, config.batch_size)]


def pretrain(config, log=print):
    """Trains `build_pretrain_model` on generated stills. Returns (model, summary dict)."""
    start = time.time()
    keras.utils.set_random_seed(config.seed)
    if config.mixed_precision is None:
        config = dataclasses.replace(config, mixed_precision=native_bfloat16())
    if config.radius_range is None:
        config = dataclasses.replace(config, radius_range=TASKS[config.modality].radius_range)
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if config.mixed_precision else "float32")
    try:
        model = build_pretrain_model(config.width, config.image_size, config.dropout, config.seed, config.modality)
        if config.init_weights:
            vgg16.load_vgg16_weights(backbone_of(model), config.init_weights)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    task = TASKS[config.modality]
    # Train and validation inputs come from separate seeds: no input is in both.
    train_images, train_labels = generate(config, config.train_images, [config.seed, 0])
    val_images, val_labels = generate(config, config.val_images, [config.seed, 1])
    generated = time.time() - start
    log(f"generated {config.train_images} + {config.val_images} {task.description} in {generated:.0f} s")

    decay_steps = max(1, config.steps - config.warmup_steps)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0 if config.warmup_steps else config.learning_rate,
        decay_steps,
        alpha=0.05,
        warmup_target=config.learning_rate if config.warmup_steps else None,
        warmup_steps=config.warmup_steps,
    )
    optimizer = keras.optimizers.Adam(schedule, global_clipnorm=config.clipnorm or None)
    loss_fn = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=config.label_smoothing)
    depths = {head: len(task.labels[head]) for head in task.heads}

    @tf.function
    @tf.autograph.experimental.do_not_convert  # straight-line code
    def train_step(images, labels, flipped):
        x = preprocess(images, config.modality)
        x = tf.where(flipped[:, None, None, None], flip(x, config.modality), x)  # labels are flip-invariant
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = tf.add_n(
                [
                    (1.0 if "/" not in name else config.aux_weight)
                    * loss_fn(tf.one_hot(labels[name.rpartition("/")[2]], depths[name.rpartition("/")[2]]), value)
                    for name, value in logits.items()
                ]
            )
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    rng = np.random.default_rng([config.seed, 2])
    order = np.argsort(-train_labels["radius"], kind="stable")
    history, running = [], []
    train_start = time.time()
    for step in range(1, config.steps + 1):
        index = _curriculum_indices(rng, order, step - 1, config)
        batch_labels = {h: tf.constant(train_labels[h][index], tf.int32) for h in task.heads}
        loss = float(
            train_step(tf.constant(train_images[index]), batch_labels, tf.constant(rng.random(config.batch_size) < 0.5))
        )
        if not math.isfinite(loss):
            raise FloatingPointError(f"pretraining loss is {loss} at step {step}; lower --learning_rate")
        running.append(loss)
        if step % 50 == 0 or step == config.steps:
            log(f"step {step}/{config.steps} loss {np.mean(running):.3f} ({time.time() - train_start:.0f} s)")
            running = []
        if (config.eval_every and step % config.eval_every == 0) or step == config.steps:
            accuracy = evaluate(model, val_images, val_labels, modality=config.modality)
            history.append({"step": step, "seconds": round(time.time() - start, 1), **accuracy})
            log(f"step {step}: val " + ", ".join(f"{k} {v:.3f}" for k, v in accuracy.items()))
    summary = {
        "config": dataclasses.asdict(config),
        "val_accuracy": history[-1] if history else {},
        "chance": chance_levels(config.modality),
        "history": history,
        "steps": config.steps,
        "seconds": round(time.time() - start, 1),
        "seconds_generating": round(generated, 1),
        "cpu": cpu_description(),
        "tensorflow": tf.__version__,
    }
    return model, summary


def backbone_of(model):
    return model.get_layer("vgg16")


def save_backbone_weights(model, path, float16=False):
    """Writes the pretrained backbone of `model` (or a `build_vgg16` model) as a Keras `.weights.h5`
    of `build_vgg16(width=w)`, conv1_1 … conv5_3 (the layout `vgg16.load_vgg16_weights` reads, like
    Keras's notop ImageNet file); `float16` halves the file (the loader casts back to the model's
    dtype). Returns the path."""
    source = backbone_of(model) if any(layer.name == "vgg16" for layer in model.layers) else model
    first = source.get_layer("block1_conv1")
    width = first.filters / vgg16.VGG16_BLOCKS[0][2]
    plain = vgg16.build_vgg16(width=width, modality=first.kernel.shape[2])  # 3 (RGB) or 20 (flow) channels
    copy_layers_by_name(source, plain, "the pretrained backbone")
    with atomic_keras_output(path) as temporary:
        if not float16:
            plain.save_weights(temporary)
        else:  # Keras writes float32; copy it with float16 datasets (h5 never shrinks in place)
            with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(path))) as folder:
                full = os.path.join(folder, "float32.weights.h5")
                plain.save_weights(full)
                with h5py.File(full, "r") as src, h5py.File(temporary, "w") as dst:
                    _copy_h5(src, dst, np.float16)
    return str(path)


def save_heads(model, path, modality="rgb"):
    """The linear heads (kernel, bias per head, float16) beside the backbone file, so the card's
    validation accuracy can be checked again (`load_pretrain_model`)."""
    arrays = {}
    for head in TASKS[modality].heads:
        kernel, bias = model.get_layer(f"{head}_logits").get_weights()
        arrays[f"{head}/kernel"], arrays[f"{head}/bias"] = kernel.astype(np.float16), bias.astype(np.float16)
    with atomic_output(path) as temporary, open(temporary, "wb") as f:
        np.savez(f, **arrays)
    return str(path)


def load_pretrain_model(weights, heads, width, image_size, modality="rgb"):
    """`build_pretrain_model` with a saved backbone (`save_backbone_weights`: path or shipped name)
    and heads (`save_heads`)."""
    model = build_pretrain_model(width, image_size, modality=modality)
    vgg16.load_vgg16_weights(backbone_of(model), weights)
    with np.load(heads) as arrays:
        for head in TASKS[modality].heads:
            model.get_layer(f"{head}_logits").set_weights([arrays[f"{head}/kernel"], arrays[f"{head}/bias"]])
    return model


def _copy_h5(src, dst, float_dtype):
    """Copies groups, attributes and datasets of `src` into `dst`, floating datasets as `float_dtype`."""
    dst.attrs.update(src.attrs)
    for name, item in src.items():
        if isinstance(item, h5py.Group):
            _copy_h5(item, dst.create_group(name), float_dtype)
        else:
            values = item[()]
            if np.issubdtype(np.asarray(values).dtype, np.floating):
                values = np.asarray(values).astype(float_dtype)
            dst.create_dataset(name, data=values).attrs.update(item.attrs)


def write_card(path, summary, command=None, weights_file=None):
    """The JSON card beside a stand-in weights file: command, seed, width, image size, validation
    accuracy, wall time, CPU."""
    config = summary["config"]
    modality = config.get("modality", "rgb")
    what = {
        "rgb": "an offline stand-in for ImageNet weights, not ImageNet",
        "flow": "an offline stand-in for the release's flow network (a VGG-16 trained on the target "
        "dataset's optical flow), not that network",
    }[modality]
    card = {
        "what": f"VGG-16 topology pretrained from scratch on {TASKS[modality].description}: {what}",
        "modality": modality,
        "weights_file": os.path.basename(weights_file) if weights_file else None,
        "command": command,
        "seed": config["seed"],
        "width": config["width"],
        "image_size": config["image_size"],
        "input": {
            "rgb": "BGR 0-255 minus (104, 117, 123), as the pipeline's RGB stream",
            "flow": f"{config.get('flow_method')} flow stacks of 10 frames (x1, y1, ..., x10, y10), "
            f"quantised with bound {config.get('flow_bound')} px, minus 128, as the pipeline's "
            "flow stream",
        }[modality],
        **{k: summary[k] for k in ("val_accuracy", "chance", "steps", "seconds", "cpu", "tensorflow")},
        "config": config,
        "history": summary["history"],
    }
    with atomic_output(path) as temporary, open(temporary, "w", encoding="utf-8") as f:
        json.dump(card, f, indent=1)
        f.write("\n")
    return card
