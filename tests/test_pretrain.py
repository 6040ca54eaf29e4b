"""The offline stand-in for ImageNet: the pretraining command, its weights file and the shipped one."""

import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from actionvlad_tf import zoo
from actionvlad_tf.models import builder, vgg16
from actionvlad_tf.models.parts import backbones
from actionvlad_tf.prep import stills
from actionvlad_tf.specs import ModelSpec
from actionvlad_tf.training import pretrain

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("modality", ["rgb", "flow"])
def test_toy_pretrain_command_writes_weights_that_backbone_weights_loads(tmp_path, modality):
    out = tmp_path / "toy"
    environment = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "3"}
    flow = ["--init_weights=demo_standin", "--width=0.25"] if modality == "flow" else []
    run = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO, "experiments", "pretrain_backbone.py"),
            f"--output={out}",
            "--width=0.125",
            "--image_size=32",
            "--steps=4",
            "--batch_size=8",
            "--warmup_steps=2",
            "--curriculum_steps=2",
            "--train_images=64",
            "--val_images=32",
            "--float16",
            f"--modality={modality}",
            *flow,
        ],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    card = json.loads((tmp_path / "toy.json").read_text())
    width = 0.25 if modality == "flow" else 0.125
    assert card["width"] == width and card["image_size"] == 32 and card["steps"] == 4 and card["seed"] == 0
    assert f"--width={width:g}" in card["command"] and card["cpu"] and card["seconds"] > 0
    assert card["modality"] == modality
    pair = {"rgb": "shape_colour", "flow": "shape_motion"}[modality]
    assert set(card["val_accuracy"]) >= set(pretrain.TASKS[modality].heads) | {pair}
    weights = f"{out}.weights.h5"
    channels = pretrain.TASKS[modality].channels
    with h5py.File(weights) as f:
        first = np.asarray(f["layers/conv2d/vars/0"])  # block1_conv1
        stored = np.asarray(f["layers/conv2d_12/vars/0"])  # block5_conv3, the 13th conv
    assert stored.dtype == np.float16 and stored.shape == (3, 3, 512 * width, 512 * width)
    assert first.shape == (3, 3, channels, 64 * width)

    model = builder.build_model(
        ModelSpec(3, modality=modality, frames_per_video=2, image_size=32, num_clusters=4, backbone_width=width)
    )
    builder.load_backbone_weights(model, weights, modality)
    (backbone,) = backbones(model)
    np.testing.assert_array_equal(backbone.get_layer("block5_conv3").get_weights()[0], stored.astype(np.float32))
    assert np.abs(stored).max() > 0
    if modality == "rgb":
        with pytest.raises(ValueError, match="--backbone_width=0.125"):
            vgg16.build_vgg16(weights=weights, width=0.25)


def test_unregistered_names_pass_through_and_registered_ones_resolve():
    assert zoo.resolve("imagenet") == "imagenet" and zoo.resolve("/a/b.h5") == "/a/b.h5"
    assert zoo.resolve(None) is None
    assert zoo.resolve("demo_standin") == os.path.join(zoo.ZOO_DIR, "demo_standin.weights.h5")
    with pytest.raises(KeyError, match="demo_standin"):
        zoo.card("nothing")


def test_shipped_standin_is_what_its_card_says():
    card = zoo.card("demo_standin")
    config = card["config"]
    assert os.path.getsize(zoo.resolve("demo_standin")) < 8e6
    # It loads by name wherever --backbone_weights goes, at the card's width.
    model = builder.build_model(
        ModelSpec(6, frames_per_video=2, image_size=card["image_size"], num_clusters=4, backbone_width=card["width"])
    )
    builder.load_backbone_weights(model, "demo_standin", "rgb")
    # Its heads reproduce the card's validation accuracy on the regenerated validation stills.
    net = pretrain.load_pretrain_model(
        "demo_standin", zoo.heads_file("demo_standin"), card["width"], card["image_size"]
    )
    images, labels = stills.generate_stills(
        config["val_images"], [config["seed"], 1], config["image_size"], tuple(config["radius_range"])
    )
    accuracy = pretrain.evaluate(net, images, labels)
    for head in ("shape", "colour", "texture", "shape_colour"):
        assert accuracy[head] == pytest.approx(card["val_accuracy"][head], abs=0.03), head
    chance = pretrain.chance_levels()
    assert accuracy["shape"] > 4 * chance["shape"] and accuracy["colour"] > 6 * chance["colour"]
    assert accuracy["shape_colour"] > 20 * chance["shape_colour"]


def test_shipped_flow_standin_is_what_its_card_says():
    card = zoo.card("demo_standin_flow")
    config = card["config"]
    assert card["modality"] == "flow" and config["modality"] == "flow"
    assert os.path.getsize(zoo.resolve("demo_standin_flow")) < 8e6
    # It loads by name into a flow model (20-channel first layer, as it was trained), at the RGB
    # stand-in's width, so that the demo's two streams share one --backbone_width.
    assert card["width"] == zoo.card("demo_standin")["width"]
    model = builder.build_model(
        ModelSpec(
            6,
            modality="flow",
            frames_per_video=2,
            image_size=card["image_size"],
            num_clusters=4,
            backbone_width=card["width"],
        )
    )
    builder.load_backbone_weights(model, "demo_standin_flow", "flow")
    (backbone,) = backbones(model)
    assert backbone.get_layer("block1_conv1").get_weights()[0].shape[2] == 20
    # Its heads reach the card's accuracy on fresh stacks of the same task (a smaller set than the
    # card's 1000, so within a few points).
    net = pretrain.load_pretrain_model(
        "demo_standin_flow", zoo.heads_file("demo_standin_flow"), card["width"], card["image_size"], modality="flow"
    )
    config = pretrain.PretrainConfig(**{**config, "radius_range": tuple(config["radius_range"])})
    stacks, labels = pretrain.generate(config, 200, [config.seed, 7])
    accuracy = pretrain.evaluate(net, stacks, labels, modality="flow")
    for head in ("shape", "motion"):
        assert accuracy[head] == pytest.approx(card["val_accuracy"][head], abs=0.1), head
    chance = pretrain.chance_levels("flow")
    assert accuracy["motion"] > 3 * chance["motion"] and accuracy["shape"] > 2 * chance["shape"]


@pytest.mark.slow
def test_standin_conv5_separates_demo_objects_far_better_than_random(tmp_path):
    from actionvlad_tf.data import augment
    from actionvlad_tf.evaluation import probe
    from actionvlad_tf.prep import extraction, synthetic

    synthetic.generate_demo_dataset(tmp_path / "demo", train_per_class=4, test_per_class=2, progress=False)
    jobs, _ = extraction.find_videos(str(tmp_path / "demo" / "videos"))
    assert extraction.extract_frames(jobs, str(tmp_path / "frames"), progress=False).ok
    frames, labels, is_train = probe.demo_frames(tmp_path / "demo", tmp_path / "frames", frame_step=3)
    width = zoo.card("demo_standin")["width"]
    resize_shape = augment.default_resize_shape(64)
    scores = {}
    for name, weights in (("standin", "demo_standin"), ("random", None)):
        backbone = vgg16.build_vgg16(weights=weights, width=width)
        if weights is None:
            pretrain.he_initialise(backbone, seed=0)
        scores[name] = probe.linear_probe(probe.conv5_pooled(backbone, frames, resize_shape), labels, is_train)
    assert scores["standin"]["colour"] > 0.9
    assert scores["standin"]["shape_colour"] > scores["random"]["shape_colour"] + 0.25, scores
