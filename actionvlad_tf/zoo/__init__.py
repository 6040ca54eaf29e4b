"""Pretrained weights shipped inside the package, by name: a model zoo of two, made here.

* `demo_standin`: the VGG-16 topology (width ¼) pretrained from scratch on generated stills
  (`actionvlad_tf.prep.stills`, `actionvlad_tf.training.pretrain`) — an offline stand-in for
  ImageNet weights, which cannot be downloaded here.
* `demo_standin_flow`: the same topology with a 20-channel first layer, pretrained from scratch on
  generated optical-flow stacks (`actionvlad_tf.prep.flow_stacks`) — an offline stand-in for the
  release's flow network (a VGG-16 trained on the target dataset's flow), for the flow stream.

Each was made by the command in its card (`<name>.json`, docs/pretrained_standin.md).
`--backbone_weights=<name> --backbone_width=<card width>` loads it exactly as
`--backbone_weights=imagenet` or a path would.
"""

import json
import os

ZOO_DIR = os.path.dirname(os.path.abspath(__file__))
# name → (backbone weights file, JSON card, the pretraining heads), all in this folder.
REGISTRY = {
    name: (f"{name}.weights.h5", f"{name}.json", f"{name}.heads.npz") for name in ("demo_standin", "demo_standin_flow")
}


def names():
    return sorted(REGISTRY)


def resolve(weights):
    """The shipped file of a registered name; anything else (a path, "imagenet", None) unchanged."""
    if isinstance(weights, str) and weights in REGISTRY:
        path = os.path.join(ZOO_DIR, REGISTRY[weights][0])
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{path}: the shipped weights of {weights!r} are missing from this installation (package_data)"
            )
        return path
    return weights


def heads_file(name):
    """The pretraining task's heads of a registered name (to check its card's accuracy)."""
    return os.path.join(ZOO_DIR, REGISTRY[name][2])


def card(name):
    """The JSON card of a registered name: command, seed, width, image size, accuracy, time, CPU."""
    if name not in REGISTRY:
        raise KeyError(f"{name!r} is not a shipped model (known: {names()})")
    with open(os.path.join(ZOO_DIR, REGISTRY[name][1]), encoding="utf-8") as f:
        return json.load(f)
