"""Reads the release's Charades checkpoint from its V2 data shard alone (release §1.7, §8 row 24).

Only `model.ckpt-150000.data-00000-of-00001` was published; the `.index` that holds each tensor's
offset, shape, dtype and checksum was not. The data file itself is recoverable:

* `BundleWriter::Add` (tensorflow/core/util/tensor_bundle/tensor_bundle.cc) appends each tensor's
  raw bytes (little-endian, `TotalBytes()`, no header, no per-tensor framing) and pads to
  `data_alignment`, which is 1 for `SaveV2` — so the file is the tensors back to back.
* `SaveV2` adds tensors in the order the Saver lists them, and the TF1 Saver sorts its
  saveables by name (`saveable_object_util.validate_and_slice_inputs`); a sharded save of one
  device keeps that order and `MergeBundles` only renames the data file.
* The tensors are every global variable: the model's (BN moving statistics included), `global_step`
  (int64) and the optimizer's (Adam: `<var>/Adam`, `<var>/Adam_1` for each trained variable,
  `beta1_power`, `beta2_power`). Knowing names, shapes and dtypes fixes every offset.

The training recipe is unreleased (§7), so which variables were trained and with which optimizer is
not known; it only changes the list of optimizer slots. `candidate_layouts` lists the plausible
recipes and `match_layouts` keeps those whose byte size equals the file's: the size test is exact,
and values that are not finite, or BN variances that are not positive, reject a wrong layout.
What stays unverifiable without the index is the checksums.
"""

import os

import numpy as np

from actionvlad_tf.models.bn_inception import load_release_bn_inception, release_weight_map

# TF1 slot names per optimizer (`<var>/<slot>`) and its non-slot variables (float32 scalars).
OPTIMIZER_SLOTS = {
    "adam": (("Adam", "Adam_1"), ("beta1_power", "beta2_power")),
    "momentum": (("Momentum",), ()),
    "rmsprop": (("RMSProp", "RMSProp_1"), ()),
    "sgd": ((), ()),
}
# Trainable scopes of the plausible recipes, as release `--trainable_scopes` (§2.5): the classifier
# alone (stage 1), + NetVLAD, + the endpoint block (stage 2 as for VGG), or everything (None).
TRAINED_SCOPES = {
    "classifier": ("stream0/classifier",),
    "classifier+netvlad": ("stream0/classifier", "stream0/NetVLAD"),
    "classifier+netvlad+block": ("stream0/classifier", "stream0/NetVLAD", "stream0/InceptionV2_TSN/{block}/"),
    "all": None,
}


def model_variables(model, stream="stream0"):
    """[(release name, shape, "float32")] of a BN-Inception ActionVLAD model (or backbone)."""
    return [(name, shape, "float32") for name, _, shape in release_weight_map(model, stream)]


def checkpoint_variables(variables, trained_scopes=None, optimizer="adam", global_step=True):
    """Every tensor a TF1 Saver writes for a model trained this way, in the Saver's (sorted) order.

    Args:
        variables: [(name, shape, dtype)] model variables (`model_variables`).
        trained_scopes: name prefixes of the variables the optimizer updated (release
            `--trainable_scopes`); None means every trainable one. BatchNorm variables are never
            trained in the TSN backbone (release §7) and get no slots.
        optimizer: a key of `OPTIMIZER_SLOTS`.
        global_step: whether `global_step` (int64 scalar) was saved.
    """
    if optimizer not in OPTIMIZER_SLOTS:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZER_SLOTS)}, got {optimizer!r}")
    slots, non_slots = OPTIMIZER_SLOTS[optimizer]
    trained = [
        (name, shape, dtype)
        for name, shape, dtype in variables
        if "/BatchNorm/" not in name and (trained_scopes is None or name.startswith(tuple(trained_scopes)))
    ]
    if trained_scopes is not None and not trained:
        raise ValueError(f"no variable lies under the trained scopes {trained_scopes}")
    tensors = list(variables)
    tensors += [(f"{name}/{slot}", shape, dtype) for name, shape, dtype in trained for slot in slots]
    tensors += [(name, (), "float32") for name in non_slots]
    if global_step:
        tensors.append(("global_step", (), "int64"))
    return sorted(tensors, key=lambda t: t[0])


def layout_size(tensors):
    """Bytes that `tensors` [(name, shape, dtype)] take in a data shard."""
    return sum(_nbytes(shape, dtype) for _, shape, dtype in tensors)


def _nbytes(shape, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind not in "fiub":
        raise ValueError(f"only numeric tensors have a fixed size in a data shard, got {dtype}")
    return int(np.prod(shape, dtype=np.int64)) * dtype.itemsize


def read_data_shard(path, tensors):
    """{name: array} read from a V2 `.data-*` shard whose tensors are `tensors` [(name, shape, dtype)]
    in file order (`checkpoint_variables` gives the Saver's order).

    Raises ValueError when the file size differs from the layout's, or when a float tensor holds
    non-finite values (the mark of a wrong offset), naming the file and the tensors.
    """
    size = os.path.getsize(path)
    expected = layout_size(tensors)
    if size != expected:
        raise ValueError(
            f"{path}: {size} bytes, the layout of {len(tensors)} tensors needs {expected} "
            f"({size - expected:+d}); the variable list, optimizer or trained scopes differ"
        )
    values, bad = {}, []
    with open(path, "rb") as f:
        for name, shape, dtype in tensors:
            stored = np.dtype(dtype).newbyteorder("<")  # BundleWriter writes host (little-endian) order
            count = int(np.prod(shape, dtype=np.int64))
            value = np.fromfile(f, dtype=stored, count=count).reshape(shape).astype(np.dtype(dtype))
            if value.dtype.kind == "f" and not np.isfinite(value).all():
                bad.append(name)
            values[name] = value
    if bad:
        raise ValueError(f"{path}: non-finite values in {len(bad)} tensors, e.g. {bad[:5]}: wrong layout")
    variances = [n for n in values if n.endswith("BatchNorm/moving_variance") and (values[n] <= 0).any()]
    if variances:
        raise ValueError(f"{path}: BatchNorm variances not positive in {variances[:5]}: wrong layout")
    return values


def candidate_layouts(variables, block="inception_5a"):
    """{label: tensors} for each plausible recipe (optimizer × trained scopes, `global_step` saved)."""
    layouts = {}
    for optimizer, (slots, _) in OPTIMIZER_SLOTS.items():
        if not slots:  # no slots: the trained scopes do not change the layout
            layouts[optimizer] = checkpoint_variables(variables, None, optimizer)
            continue
        for label, scopes in TRAINED_SCOPES.items():
            scopes = None if scopes is None else tuple(s.format(block=block) for s in scopes)
            layouts[f"{optimizer}/{label}"] = checkpoint_variables(variables, scopes, optimizer)
    return layouts


def match_layouts(path, layouts):
    """Labels of `layouts` whose size equals the shard's."""
    size = os.path.getsize(path)
    return [label for label, tensors in layouts.items() if layout_size(tensors) == size]


def convert_charades_shard(shard_path, output_path, model, block="inception_5a"):
    """Finds the layout of the release's Charades shard, loads its weights onto `model` (an
    ActionVLAD built with `backbone="bn_inception"`, e.g. 157 classes, K = 64, inception_5a) and
    writes them atomically to `output_path` (`.weights.h5`). Returns the layout's label."""
    if not output_path.endswith(".weights.h5"):
        raise ValueError(f"output_path must end in .weights.h5, got {output_path}")
    layouts = candidate_layouts(model_variables(model), block)
    matches = match_layouts(shard_path, layouts)
    if not matches:
        sizes = {label: layout_size(t) for label, t in layouts.items()}
        raise ValueError(f"{shard_path}: {os.path.getsize(shard_path)} bytes fits no layout: {sizes}")
    readable, rejected = [], {}
    for label in matches:
        try:
            readable.append((label, read_data_shard(shard_path, layouts[label])))
        except ValueError as error:
            rejected[label] = str(error)
    if len(readable) != 1:
        raise ValueError(
            f"{shard_path}: {len(readable)} of the size-matching layouts {matches} read cleanly "
            f"({[label for label, _ in readable]}); rejected: {rejected}"
        )
    label, values = readable[0]
    load_release_bn_inception(model, values)
    # Keras insists on the .weights.h5 suffix, so not actionvlad_tf.atomic's ".tmp" name.
    directory, base = os.path.split(os.path.abspath(output_path))
    temporary = os.path.join(directory, f".{base[: -len('.weights.h5')]}.{os.getpid()}.tmp.weights.h5")
    try:
        model.save_weights(temporary)
        os.replace(temporary, output_path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return label
