"""TV-L1 optical flow in TensorFlow (actionvlad_tf.tvl1) against OpenCV's, on tiny synthetic pairs."""

import cv2
import numpy as np
import pytest
import tensorflow as tf

from actionvlad_tf import tvl1
from actionvlad_tf.benchmark.flow import synthetic_pair
from actionvlad_tf.prep import extraction

HEIGHT, WIDTH = 40, 48


@pytest.fixture(scope="module")
def model():
    """The graph-mode TV-L1 that `extract_flow --method=tvl1_tf` uses without XLA (tracing takes
    seconds, XLA's compilation tens of seconds); the tests call it on batches of 2 pairs only, so
    it is traced once."""
    return extraction._tf_tvl1(False)  # pylint: disable=protected-access


@pytest.fixture(scope="module")
def pairs():
    """Three tiny pairs with known flow: a translation, a rotation, a smooth field."""
    cases = [("translation", 2.5, 0), ("rotation", 4.0, 1), ("smooth", 2.0, 2)]
    return [synthetic_pair(kind, HEIGHT, WIDTH, magnitude, seed) for kind, magnitude, seed in cases]


# ----------------------------------------------------------------------------- the building blocks


def test_selection_network_selects_every_rank():
    rng = np.random.default_rng(0)
    for count in (2, 3, 5, 9, 25):
        values = rng.normal(size=(count, 200)).astype(np.float32)
        values[:, :20] = np.round(values[:, :20])  # ties
        for rank in range(count):
            got = tvl1.select_rank([tf.constant(v) for v in values], rank).numpy()
            np.testing.assert_array_equal(got, np.sort(values, axis=0)[rank])
    assert len(tvl1.selection_network(25, 12)) < 25 * 9  # far fewer than a sort of each pixel


@pytest.mark.parametrize("size", [3, 5])
def test_median_filter_equals_opencv(size):
    images = np.random.default_rng(1).normal(0, 3, (2, 13, 17)).astype(np.float32)
    expected = np.stack([cv2.medianBlur(image, size) for image in images])
    np.testing.assert_array_equal(tvl1.median_filter(tf.constant(images), size).numpy(), expected)


def test_resize_equals_opencv():
    images = np.random.default_rng(2).uniform(0, 255, (2, 41, 53)).astype(np.float32)
    for shape in tvl1.pyramid_shapes(41, 53, 5, 0.8)[1:2]:
        expected = np.stack(
            [cv2.resize(image, None, fx=0.8, fy=0.8, interpolation=cv2.INTER_LINEAR) for image in images]
        )
        got = tvl1.resize_bilinear(tf.constant(images), shape, 1 / 0.8).numpy()
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=1e-3)
    up = np.stack([cv2.resize(image, (67, 50), interpolation=cv2.INTER_LINEAR) for image in images])
    np.testing.assert_allclose(tvl1.resize_bilinear(tf.constant(images), (50, 67)).numpy(), up, atol=1e-3)


def test_pyramid_stops_before_16_pixels():
    assert tvl1.pyramid_shapes(256, 340) == [(256, 340), (205, 272), (164, 218), (131, 174), (105, 139)]
    assert tvl1.pyramid_shapes(40, 48) == [(40, 48), (32, 38), (26, 30), (21, 24), (17, 19)]
    assert tvl1.pyramid_shapes(20, 300) == [(20, 300), (16, 240)]  # 16 is allowed
    assert tvl1.pyramid_shapes(19, 300) == [(19, 300)]  # cvRound(15.2) = 15 < 16


def test_warp_equals_opencv_remap():
    rng = np.random.default_rng(3)
    image = rng.uniform(0, 255, (1, 20, 24)).astype(np.float32)
    flow = rng.uniform(-3, 3, (1, 20, 24, 2)).astype(np.float32)  # reaches outside the image
    y, x = np.mgrid[0:20, 0:24].astype(np.float32)
    expected = cv2.remap(
        image[0],
        x + flow[0, ..., 0],
        y + flow[0, ..., 1],
        cv2.INTER_CUBIC,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    got = tvl1.warp_bicubic(tf.constant(image[..., None]), flow[..., 0], flow[..., 1]).numpy()
    np.testing.assert_allclose(got[0, ..., 0], expected, atol=2e-3)


def test_gradients_follow_opencv_borders():
    image = tf.constant(np.arange(20, dtype=np.float32).reshape(1, 4, 5) ** 2)
    dx, dy = tvl1.centered_gradient(image)
    values = image.numpy()[0]
    assert dx.numpy()[0, 1, 0] == 0.5 * (values[1, 1] - values[1, 0])  # one-sided half
    assert dx.numpy()[0, 1, 2] == 0.5 * (values[1, 3] - values[1, 1])
    assert dy.numpy()[0, 3, 2] == 0.5 * (values[3, 2] - values[2, 2])
    fx, fy = tvl1.forward_gradient(image)
    assert np.all(fx.numpy()[0, :, -1] == 0) and np.all(fy.numpy()[0, -1] == 0)
    # The divergence is minus the adjoint of the forward gradient: <∇u, p> = −<u, div p>.
    rng = np.random.default_rng(4)
    u = tf.constant(rng.normal(size=(1, 6, 7)).astype(np.float32))
    p1, p2 = (tf.constant(rng.normal(size=(1, 6, 7)).astype(np.float32)) for _ in range(2))
    p1 = p1 * np.r_[np.ones(6), 0][None, None, :].astype(np.float32)  # p is 0 where ∇u is
    p2 = p2 * np.r_[np.ones(5), 0][None, :, None].astype(np.float32)
    ux, uy = tvl1.forward_gradient(u)
    lhs = float(tf.reduce_sum(ux * p1 + uy * p2))
    assert lhs == pytest.approx(-float(tf.reduce_sum(u * tvl1.divergence(p1, p2))), abs=1e-4)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="first must be grayscale"):
        tvl1.tvl1_flow_graph(np.zeros((4, 4, 4, 3), np.uint8), np.zeros((4, 4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="sizes differ"):
        tvl1.tvl1_flow_graph(np.zeros((1, 8, 8), np.uint8), np.zeros((1, 8, 9), np.uint8))
    with pytest.raises(ValueError, match="median_filtering"):
        tvl1.TVL1Params(median_filtering=4)


# ----------------------------------------------------------------------------- the whole algorithm


def test_translation_is_recovered_as_opencv_does(model, pairs):
    first, second, truth = pairs[0]
    flows = model(np.stack([first, second]), np.stack([second, first])).numpy()  # there and back
    inner = (slice(6, -6), slice(6, -6))
    for flow, expected_truth, (a, b) in zip(flows, (truth, -truth), ((first, second), (second, first))):
        assert tvl1.endpoint_error(flow[inner], expected_truth[inner]) < 0.1
        expected = cv2.optflow.DualTVL1OpticalFlow_create().calc(a, b, None)
        assert tvl1.endpoint_error(flow, expected) < 0.05


def test_batch_equals_one_by_one(pairs):
    """Each pair keeps its own stopping rule in a batch (fewer levels and warps: faster to trace)."""
    model = tvl1.TVL1(tvl1.TVL1Params(nscales=2, warps=2, outer_iterations=3))
    first, second, _ = (np.stack(column) for column in zip(*pairs))
    batched = model(first, second).numpy()
    for k in range(len(pairs)):
        alone = model(first[k : k + 1], second[k : k + 1]).numpy()[0]
        np.testing.assert_allclose(batched[k], alone, atol=1e-5)
    assert np.abs(batched[0] - batched[1]).max() > 1  # different motions, really


def test_float_input_is_scaled_as_opencv():
    images = np.array([[[0, 128, 255]]], np.uint8)
    np.testing.assert_allclose(
        tvl1.as_float_images(images / np.float32(255), "x").numpy(),
        tvl1.as_float_images(images, "x").numpy(),
        atol=1e-4,
    )
    with pytest.raises(ValueError, match="x must be uint8"):
        tvl1.as_float_images(images.astype(np.int32), "x")


def test_extraction_quantises_as_the_opencv_path(pairs, monkeypatch):
    """`--method=tvl1_tf` writes quantize_flow of the TF flow, and agrees with `tvl1` within ±2."""
    monkeypatch.setattr(extraction, "TF_FLOW_XLA", False)  # XLA compiles for tens of seconds
    monkeypatch.setattr(extraction, "TF_FLOW_BATCH", 2)  # the `model` fixture's trace
    first, second, _ = pairs[1]
    frames = np.stack([first, second, first])  # two pairs: there and back
    rgb = np.repeat(frames[..., None], 3, axis=-1)
    flow_x, flow_y = extraction.compute_flow_images(rgb, "tvl1_tf")
    flow = extraction.make_batch_flow_estimator("tvl1_tf")(frames[:-1], frames[1:])
    quantised = extraction.quantize_flow(flow)
    np.testing.assert_array_equal(flow_x, quantised[..., 0])
    np.testing.assert_array_equal(flow_y, quantised[..., 1])
    cv_x, cv_y = extraction.compute_flow_images(rgb, "tvl1")
    difference = np.abs(np.stack([flow_x, flow_y]).astype(int) - np.stack([cv_x, cv_y]))
    assert np.mean(difference <= 2) > 0.99
    # and the TF flow is OpenCV's within a small fraction of a pixel
    expected = cv2.optflow.DualTVL1OpticalFlow_create().calc(first, second, None)
    assert tvl1.endpoint_error(flow[0], expected) < 0.1


def test_fast_schedule_equals_opencvs_tvl1_fast(pairs):
    """`--method=tvl1_tf_fast` (the demo's flow) is OpenCV's `tvl1_fast` schedule: same flow on the
    same pairs within a small fraction of a pixel."""
    model = extraction._tf_tvl1(False, "tvl1_tf_fast")  # pylint: disable=protected-access
    assert model.params.nscales == 4 and model.params.inner_iterations == 3 and model.params.scale_step == 0.5
    first, second, _ = (np.stack(column) for column in zip(*pairs))
    flows = model(first, second).numpy()
    opencv = extraction.make_flow_estimator("tvl1_fast")
    for k in range(len(pairs)):
        expected = opencv(first[k], second[k], None)
        assert np.abs(expected).max() > 1  # the pairs move
        assert tvl1.endpoint_error(flows[k], expected) < 0.05
