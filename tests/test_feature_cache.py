"""Feature cache: cached suffix = full model on the same view, keys, staleness, resumption."""

import os
import re

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf

from actionvlad_tf.centers import save_centers
from actionvlad_tf.data import augment
from actionvlad_tf.data.video_input import make_video_dataset
from actionvlad_tf.models import build_actionvlad, set_training_stage
from actionvlad_tf.models.vgg16 import write_random_vgg16
from actionvlad_tf.training import TrainConfig, split_at_frozen_boundary, train
from actionvlad_tf.training.feature_cache import (
    FeatureCache,
    build_eval_cache,
    build_feature_cache,
    cache_key,
    cached_training_inputs,
    view_seed,
)
from actionvlad_tf.training.split import bridge

FRAMES, HEIGHT, WIDTH, SIZE, VIDEOS, CLASSES = 3, 40, 48, 32, 3, 3
AUGMENTATION = {"image_size": SIZE, "resize_shape": (HEIGHT, WIDTH)}


@pytest.fixture(scope="module")
def model():
    tf.keras.utils.set_random_seed(0)
    return build_actionvlad(CLASSES, frames_per_video=FRAMES, image_size=SIZE, num_clusters=4, weight_decay=0.0)


@pytest.fixture(scope="module")
def videos():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (VIDEOS, FRAMES, HEIGHT, WIDTH, 3), dtype=np.uint8)


@pytest.fixture
def list_file(tmp_path):
    path = tmp_path / "train_split1.txt"
    path.write_text("".join(f"video{i} {FRAMES} {i % CLASSES}\n" for i in range(VIDEOS)))
    return str(path)


def in_memory_reader(videos, reads=None):
    """read_videos over the fixture's frames; `reads` collects the positions asked for."""

    def read(entries):
        positions = [int(e.path[len("video") :]) for e in entries]
        if reads is not None:
            reads.extend(positions)
        return tf.data.Dataset.from_tensor_slices((videos[positions], [e.label for e in entries]))

    return read


def split(model, stage):
    set_training_stage(model, stage)
    return split_at_frozen_boundary(model)


def build(root, prefix, list_file, read, **kwargs):
    kwargs.setdefault("views", 2)
    return build_feature_cache(root, prefix, list_file, read, augmentation=AUGMENTATION, progress=False, **kwargs)


@pytest.mark.parametrize("stage", [1, 2])
def test_cached_suffix_equals_full_model_on_the_same_view(tmp_path, model, videos, list_file, stage):
    parts = split(model, stage)
    cache = build(tmp_path, parts.prefix, list_file, in_memory_reader(videos))
    assert cache.is_complete()
    for position in range(VIDEOS):
        for view in range(cache.views):
            video = augment.preprocess_for_train(
                videos[position], "rgb", view_seed(0, position, cache.views, view), **AUGMENTATION
            )
            expected = model(video[None], training=False).numpy()
            cached = parts.suffix(np.asarray(cache.load(position, view))[None], training=False)
            np.testing.assert_allclose(cached.numpy(), expected, rtol=1e-4, atol=1e-5)


def test_views_differ_and_dataset_serves_stored_views(tmp_path, model, videos, list_file):
    cache = build(tmp_path, split(model, 2).prefix, list_file, in_memory_reader(videos), views=3)
    stored = {(p, v): np.asarray(cache.load(p, v)) for p in range(VIDEOS) for v in range(3)}
    assert not np.allclose(stored[(0, 0)], stored[(0, 1)])  # different crops / flips
    labels_seen = []
    assert cache.dataset(batch_size=2).options().autotune.enabled is False  # data/options.py
    for features, labels in cache.dataset(batch_size=2, shuffle_seed=1).take(6):
        assert features.shape == (2,) + cache.feature_shape and features.dtype == tf.float32
        for feature, label in zip(features.numpy(), labels.numpy()):
            matches = [p for (p, v), value in stored.items() if np.array_equal(value, feature)]
            assert matches and all(cache.labels[p] == label for p in matches)
            labels_seen.append(int(label))
    assert set(labels_seen) == set(range(CLASSES))


def test_eval_cache_serves_the_prefix_of_the_test_input_in_list_order(tmp_path, model, videos, list_file):
    """Evaluation caches: one view per video from the evaluation pipeline, read in list order with
    its metadata; resumed without recomputing; never mixed up with training caches."""
    parts = split(model, 2)
    inputs = np.stack([augment.preprocess_for_eval(v, "rgb", **AUGMENTATION).numpy() for v in videos])
    labels = np.arange(VIDEOS) % CLASSES
    metadata = {"index": np.arange(VIDEOS, dtype=np.int32), "path": [f"video{i}" for i in range(VIDEOS)]}
    dataset = tf.data.Dataset.from_tensor_slices((inputs, labels, metadata)).batch(2)
    evaluation = {"num_crops": 1, **AUGMENTATION}
    cache = build_eval_cache(tmp_path, parts.prefix, list_file, dataset, evaluation=evaluation, progress=False)
    assert cache.evaluation and cache.views == 1
    (features, got_labels, got_metadata), *rest = list(cache.eval_dataset(batch_size=VIDEOS))
    assert not rest
    np.testing.assert_array_equal(got_metadata["index"], np.arange(VIDEOS))
    np.testing.assert_array_equal(got_labels, labels)
    np.testing.assert_allclose(
        parts.suffix(features, training=False).numpy(), model(inputs, training=False).numpy(), rtol=1e-4, atol=1e-5
    )
    with pytest.raises(ValueError, match="eval_dataset"):
        cache.dataset(batch_size=2)
    # Complete: a second build reads no video; other crop settings are another cache.
    again = build_eval_cache(tmp_path, parts.prefix, list_file, None, evaluation=evaluation, progress=False)
    assert again.directory == cache.directory
    other = build_eval_cache(
        tmp_path, parts.prefix, list_file, dataset, evaluation={**evaluation, "num_crops": 5}, progress=False
    )
    assert other.directory != cache.directory
    training = build(tmp_path, parts.prefix, list_file, in_memory_reader(videos))
    with pytest.raises(ValueError, match="training views"):
        training.eval_dataset(batch_size=2)
    os.remove(cache.file(1, 0))
    with pytest.raises(ValueError, match="too few videos.*video1"):
        build_eval_cache(tmp_path, parts.prefix, list_file, dataset.take(0), evaluation=evaluation, progress=False)


@pytest.mark.parametrize("pooling", ["netvlad", "max"])
def test_stage1_cache_via_stage2_reads_the_frames_once(tmp_path, videos, list_file, pooling):
    """cache_via_stage2: stage 1's pooled vectors computed from stage 2's pool4 cache equal those
    computed from the frames; the frames are read once, and stage 2 finds its cache built."""
    tf.keras.utils.set_random_seed(2)
    model = build_actionvlad(
        CLASSES, frames_per_video=FRAMES, image_size=SIZE, num_clusters=4, weight_decay=0.0, pooling=pooling
    )
    maps = split(model, 2)
    set_training_stage(model, 1)
    reads = []
    kwargs = dict(views=2, augmentation=AUGMENTATION, progress=False)
    _, _, via = cached_training_inputs(
        model, list_file, in_memory_reader(videos, reads), tmp_path / "via", 2, maps_split=maps, **kwargs
    )
    assert sorted(reads) == list(range(VIDEOS))  # one pass over the frames
    direct = build(tmp_path / "direct", split(model, 1).prefix, list_file, in_memory_reader(videos))
    assert os.path.basename(via.directory) == os.path.basename(direct.directory)  # the same key
    for position in range(VIDEOS):
        for view in range(2):
            np.testing.assert_allclose(via.load(position, view), direct.load(position, view), rtol=1e-4, atol=1e-5)
    reads.clear()
    set_training_stage(model, 2)
    _, _, stage2 = cached_training_inputs(
        model, list_file, in_memory_reader(videos, reads), tmp_path / "via", 2, **kwargs
    )
    assert reads == [] and stage2.feature_shape == (FRAMES, 2, 2, 512)
    assert len(os.listdir(tmp_path / "via")) == 2
    # A complete stage-1 cache is not rebuilt, and the maps are not asked for.
    os.rename(stage2.directory, tmp_path / "gone")
    set_training_stage(model, 1)
    cached_training_inputs(
        model, list_file, in_memory_reader(videos, reads), tmp_path / "via", 2, maps_split=maps, **kwargs
    )
    assert reads == [] and len(os.listdir(tmp_path / "via")) == 1


def test_a_cache_of_other_views_cannot_serve_as_source(tmp_path, model, videos, list_file):
    maps = split(model, 2)
    source = build(tmp_path, maps.prefix, list_file, in_memory_reader(videos), views=1)
    stage1 = split(model, 1)
    with pytest.raises(ValueError, match="differ in views"):
        build(tmp_path, stage1.prefix, list_file, None, source=(source, bridge(model, maps, stage1)))
    with pytest.raises(ValueError, match="inside the backbone"):
        bridge(model, stage1, stage1)


def test_dataset_names_a_file_that_changed_after_the_check(tmp_path, model, videos, list_file):
    cache = build(tmp_path, split(model, 1).prefix, list_file, in_memory_reader(videos), views=1)
    dataset = cache.dataset(batch_size=1, shuffle_seed=0)
    for position in range(VIDEOS):
        with open(cache.file(position, 0), "ab") as handle:
            handle.write(b"\0")
    with pytest.raises(tf.errors.InvalidArgumentError, match="changed size after the check") as error:
        next(iter(dataset))
    assert f"{os.sep}features{os.sep}00000" in str(error.value)


def test_key_changes_with_weights_preprocessing_and_list(tmp_path, model, list_file):
    prefix = split(model, 2).prefix
    arguments = dict(
        list_file=list_file,
        modality="rgb",
        views=2,
        seed=0,
        augmentation=AUGMENTATION,
        description={"root": "/frames"},
        dtype="float32",
    )
    key = cache_key(prefix, **arguments)
    assert cache_key(split(model, 2).prefix, **arguments) == key  # a fresh split: same key
    assert cache_key(split(model, 1).prefix, **arguments) != key
    for change in (
        {"augmentation": {**AUGMENTATION, "half_pixel_centers": True}},
        {"views": 3},
        {"seed": 1},
        {"dtype": "float16"},
        {"modality": "flow"},
        {"description": {"root": "/other"}},
    ):
        assert cache_key(prefix, **{**arguments, **change}) != key, change
    other_list = tmp_path / "other.txt"
    other_list.write_text(open(list_file).read().replace("video2 3 2", "video2 3 1"))
    assert cache_key(prefix, **{**arguments, "list_file": str(other_list)}) != key
    kernel = model.get_layer("rgb_vgg16").get_layer("block1_conv1").kernel
    original = kernel.numpy()
    try:
        kernel.assign(original + 1e-3)
        assert cache_key(prefix, **arguments) != key
    finally:
        kernel.assign(original)
    assert cache_key(prefix, **arguments) == key


def test_stale_cache_is_not_used(tmp_path, model, videos, list_file):
    parts = split(model, 2)
    first = build(tmp_path, parts.prefix, list_file, in_memory_reader(videos))
    kernel = model.get_layer("rgb_vgg16").get_layer("block1_conv1").kernel
    original = kernel.numpy()
    try:
        kernel.assign(original * 1.5)
        reads = []
        second = build(tmp_path, parts.prefix, list_file, in_memory_reader(videos, reads))
        assert second.directory != first.directory and sorted(reads) == list(range(VIDEOS))
        video = augment.preprocess_for_train(videos[1], "rgb", view_seed(0, 1, 2, 0), **AUGMENTATION)
        np.testing.assert_allclose(second.load(1, 0), parts.prefix(video[None])[0], rtol=1e-5)
        assert not np.allclose(first.load(1, 0), second.load(1, 0))
    finally:
        kernel.assign(original)


def test_interrupted_build_is_completed(tmp_path, model, videos, list_file):
    prefix = split(model, 2).prefix

    def dies_after_first_video(entries):  # as a build killed after its first video
        yield next(iter(in_memory_reader(videos)(entries)))
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        build(tmp_path / "cache", prefix, list_file, dies_after_first_video)
    (directory,) = (tmp_path / "cache").iterdir()
    partial = FeatureCache(directory)
    assert partial.missing() == [(p, v) for p in (1, 2) for v in (0, 1)]
    with pytest.raises(ValueError, match="incomplete"):
        partial.dataset(batch_size=1)
    # A foreign partial file (wrong size) counts as missing and is rewritten.
    open(partial.file(1, 0), "wb").write(b"\x93NUMPY truncated")
    reads = []
    completed = build(tmp_path / "cache", prefix, list_file, in_memory_reader(videos, reads))
    assert completed.directory == partial.directory and reads == [1, 2]
    clean = build(tmp_path / "clean", prefix, list_file, in_memory_reader(videos))
    for position in range(VIDEOS):
        for view in range(2):
            np.testing.assert_array_equal(completed.load(position, view), clean.load(position, view))


def test_wrong_order_and_bad_arguments_are_errors(tmp_path, model, videos, list_file):
    prefix = split(model, 2).prefix

    def reversed_reader(entries):
        return in_memory_reader(videos)(entries[::-1])

    with pytest.raises(ValueError, match="video0 .*wrong order"):
        build(tmp_path, prefix, list_file, reversed_reader)
    with pytest.raises(ValueError, match="one stream"):
        build(tmp_path, prefix, list_file, in_memory_reader(videos), modality="rgb+flow")
    with pytest.raises(ValueError, match="unknown augmentation"):
        build_feature_cache(
            tmp_path, prefix, list_file, in_memory_reader(videos), augmentation={"crop": 3}, progress=False
        )


def test_built_from_frame_folders_with_raw_frames(tmp_path, model, videos, list_file):
    """The cache fed by `make_video_dataset(..., raw_frames=True)` from JPEG folders equals the
    cache fed by the same decoded frames in memory."""
    root = tmp_path / "frames"
    decoded = np.empty_like(videos)
    for i, video in enumerate(videos):
        os.makedirs(root / f"video{i}")
        for t, frame in enumerate(video):
            path = str(root / f"video{i}" / f"image_{t + 1:05d}.jpg")
            cv2.imwrite(path, frame[..., ::-1])
            decoded[i, t] = tf.io.decode_jpeg(tf.io.read_file(path), channels=3).numpy()
    prefix = split(model, 2).prefix

    def from_folders(entries):
        return make_video_dataset(entries, frames_root=str(root), frames_per_video=FRAMES, raw_frames=True)

    from_disk = build(tmp_path / "disk", prefix, list_file, from_folders)
    in_memory = build(tmp_path / "memory", prefix, list_file, in_memory_reader(decoded))
    for position in range(VIDEOS):
        np.testing.assert_allclose(from_disk.load(position, 1), in_memory.load(position, 1), rtol=1e-5, atol=1e-4)


def test_trainer_trains_the_model_through_its_cached_suffix(tmp_path, videos, list_file):
    tf.keras.utils.set_random_seed(1)
    model = build_actionvlad(CLASSES, frames_per_video=FRAMES, image_size=SIZE, num_clusters=4, weight_decay=0.0)
    set_training_stage(model, 2)
    frozen = model.get_layer("rgb_vgg16").get_layer("block4_conv3").kernel.numpy()
    trained = model.get_layer("rgb_vgg16").get_layer("block5_conv1").kernel.numpy()
    suffix, dataset, cache = cached_training_inputs(
        model,
        list_file,
        in_memory_reader(videos),
        tmp_path / "cache",
        batch_size=2,
        views=2,
        augmentation=AUGMENTATION,
        progress=False,
    )
    config = TrainConfig(train_dir=str(tmp_path / "run"), max_number_of_steps=2, learning_rate=1e-3, progress=False)
    result = train(suffix, dataset, config, stage=None, export_model=model)
    assert result.step == 2 and cache.is_complete()
    vgg = model.get_layer("rgb_vgg16")
    np.testing.assert_array_equal(vgg.get_layer("block4_conv3").kernel.numpy(), frozen)
    assert not np.allclose(vgg.get_layer("block5_conv1").kernel.numpy(), trained)
    saved = keras.saving.load_model(result.model_path)
    np.testing.assert_allclose(
        saved.get_layer("rgb_vgg16").get_layer("block5_conv1").kernel.numpy(),
        vgg.get_layer("block5_conv1").kernel.numpy(),
    )


def test_train_cli_stages_on_the_feature_cache_and_resumes(tmp_path):
    """train.py --feature_cache_dir: stage 1 (--cache_via_stage2: through stage 2's cache) and
    stage 2 on their caches, then a resumed stage 2 finds its cache again (the frozen prefix is
    rebuilt from the initial weights)."""
    from test_train_cli import _run, _write_dataset  # the entry-point tests' tiny dataset

    data = tmp_path / "data"
    _write_dataset(data)
    save_centers(tmp_path / "centers.npz", np.random.default_rng(0).standard_normal((4, 512)).astype(np.float32))
    backbone = write_random_vgg16(str(tmp_path / "vgg16.weights.h5"), SIZE, seed=0)  # conv and fc layers
    common = [
        f"--backbone_weights={backbone}",
        f"--dataset_dir={data}/frames",
        f"--dataset_list_dir={data}/lists",
        "--dataset_name=demo",
        "--num_classes=3",
        "--image_size=32",
        "--resize_shape=40,48",
        "--num_clusters=4",
        "--frames_per_video=3",
        "--videos_per_micro_batch=2",
        "--videos_per_update=2",
        "--save_every_n_steps=1",
        "--feature_cache_dir=cache",
        "--cache_views=2",
    ]
    out = _run(
        "train",
        *common,
        "--stage=1",
        f"--centers={tmp_path}/centers.npz",
        "--max_number_of_steps=2",
        "--train_dir=stage1",
        "--cache_via_stage2",
        cwd=tmp_path,
    )
    assert re.search(r"^step 2:", out, re.M)
    caches = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(caches) == 2  # --cache_via_stage2: stage 2's pool4 maps, then stage 1's VLADs from them
    stage2 = common + ["--stage=2", "--checkpoint_path=stage1", "--train_dir=stage2"]
    out = _run("train", *stage2, "--max_number_of_steps=2", cwd=tmp_path)
    assert "feature cache:" not in out  # stage 2 found its cache
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == caches
    shapes = {tuple(FeatureCache(tmp_path / "cache" / c).feature_shape) for c in caches}
    assert shapes == {(4 * 512,), (FRAMES, 2, 2, 512)}  # K·D VLAD; pool4 maps of 32² frames
    out = _run("train", *stage2, "--max_number_of_steps=3", cwd=tmp_path)
    assert re.search(r"^step 3:", out, re.M)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == caches
    model = keras.saving.load_model(tmp_path / "stage2" / "model.keras")
    assert model.name == "actionvlad" and model.input_shape[1:] == (FRAMES, SIZE, SIZE, 3)
    # The frame baseline over the same backbone trains on single frames of stage 2's maps.
    frames = [flag for flag in common if not flag.startswith("--frames_per_video")]
    out = _run(
        "train",
        *frames,
        "--conv_endpoint=fc8",
        "--frames_per_video=1",
        "--cache_frames_per_video=3",
        "--max_number_of_steps=2",
        "--train_dir=frames",
        cwd=tmp_path,
    )
    assert re.search(r"^step 2:", out, re.M) and "feature cache:" not in out
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == caches
    baseline = keras.saving.load_model(tmp_path / "frames" / "model.keras")
    assert baseline.input_shape[1:] == (1, SIZE, SIZE, 3)
    error = _run("train", *stage2, "--cache_frames_per_video=3", "--train_dir=other", cwd=tmp_path, fails=True)
    assert "cache_frames_per_video (--cache_frames_per_video) is for the frame baseline" in error
