"""The release's TF 0.12 slim checkpoints → Keras ActionVLAD weights (release §1.7, §2.4, §5).

Variable names of the release (§1.7), under a stream prefix (`stream0/`, or `stream1/` for the
flow stream of a two-stream checkpoint, or none for `checkpoint_style` None, §2.4):

| release variable | shape | Keras weight |
|---|---|---|
| `vgg_16/convX/convX_Y/weights`, `biases` | [3,3,Cin,Cout], [Cout] | `blockX_convY` kernel, bias (HWIO) |
| `vgg_16/fc6`, `fc7`, `fc8` `/weights`, `/biases` | [7,7,512,4096], … | `fc1`, `fc2`, `predictions` (as Dense) |
| `NetVLAD/centers` | [K, D] | pooling `centers` |
| `NetVLAD/vlad_W` | [1, 1, D, K] | pooling `assignment_kernel` [D, K] |
| `NetVLAD/vlad_B` | [K] | pooling `assignment_bias` |
| `classifier/logits/weights`, `biases` | [K·D, C], [C] | `classifier` kernel, bias (rows k·D + d, the layer's order) |

Optimiser state (`…/Adam`, `…/Adam_1`, `beta1_power`, `global_step`, …) is not model state and is
passed over (the release never restores it either, §2.4). Every other variable under the prefix
that no Keras weight takes is reported as unmapped; a Keras weight without a variable is missing.

The release's k-means centres are pickled sklearn `KMeans` objects (Python 2, sklearn 0.17, §5).
`kmeans_centers_from_pickle` reads them with an unpickler restricted to numpy and sklearn globals,
but unpickling still runs code from the file: it warns, and is only reached through an explicit
call (the `kmeans` subcommand of `experiments/convert_release_checkpoint.py`).
"""

import dataclasses
import os
import pickle
import warnings

import numpy as np
import tensorflow as tf

from actionvlad_tf.centers import save_centers
from actionvlad_tf.models import backbones, release_head_variables
from actionvlad_tf.models.vgg16 import VGG16_BLOCKS

# Suffixes of optimiser slots of the TF1 optimisers the release offers (§2.1 `--optimizer`).
OPTIMIZER_SLOT_SUFFIXES = (
    "/Adam",
    "/Adam_1",
    "/Momentum",
    "/RMSProp",
    "/RMSProp_1",
    "/Adagrad",
    "/Adadelta",
    "/Adadelta_1",
    "/Ftrl",
    "/Ftrl_1",
    "/ExponentialMovingAverage",
)
NON_MODEL_VARIABLES = ("global_step", "beta1_power", "beta2_power")
# slim's fully connected VGG layers are convolutions; Keras's VGG names them as Dense layers.
FC_LAYERS = {"fc1": "fc6", "fc2": "fc7", "predictions": "fc8"}


@dataclasses.dataclass
class ConversionReport:
    """What a conversion did: (checkpoint key, Keras weight) pairs, and what it could not match."""

    checkpoint: str
    prefix: str
    assigned: list = dataclasses.field(default_factory=list)
    missing: list = dataclasses.field(default_factory=list)
    unmapped: list = dataclasses.field(default_factory=list)
    ignored: list = dataclasses.field(default_factory=list)
    outside_prefix: list = dataclasses.field(default_factory=list)

    def summary(self):
        lines = [
            f"{self.checkpoint} (prefix {self.prefix!r}): {len(self.assigned)} variables assigned, "
            f"{len(self.ignored)} optimiser/step variables passed over, "
            f"{len(self.outside_prefix)} outside the prefix",
        ]
        for title, names in (
            ("missing (Keras weights without a checkpoint variable)", self.missing),
            ("unmapped (checkpoint variables no Keras weight took)", self.unmapped),
        ):
            lines.append(f"{title}: {len(names)}")
            lines.extend(f"  {name}" for name in names)
        return "\n".join(lines)


def resolve_checkpoint(path):
    """A checkpoint prefix from a file prefix (V1 `.ckpt` file or V2 prefix) or a directory."""
    path = os.fspath(path)
    if os.path.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest is None:
            raise FileNotFoundError(f"{path}: no checkpoint (no 'checkpoint' file) in this directory")
        return latest
    if not (os.path.exists(path) or os.path.exists(path + ".index")):
        if os.path.exists(path + ".data-00000-of-00001"):
            raise FileNotFoundError(
                f"{path}: only the .data shard exists, the .index file is missing; TensorFlow cannot "
                "read a V2 checkpoint without it (the released Charades checkpoint, release §8 row 24)"
            )
        raise FileNotFoundError(f"{path}: no such checkpoint (neither the file nor {path}.index)")
    return path


def read_checkpoint(path):
    """{variable name: numpy array} of a TF1 V1 or V2 (or TF2 name-based) checkpoint."""
    path = resolve_checkpoint(path)
    reader = tf.train.load_checkpoint(path)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def detect_prefix(names):
    """The stream prefix of a single-stream checkpoint: `stream0/` or '' (no stream scope, §2.4)."""
    if any(name.startswith("stream0/") for name in names):
        return "stream0/"
    if any(name.startswith(("vgg_16/", "NetVLAD/", "classifier/")) for name in names):
        return ""
    raise ValueError(
        "cannot tell the checkpoint's stream prefix: no variable starts with stream0/, vgg_16/, "
        f"NetVLAD/ or classifier/ (first names: {sorted(names)[:5]})"
    )


def is_optimizer_state(name):
    return name.split("/")[-1] in NON_MODEL_VARIABLES or name.endswith(OPTIMIZER_SLOT_SUFFIXES)


def _backbone_names(backbone, prefix):
    names = {}
    for block, num_convs, _ in VGG16_BLOCKS:
        for i in range(1, num_convs + 1):
            names[f"block{block}_conv{i}"] = f"{prefix}vgg_16/conv{block}/conv{block}_{i}"
    names.update({keras_name: f"{prefix}vgg_16/{slim_name}" for keras_name, slim_name in FC_LAYERS.items()})
    layers = {layer.name: layer for layer in backbone.layers}
    pairs = []
    for layer_name, scope in names.items():
        if layer_name in layers:
            layer = layers[layer_name]
            pairs += [(f"{scope}/weights", layer.kernel), (f"{scope}/biases", layer.bias)]
    return pairs


def release_variable_pairs(model, prefix="stream0/"):
    """[(release checkpoint name, Keras variable)] for a single-stream model from
    `build_actionvlad` (VGG-16; netvlad, avg or max pooling) or `build_frame_classifier`."""
    found = backbones(model)
    if len(found) != 1:
        raise ValueError(
            f"{model.name}: expected one backbone (a single-stream model), found "
            f"{[b.name for b in found]}; convert each stream of a two-stream model "
            "separately (see convert_two_stream)"
        )
    return _backbone_names(found[0], prefix) + release_head_variables(model, prefix)


def _fit_shape(name, value, variable):
    """The checkpoint value in the Keras variable's shape: identical, or a reshape of slim's 1×1 /
    7×7 convolution kernels to Dense (fc6-fc8) and of vlad_W [1, 1, D, K] to [D, K]."""
    target = tuple(variable.shape)
    if value.shape == target:
        return value
    reshapable = name.endswith("NetVLAD/vlad_W") or "/vgg_16/fc" in f"/{name}"
    if reshapable and value.size == int(np.prod(target)) and value.shape[-1] == target[-1]:
        return value.reshape(target)  # HWIO flattens in the order of Keras's Flatten (NHWC)
    raise ValueError(
        f"checkpoint variable {name} has shape {value.shape}, the Keras weight {variable.path} needs {target}"
    )


def load_release_checkpoint(model, checkpoint, prefix=None, allow_missing=False, values=None):
    """Assigns a release checkpoint's variables to a single-stream Keras model.

    Args:
        model: from `build_actionvlad` (modality and K as the checkpoint) or `build_frame_classifier`.
        checkpoint: V1 `.ckpt` file, V2 prefix or a directory holding a `checkpoint` file.
        prefix: the stream scope in the checkpoint (`stream0/`, `stream1/` or '' for
            `checkpoint_style` None); None detects `stream0/` or ''.
        allow_missing: leave Keras weights without a checkpoint variable as they are (e.g. the
            ImageNet "uptoConv5" checkpoint has no NetVLAD or classifier) instead of failing.
        values: the checkpoint's {name: array}, if already read.

    Returns a `ConversionReport`; raises `ValueError` naming every missing variable unless
    `allow_missing`, and naming the variable on any shape mismatch (nothing is assigned then).
    """
    values = read_checkpoint(checkpoint) if values is None else values
    prefix = detect_prefix(values) if prefix is None else prefix
    report = ConversionReport(str(checkpoint), prefix)
    updates = []
    for name, variable in release_variable_pairs(model, prefix):
        if name not in values:
            report.missing.append(f"{name} -> {variable.path}")
            continue
        updates.append((variable, _fit_shape(name, values[name], variable)))
        report.assigned.append((name, variable.path))
    if report.missing and not allow_missing:
        raise ValueError(
            f"{checkpoint}: {len(report.missing)} model weights have no checkpoint "
            "variable:\n  " + "\n  ".join(report.missing)
        )
    for variable, value in updates:
        variable.assign(value.astype(np.float32))
    taken = {name for name, _ in report.assigned}
    for name in sorted(values):
        if is_optimizer_state(name):
            report.ignored.append(name)
        elif not name.startswith(prefix):
            report.outside_prefix.append(name)
        elif name not in taken:
            report.unmapped.append(name)
    return report


def convert_two_stream(
    model, rgb_checkpoint, flow_checkpoint=None, rgb_prefix=None, flow_prefix=None, allow_missing=False, values=None
):
    """Loads a late-fusion model from `build_two_stream(fusion="late")`: its `rgb_actionvlad` and
    `flow_actionvlad` streams from two single-stream checkpoints (the released RGB and flow models),
    or from one two-stream checkpoint (`flow_checkpoint` None: `stream0/` RGB, `stream1/` flow,
    §1.5, §2.4). `values`: the RGB checkpoint's {name: array}, if already read. Returns the two
    reports (RGB, flow)."""
    values = read_checkpoint(rgb_checkpoint) if values is None else values
    if flow_checkpoint is None:
        rgb_prefix = "stream0/" if rgb_prefix is None else rgb_prefix
        flow_prefix = "stream1/" if flow_prefix is None else flow_prefix
        flow_values, flow_checkpoint = values, rgb_checkpoint
    else:
        flow_values = read_checkpoint(flow_checkpoint)
    return (
        load_release_checkpoint(model.get_layer("rgb_actionvlad"), rgb_checkpoint, rgb_prefix, allow_missing, values),
        load_release_checkpoint(
            model.get_layer("flow_actionvlad"), flow_checkpoint, flow_prefix, allow_missing, flow_values
        ),
    )


def release_architecture(values, prefix=None):
    """Model arguments read off a checkpoint's shapes: modality (conv1_1 input channels),
    num_clusters and descriptor size (NetVLAD centres), num_classes (classifier or fc8 bias),
    pooling ("netvlad" when NetVLAD variables exist, else None) and whether fc6-fc8 exist."""
    prefix = detect_prefix(values) if prefix is None else prefix
    first = values.get(f"{prefix}vgg_16/conv1/conv1_1/weights")
    if first is None:
        raise ValueError(f"no {prefix}vgg_16/conv1/conv1_1/weights: not a VGG-16 release checkpoint")
    channels = first.shape[2]
    modality = {3: "rgb", 20: "flow"}.get(channels)
    if modality is None:
        raise ValueError(f"conv1_1 has {channels} input channels; expected 3 (RGB) or 20 (flow)")
    centers = values.get(f"{prefix}NetVLAD/centers")
    bias = values.get(f"{prefix}classifier/logits/biases", values.get(f"{prefix}vgg_16/fc8/biases"))
    return {
        "modality": modality,
        "pooling": "netvlad" if centers is not None else None,
        "num_clusters": None if centers is None else int(centers.shape[0]),
        "descriptor_size": None if centers is None else int(centers.shape[1]),
        "num_classes": None if bias is None else int(bias.shape[0]),
        "include_top": f"{prefix}vgg_16/fc8/weights" in values,
    }


class _PickledObject:
    """Stand-in for any sklearn class: keeps the pickled state, runs none of sklearn's code."""

    def __setstate__(self, state):
        self.state = state


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals a pickled sklearn estimator with numpy arrays needs."""

    ALLOWED = {
        ("copy_reg", "_reconstructor"),
        ("copyreg", "_reconstructor"),
        ("__builtin__", "object"),
        ("builtins", "object"),
        ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module, name):
        if module.split(".")[0] == "sklearn":
            return _PickledObject
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refusing to load global {module}.{name}: a k-means pickle "
            "holds only numpy arrays and an sklearn estimator"
        )


def kmeans_centers_from_pickle(path):
    """`cluster_centers_` [K, D] float32 of a pickled sklearn KMeans (the release's `.pkl`, §5).

    Unpickling runs code stored in the file. The unpickler accepts only numpy and sklearn globals
    (sklearn classes are replaced by inert stand-ins, so any sklearn version and Python 2 pickles
    load), but only convert files from a source you trust.
    """
    warnings.warn(
        f"unpickling {path} runs code stored in the file; convert only pickles you trust", UserWarning, stacklevel=2
    )
    with open(path, "rb") as f:
        try:
            obj = _RestrictedUnpickler(f, encoding="latin1").load()
        except (pickle.UnpicklingError, EOFError, AttributeError, ValueError) as error:
            raise ValueError(f"{path}: not a readable k-means pickle ({error})") from error
    state = getattr(obj, "state", None)
    if not isinstance(state, dict) or "cluster_centers_" not in state:
        raise ValueError(f"{path}: the pickled object has no cluster_centers_ (not a fitted KMeans)")
    centers = np.asarray(state["cluster_centers_"], np.float32)
    if centers.ndim != 2:
        raise ValueError(f"{path}: cluster_centers_ has shape {centers.shape}, expected [K, D]")
    return centers


def save_centers_npz(centers, path):
    """Writes the centres in the project's format (`actionvlad_tf.centers`, WORKSPACE.md)."""
    save_centers(path, centers, source="release k-means pickle")
    return path
