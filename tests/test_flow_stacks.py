"""The generated flow stacks that pretrain the flow stand-in (`actionvlad_tf.prep.flow_stacks`)."""

import numpy as np
import pytest

from actionvlad_tf.prep import extraction, flow_stacks, stills
from actionvlad_tf.training import pretrain


@pytest.fixture(scope="module")
def generated():
    return flow_stacks.generate_flow_stacks(48, seed=3, size=32, radius_range=(4, 8))


def test_stacks_are_deterministic_labelled_and_in_the_pipeline_layout(generated):
    stacks, labels = generated
    again, same = flow_stacks.generate_flow_stacks(48, seed=3, size=32, radius_range=(4, 8))
    other, _ = flow_stacks.generate_flow_stacks(48, seed=4, size=32, radius_range=(4, 8))
    np.testing.assert_array_equal(stacks, again)
    assert not np.array_equal(stacks, other)
    assert stacks.shape == (48, 32, 32, 2 * flow_stacks.FLOW_STACK) and stacks.dtype == np.uint8
    assert set(labels) == {"shape", "motion", "radius"}
    for head, names in flow_stacks.LABELS.items():
        np.testing.assert_array_equal(labels[head], same[head])
        assert labels[head].min() >= 0 and labels[head].max() < len(names)
    assert flow_stacks.LABELS["shape"] == stills.SHAPES
    assert ((labels["radius"] >= 4) & (labels["radius"] <= 8)).all()
    with pytest.raises(ValueError, match="radius_range"):
        flow_stacks.generate_flow_stacks(2, size=32, radius_range=(5, 2))


def test_the_motion_label_is_what_the_flow_shows(generated):
    stacks, labels = generated
    flow = extraction.dequantize_flow(stacks, flow_stacks.DEFAULT_FLOW_BOUND)
    dx, dy = np.abs(flow[..., 0::2]), np.abs(flow[..., 1::2])
    moving = (dx + dy) > 0.5  # the object (background and noise stay near 0)
    ratio = {}
    for index, motion in enumerate(flow_stacks.MOTIONS):
        chosen = labels["motion"] == index
        ratio[motion] = dx[chosen][moving[chosen]].mean() / dy[chosen][moving[chosen]].mean()
    assert ratio["horizontal"] > 2 and ratio["vertical"] < 0.5, ratio
    assert 0.6 < ratio["diagonal"] < 1.6 and 0.6 < ratio["scaling"] < 1.6, ratio


def test_flip_keeps_labels_by_negating_x_and_matches_the_pretraining_flip(generated):
    stacks, labels = generated
    flipped = flow_stacks.flip_flow_stacks(stacks)
    np.testing.assert_array_equal(flipped[:, :, ::-1, 1::2], stacks[..., 1::2])
    np.testing.assert_array_equal(255 - flipped[:, :, ::-1, 0::2], stacks[..., 0::2])
    # The pretraining step flips preprocessed tensors; the result is the preprocessed flipped stacks.
    ours = pretrain.flip(pretrain.preprocess(stacks, "flow"), "flow").numpy()
    np.testing.assert_array_equal(ours, pretrain.preprocess(flipped, "flow").numpy())
    # RGB stills are mirrored as they are.
    images, _ = stills.generate_stills(2, seed=0, size=16, radius_range=(3, 5))
    np.testing.assert_array_equal(
        pretrain.flip(pretrain.preprocess(images), "rgb").numpy(), pretrain.preprocess(images[:, :, ::-1]).numpy()
    )
