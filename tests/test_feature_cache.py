"""Feature cache: cached suffix = full model on the same view, keys, staleness, resumption."""
import os

import cv2
import numpy as np
import pytest
import tensorflow as tf

from actionvlad_tf.data import augment
from actionvlad_tf.data.video_input import make_video_dataset
from actionvlad_tf.models import build_actionvlad, set_training_stage
from actionvlad_tf.training import split_at_frozen_boundary
from actionvlad_tf.training.feature_cache import (FeatureCache, build_feature_cache, cache_key,
                                                  view_seed)

FRAMES, HEIGHT, WIDTH, SIZE, VIDEOS, CLASSES = 3, 40, 48, 32, 3, 3
AUGMENTATION = {"image_size": SIZE, "resize_shape": (HEIGHT, WIDTH)}


@pytest.fixture(scope="module")
def model():
    tf.keras.utils.set_random_seed(0)
    return build_actionvlad(CLASSES, frames_per_video=FRAMES, image_size=SIZE, num_clusters=4,
                            weight_decay=0.0)


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
        positions = [int(e.path[len("video"):]) for e in entries]
        if reads is not None:
            reads.extend(positions)
        return tf.data.Dataset.from_tensor_slices(
            (videos[positions], [e.label for e in entries]))
    return read


def split(model, stage):
    set_training_stage(model, stage)
    return split_at_frozen_boundary(model)


def build(root, prefix, list_file, read, **kwargs):
    kwargs.setdefault("views", 2)
    return build_feature_cache(root, prefix, list_file, read, augmentation=AUGMENTATION,
                               progress=False, **kwargs)


@pytest.mark.parametrize("stage", [1, 2])
def test_cached_suffix_equals_full_model_on_the_same_view(tmp_path, model, videos, list_file, stage):
    parts = split(model, stage)
    cache = build(tmp_path, parts.prefix, list_file, in_memory_reader(videos))
    assert cache.is_complete()
    for position in range(VIDEOS):
        for view in range(cache.views):
            video = augment.preprocess_for_train(
                videos[position], "rgb", view_seed(0, position, cache.views, view), **AUGMENTATION)
            expected = model(video[None], training=False).numpy()
            cached = parts.suffix(np.asarray(cache.load(position, view))[None], training=False)
            np.testing.assert_allclose(cached.numpy(), expected, rtol=1e-4, atol=1e-5)


def test_views_differ_and_dataset_serves_stored_views(tmp_path, model, videos, list_file):
    cache = build(tmp_path, split(model, 2).prefix, list_file, in_memory_reader(videos), views=3)
    stored = {(p, v): np.asarray(cache.load(p, v)) for p in range(VIDEOS) for v in range(3)}
    assert not np.allclose(stored[(0, 0)], stored[(0, 1)])  # different crops / flips
    labels_seen = []
    for features, labels in cache.dataset(batch_size=2, shuffle_seed=1).take(6):
        assert features.shape == (2,) + cache.feature_shape and features.dtype == tf.float32
        for feature, label in zip(features.numpy(), labels.numpy()):
            matches = [p for (p, v), value in stored.items() if np.array_equal(value, feature)]
            assert matches and all(cache.labels[p] == label for p in matches)
            labels_seen.append(int(label))
    assert set(labels_seen) == set(range(CLASSES))


def test_key_changes_with_weights_preprocessing_and_list(tmp_path, model, list_file):
    prefix = split(model, 2).prefix
    arguments = dict(list_file=list_file, modality="rgb", views=2, seed=0,
                     augmentation=AUGMENTATION, description={"root": "/frames"}, dtype="float32")
    key = cache_key(prefix, **arguments)
    assert cache_key(split(model, 2).prefix, **arguments) == key  # a fresh split: same key
    assert cache_key(split(model, 1).prefix, **arguments) != key
    for change in ({"augmentation": {**AUGMENTATION, "half_pixel_centers": True}},
                   {"views": 3}, {"seed": 1}, {"dtype": "float16"}, {"modality": "flow"},
                   {"description": {"root": "/other"}}):
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
        build_feature_cache(tmp_path, prefix, list_file, in_memory_reader(videos),
                            augmentation={"crop": 3}, progress=False)


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
        return make_video_dataset(entries, frames_root=str(root), frames_per_video=FRAMES,
                                  raw_frames=True)

    from_disk = build(tmp_path / "disk", prefix, list_file, from_folders)
    in_memory = build(tmp_path / "memory", prefix, list_file, in_memory_reader(decoded))
    for position in range(VIDEOS):
        np.testing.assert_allclose(from_disk.load(position, 1), in_memory.load(position, 1),
                                   rtol=1e-5, atol=1e-4)
