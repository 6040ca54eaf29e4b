"""Specs and registries: every two-stream fusion honours the backbone and the pooling of its spec,
and a new pooling and a new dataset are each one registration (docs/extending.md)."""

import keras
import numpy as np
import pytest

from actionvlad_tf.data import datasets
from actionvlad_tf.layers import NetVLADPooling, SpatioTemporalPooling
from actionvlad_tf.models import FUSIONS, POOLINGS, backbones, build_model, pooling_layers
from actionvlad_tf.models.bn_inception import is_bn_inception
from actionvlad_tf.models.registry import BACKBONES
from actionvlad_tf.prep.splits import LIST_MAKERS
from actionvlad_tf.registration import Registry
from actionvlad_tf.specs import DatasetSpec, ModelSpec


def _inputs(spec, batch=1):
    rng = np.random.default_rng(0)
    return {
        m: rng.normal(size=(batch, spec.frames_per_video, spec.image_size, spec.image_size, c)).astype("float32")
        for m, c in (("rgb", 3), ("flow", 20))
    }


def _check_pooling(model, pooling, fusion):
    found = pooling_layers(model)
    assert len(found) == (1 if fusion in ("concat", "early") else 2)
    for layer in found:
        if pooling == "netvlad":
            assert isinstance(layer, NetVLADPooling)
        else:
            assert isinstance(layer, SpatioTemporalPooling) and layer.mode == pooling


@pytest.mark.parametrize("pooling", sorted(POOLINGS))
@pytest.mark.parametrize("fusion", sorted(FUSIONS))
def test_two_stream_vgg16_honours_pooling_for_every_fusion(fusion, pooling):
    spec = ModelSpec(
        3,
        modality="rgb+flow",
        pooling=pooling,
        fusion=fusion,
        num_clusters=2,
        image_size=32,
        frames_per_video=2,
        conv_endpoint="conv4",
    )
    model = build_model(spec)
    _check_pooling(model, pooling, fusion)
    assert [b.name for b in backbones(model)] == ["rgb_vgg16", "flow_vgg16"]
    assert tuple(model(_inputs(spec)).shape) == (1, 3)


@pytest.mark.parametrize("fusion", sorted(FUSIONS))
def test_two_stream_bn_inception_for_every_fusion(fusion):
    """The backbone flag reaches both streams of every fusion (it used to build VGG-16 always)."""
    spec = ModelSpec(
        3,
        modality="rgb+flow",
        backbone="bn_inception",
        pooling="avg",
        fusion=fusion,
        conv_endpoint="conv2/3x3",
        image_size=32,
        frames_per_video=1,
    )
    model = build_model(spec)
    nets = backbones(model)
    assert len(nets) == 2 and all(is_bn_inception(net) for net in nets)
    assert [net.input.shape[-1] for net in nets] == [3, 20]
    _check_pooling(model, "avg", fusion)


def test_bad_combinations_are_rejected_with_a_reason():
    with pytest.raises(ValueError, match="frame baseline"):
        build_model(ModelSpec(3, modality="rgb+flow", conv_endpoint="fc8"))
    with pytest.raises(ValueError, match="frame baseline"):
        build_model(ModelSpec(3, backbone="bn_inception", conv_endpoint="fc8"))
    with pytest.raises(ValueError, match="one pooling per stream"):
        build_model(
            ModelSpec(3, modality="rgb+flow", fusion="late", num_clusters=2, image_size=32, frames_per_video=1),
            initial_centers=np.zeros((2, 512), np.float32),
        )
    with pytest.raises(ValueError, match="takes no k-means centres"):
        build_model(
            ModelSpec(3, pooling="avg", image_size=32, frames_per_video=1),
            initial_centers=np.zeros((2, 512), np.float32),
        )
    with pytest.raises(ValueError, match=r"pooling must be one of .*'netvlad'"):
        build_model(ModelSpec(3, pooling="nope", image_size=32, frames_per_video=1))
    with pytest.raises(ValueError, match=r"model_name\) must be one of .*'vgg16'"):
        build_model(ModelSpec(3, backbone="nope", image_size=32, frames_per_video=1))
    with pytest.raises(ValueError, match="no width multiplier"):
        build_model(ModelSpec(3, backbone="bn_inception", conv_endpoint="conv2/3x3", backbone_width=0.5))


@keras.saving.register_keras_serializable(package="actionvlad_tf_tests")
class ToyPooling(keras.layers.Layer):
    """A toy pooling: the mean over frames and positions of the squared maps."""

    def call(self, maps):
        return keras.ops.mean(keras.ops.square(maps), axis=(1, 2, 3))


def test_a_toy_pooling_is_one_registration(monkeypatch):
    """Its layer (here, in this test module) plus one line: POOLINGS["toy"] = make_layer."""
    monkeypatch.setitem(POOLINGS, "toy", lambda spec, name: ToyPooling(name=name))
    spec = ModelSpec(3, pooling="toy", image_size=32, frames_per_video=2)
    model = build_model(spec)
    (layer,) = pooling_layers(model)
    assert isinstance(layer, ToyPooling)
    logits = model(_inputs(spec)["rgb"])
    assert tuple(logits.shape) == (1, 3)
    two_stream = build_model(spec.replace(modality="rgb+flow", fusion="concat_vlad"))
    assert [type(p) for p in pooling_layers(two_stream)] == [ToyPooling, ToyPooling]


def test_a_toy_dataset_is_one_registration(tmp_path, monkeypatch):
    """A DatasetSpec registered under its name gives the class count, names and list reading."""
    monkeypatch.setattr(datasets, "DATASETS", datasets.DATASETS.copy())
    datasets.register_dataset(DatasetSpec("toy", 2, class_names=("left", "right")))
    spec = datasets.dataset_spec("toy")
    assert spec.num_classes == 2 and datasets.class_names(spec) == ["left", "right"]
    with pytest.raises(ValueError, match="already registered"):
        datasets.register_dataset(DatasetSpec("toy", 3))
    with pytest.raises(ValueError, match="unknown dataset_name 'nothing'"):
        datasets.dataset_spec("nothing")
    assert datasets.dataset_spec("nothing", 7).num_classes == 7
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "train_split1.txt").write_text("v0 4 0\nv1 4 2\n")
    with pytest.raises(ValueError, match="train_split1.txt"):  # label 2 of a 2-class dataset
        datasets.read_entries(spec, datasets.split_list_file(tmp_path / "lists", "train", 1))


@pytest.mark.parametrize(
    "registry", [BACKBONES, POOLINGS, FUSIONS, datasets.DATASETS, LIST_MAKERS], ids=lambda r: r.kind
)
def test_every_registry_refuses_a_second_entry_under_a_taken_name(registry):
    name = sorted(registry)[0]
    existing = registry[name]
    for register in (registry.register, registry.__setitem__):
        with pytest.raises(ValueError, match=f"{registry.kind} '{name}' is already registered"):
            register(name, object())
    assert registry[name] is existing
    registry.register(name, existing)  # the same entry again: a module imported twice


def test_temporarily_registers_inside_a_block_and_lookup_lists_the_names():
    registry = Registry("toy", {"a": 1})
    with registry.temporarily("b", 2):
        assert registry.lookup("b") == 2
    assert "b" not in registry
    with pytest.raises(ValueError, match=r"toy \(--toy\) must be one of \['a'\], got 'c'"):
        registry.lookup("c", flag="--toy")
    with pytest.raises(ValueError, match="toy 'a' is already registered \\(as 1\\)"):
        registry.update({"a": 3})
