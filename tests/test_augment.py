"""Spatial preprocessing (§3.4-3.7): every op eagerly and inside tf.data.Dataset.map, same result."""

import numpy as np
import pytest
import tensorflow as tf

from actionvlad_tf.data.augment import (
    BGR_MEANS,
    apply_train_crop,
    eval_crop_offsets,
    normalize_channels,
    preprocess_for_eval,
    preprocess_for_train,
    resize_frames,
    sample_train_crop,
)

SMALL_RESIZE = (40, 52)  # small sizes keep the tests fast; the offsets scale (module docstring)
SMALL_SIZE = 32


def _eager_and_in_dataset(function, *args):
    """function(*args) eagerly and as a tf.data map; asserts they agree; returns numpy."""
    eager = function(*args)
    graph = next(iter(tf.data.Dataset.from_tensors(args).map(function)))
    tf.nest.map_structure(lambda a, b: np.testing.assert_allclose(a, b, rtol=0, atol=1e-4), eager, graph)
    return tf.nest.map_structure(lambda t: t.numpy(), eager)


def _frames(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _reference_resize(frames, size, half_pixel_centers):
    """numpy TF1 bilinear resize (align_corners=False), float64."""

    def axis(n_in, n_out):
        scale = n_in / n_out
        src = np.arange(n_out) * scale
        if half_pixel_centers:
            src = (np.arange(n_out) + 0.5) * scale - 0.5
        floor = np.floor(src)
        return (np.maximum(floor, 0).astype(int), np.minimum(np.ceil(src), n_in - 1).astype(int), src - floor)

    top, bottom, dy = axis(frames.shape[1], size[0])
    left, right, dx = axis(frames.shape[2], size[1])
    f = frames.astype(np.float64)
    dx = dx[None, None, :, None]
    rows_top = f[:, top][:, :, left] + (f[:, top][:, :, right] - f[:, top][:, :, left]) * dx
    rows_bot = f[:, bottom][:, :, left] + (f[:, bottom][:, :, right] - f[:, bottom][:, :, left]) * dx
    return rows_top + (rows_bot - rows_top) * dy[None, :, None, None]


@pytest.mark.parametrize("half_pixel_centers", [False, True])
def test_resize_matches_tf1_bilinear(half_pixel_centers):
    frames = _frames((2, 24, 30, 3))
    out = _eager_and_in_dataset(lambda f: resize_frames(f, (40, 52), half_pixel_centers), frames)
    assert out.dtype == np.float32 and out.shape == (2, 40, 52, 3)
    np.testing.assert_allclose(out, _reference_resize(frames, (40, 52), half_pixel_centers), atol=1e-3)


def test_resize_to_the_same_size_is_exact_and_half_pixel_differs():
    frames = _frames((2, 40, 52, 3))
    np.testing.assert_array_equal(resize_frames(frames, (40, 52)).numpy(), frames)
    small = _frames((1, 10, 13, 3))
    assert not np.allclose(resize_frames(small, (40, 52)), resize_frames(small, (40, 52), True))


def test_eval_crop_offsets_release_and_scaled():
    assert eval_crop_offsets(1) == ((16, 60),)
    assert eval_crop_offsets(5) == ((0, 0), (0, 115), (31, 0), (31, 115), (16, 60))
    # Margin (8, 20) for a 32 crop of 40 × 52: the release's places within the margin.
    assert eval_crop_offsets(5, SMALL_SIZE, SMALL_RESIZE) == ((0, 0), (0, 20), (8, 0), (8, 20), (4, 10))
    assert eval_crop_offsets(1, 224, (224, 224)) == ((0, 0),)
    with pytest.raises(ValueError, match="num_crops 3"):
        eval_crop_offsets(3)
    with pytest.raises(ValueError, match="does not fit"):
        eval_crop_offsets(1, 300)


def test_normalize_channels():
    frames = tf.constant([[[[10.0, 20.0, 30.0]]]])
    rgb = _eager_and_in_dataset(lambda f: normalize_channels(f, "rgb"), frames)
    np.testing.assert_array_equal(rgb[0, 0, 0], [30 - 104, 20 - 117, 10 - 123])  # BGR − means
    flow = _eager_and_in_dataset(lambda f: normalize_channels(f, "flow"), frames)
    np.testing.assert_array_equal(flow[0, 0, 0], [-118, -108, -98])
    with pytest.raises(ValueError, match="3 channels"):
        normalize_channels(tf.zeros([1, 2, 2, 20]), "rgb")
    with pytest.raises(ValueError, match="modality 'depth'"):
        normalize_channels(frames, "depth")


def _bgr_minus_means(frames):
    return frames[..., ::-1].astype(np.float32) - np.float32(BGR_MEANS)


def test_eval_one_crop_release_position():
    frames = _frames((2, 256, 340, 3))  # already 256 × 340: the resize is exact
    out = _eager_and_in_dataset(lambda f: preprocess_for_eval(f, "rgb"), frames)
    assert out.shape == (2, 224, 224, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out, _bgr_minus_means(frames[:, 16:240, 60:284]))


def test_eval_five_crops_frame_major():
    frames = _frames((3, 256, 340, 20))
    out = _eager_and_in_dataset(lambda f: preprocess_for_eval(f, "flow", num_crops=5), frames)
    assert out.shape == (15, 224, 224, 20)
    for t in range(3):
        for c, (y, x) in enumerate(eval_crop_offsets(5)):
            np.testing.assert_array_equal(out[5 * t + c], frames[t, y : y + 224, x : x + 224].astype(np.float32) - 128)


def test_eval_any_input_size_and_float_input():
    frames = _frames((2, 30, 44, 3))
    as_uint8 = _eager_and_in_dataset(lambda f: preprocess_for_eval(f, "rgb", 1, SMALL_SIZE, SMALL_RESIZE), frames)
    as_float = preprocess_for_eval(frames.astype(np.float32), "rgb", 1, SMALL_SIZE, SMALL_RESIZE)
    np.testing.assert_allclose(as_uint8, as_float, atol=1e-4)
    expected = _reference_resize(frames, SMALL_RESIZE, False)[:, 4:36, 10:42]
    np.testing.assert_allclose(as_uint8, _bgr_minus_means(expected), atol=1e-3)


def test_eval_rgb_plus_flow_dict():
    frames = {"rgb": _frames((2, 40, 52, 3)), "flow": _frames((2, 20, 26, 20), 1)}
    out = _eager_and_in_dataset(lambda f: preprocess_for_eval(f, "rgb+flow", 5, SMALL_SIZE, SMALL_RESIZE), frames)
    assert out["rgb"].shape == (10, 32, 32, 3) and out["flow"].shape == (10, 32, 32, 20)
    with pytest.raises(ValueError, match="dict with keys"):
        preprocess_for_eval(frames["rgb"], "rgb+flow")


def test_train_crop_distribution_release_sizes():
    crops = [sample_train_crop(tf.constant([seed, 7])) for seed in range(300)]
    heights = {int(c["height"]) for c in crops}
    widths = {int(c["width"]) for c in crops}
    assert heights == widths == {224, 196, 168, 147}  # ⌊224·{1, .875, .75, .66}⌋, §3.6
    assert all(0 <= int(c["y"]) <= 256 - int(c["height"]) for c in crops)
    assert all(0 <= int(c["x"]) <= 340 - int(c["width"]) for c in crops)
    xs = [int(c["x"]) for c in crops]
    assert min(xs) < 20 and max(xs) > 150  # offsets spread over the free margin
    flips = np.mean([bool(c["flip"]) for c in crops])
    assert 0.4 < flips < 0.6
    independent = [(int(c["height"]), int(c["width"])) for c in crops]
    assert len(set(independent)) == 16  # height and width drawn independently


def _expected_train(frames, crop, size, invert=False, flow=False):
    y, x, h, w = (int(crop[k]) for k in ("y", "x", "height", "width"))
    window = tf.constant(frames[:, y : y + h, x : x + w].astype(np.float32))
    out = tf.compat.v1.image.resize_bilinear(window, [size, size], half_pixel_centers=False).numpy()
    if bool(crop["flip"]):
        out = out[:, :, ::-1]
        if invert:
            out[..., 0::2] = 255 - out[..., 0::2]
    return out - 128 if flow else _bgr_minus_means(out)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_train_crop_and_flip_as_sampled(seed):
    frames = _frames((3, 40, 52, 3), seed)
    seed = tf.constant([seed, 0])
    crop = sample_train_crop(seed, SMALL_SIZE, SMALL_RESIZE)
    out = _eager_and_in_dataset(lambda f, s: preprocess_for_train(f, "rgb", s, SMALL_SIZE, SMALL_RESIZE), frames, seed)
    assert out.shape == (3, 32, 32, 3)
    np.testing.assert_allclose(out, _expected_train(frames, crop, SMALL_SIZE), atol=1e-3)


def _flipping_seed():
    return next(
        tf.constant([s, 0])
        for s in range(50)
        if bool(sample_train_crop(tf.constant([s, 0]), SMALL_SIZE, SMALL_RESIZE)["flip"])
    )


@pytest.mark.parametrize("invert", [False, True])
def test_flow_flip_inverts_x_only_on_request(invert):
    frames = _frames((2, 40, 52, 4))
    seed = _flipping_seed()
    crop = sample_train_crop(seed, SMALL_SIZE, SMALL_RESIZE)
    out = _eager_and_in_dataset(
        lambda f, s: preprocess_for_train(f, "flow", s, SMALL_SIZE, SMALL_RESIZE, invert_flow_on_flip=invert),
        frames,
        seed,
    )
    np.testing.assert_allclose(out, _expected_train(frames, crop, SMALL_SIZE, invert, True), atol=1e-3)


def test_train_crop_and_flip_shared_by_rgb_and_flow():
    rgb = _frames((2, 40, 52, 3))
    flow = np.concatenate([rgb, rgb], axis=-1)[..., :4]  # flow channels copy the RGB ones
    for seed in range(6):
        out = _eager_and_in_dataset(
            lambda f, s: preprocess_for_train(f, "rgb+flow", s, SMALL_SIZE, SMALL_RESIZE),
            {"rgb": rgb, "flow": flow},
            tf.constant([seed, 1]),
        )
        restored_rgb = (out["rgb"] + np.float32(BGR_MEANS))[..., ::-1]
        np.testing.assert_allclose(out["flow"][..., :3] + 128, restored_rgb, atol=1e-3)


def test_train_same_seed_same_output_other_seed_differs():
    frames = _frames((2, 40, 52, 3))

    def run(s):
        return preprocess_for_train(frames, "rgb", tf.constant(s), SMALL_SIZE, SMALL_RESIZE)

    np.testing.assert_array_equal(run([5, 5]), run([5, 5]))
    assert any(not np.array_equal(run([5, 5]), run([s, 9])) for s in range(5))


def test_apply_train_crop_release_sizes():
    frames = _frames((1, 256, 340, 3))
    crop = {
        "y": tf.constant(10),
        "x": tf.constant(100),
        "height": tf.constant(168),
        "width": tf.constant(147),
        "flip": tf.constant(False),
    }
    out = apply_train_crop(frames, "rgb", crop).numpy()
    assert out.shape == (1, 224, 224, 3)
    np.testing.assert_allclose(out, _expected_train(frames, crop, 224), atol=1e-3)


def test_train_crops_must_fit():
    with pytest.raises(ValueError, match="exceed resize_shape"):
        sample_train_crop(tf.constant([0, 0]), 224, (200, 300))


@pytest.mark.parametrize("shape", [(2, 40, 52, 3), (2, 30, 44, 3)])
def test_unknown_input_size_in_the_graph_gives_the_static_result(shape):
    # Decoded frames have no static size: the resize is then decided in the graph (tf.cond).
    frames = _frames(shape)
    spec = [tf.TensorSpec([None, None, None, 3], tf.uint8), tf.TensorSpec([2], tf.int32)]

    @tf.function(input_signature=spec)
    def dynamic(f, seed):
        return (
            preprocess_for_eval(f, "rgb", 5, SMALL_SIZE, SMALL_RESIZE),
            preprocess_for_train(f, "rgb", seed, SMALL_SIZE, SMALL_RESIZE),
            resize_frames(f, SMALL_RESIZE),
        )

    seed = tf.constant([3, 4])
    static = (
        preprocess_for_eval(frames, "rgb", 5, SMALL_SIZE, SMALL_RESIZE),
        preprocess_for_train(frames, "rgb", seed, SMALL_SIZE, SMALL_RESIZE),
        resize_frames(frames, SMALL_RESIZE),
    )
    for a, b in zip(dynamic(frames, seed), static):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_default_resize_shape_is_the_release_one_scaled_with_the_crop():
    from actionvlad_tf.data import augment

    assert augment.default_resize_shape(224) == (256, 340)
    assert augment.default_resize_shape(64) == (73, 97)
    frames = tf.zeros([2, 96, 128, 3], tf.uint8)
    assert augment.preprocess_for_eval(frames, "rgb", image_size=64).shape == (2, 64, 64, 3)
