"""The generated stills of the offline backbone pretraining: labels, shapes, colours, determinism."""

import cv2
import numpy as np
import pytest

from actionvlad_tf.prep import stills


def test_deterministic_labelled_and_in_range():
    images, labels = stills.generate_stills(40, seed=3, size=32, radius_range=(3, 8))
    again, same = stills.generate_stills(40, seed=3, size=32, radius_range=(3, 8))
    other, _ = stills.generate_stills(40, seed=4, size=32, radius_range=(3, 8))
    assert images.shape == (40, 32, 32, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, again)
    assert not np.array_equal(images, other)
    for name, values in stills.LABELS.items():
        np.testing.assert_array_equal(labels[name], same[name])
        assert labels[name].min() >= 0 and labels[name].max() < len(values)
    assert 3 <= labels["radius"].min() and labels["radius"].max() <= 8
    assert images.std() > 10  # not blank
    with pytest.raises(ValueError, match="radius_range"):
        stills.generate_stills(2, radius_range=(5, 2))


def test_shapes_have_equal_areas_and_differ():
    masks = {}
    for shape in stills.SHAPES:
        mask = stills.draw_shape(np.zeros((120, 120), np.uint8), shape, (60, 60), 20, 0.3)
        masks[shape] = mask.astype(np.float32) / 255
        assert 0.8 < masks[shape].sum() / (np.pi * 20**2) < 1.3, shape
    for a in stills.SHAPES:
        for b in stills.SHAPES:
            if a < b:
                overlap = np.minimum(masks[a], masks[b]).sum() / np.maximum(masks[a], masks[b]).sum()
                assert overlap < 0.9, (a, b)
    with pytest.raises(ValueError, match="unknown shape"):
        stills.draw_shape(np.zeros((8, 8), np.uint8), "blob", (4, 4), 2, 0)


def test_hsv_conversion_matches_opencv():
    rng = np.random.default_rng(0)
    hue, saturation, value = rng.uniform(0, 360, 50), rng.uniform(0, 1, 50), rng.uniform(0, 1, 50)
    ours = stills._hsv_to_bgr(hue, saturation, value)
    hsv = np.stack([hue, saturation, value], 1).astype(np.float32)[None]
    opencv = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0] * 255
    np.testing.assert_allclose(ours, opencv, atol=0.05)
