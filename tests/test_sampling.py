"""Temporal sampling: the release's index formulas (§3.3), numpy and TF versions agree."""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from actionvlad_tf.data.sampling import check_sampling_arguments, frame_numbers, frame_numbers_tf, stack_numbers


def test_rgb_uniform_step():
    # s = ⌊(n−1)/(T−1)⌋ = ⌊99/24⌋ = 4.
    np.testing.assert_array_equal(frame_numbers(100, 25), 1 + 4 * np.arange(25))


def test_flow_uniform_step_and_stacks():
    # s = ⌊(n−L)/T⌋ = ⌊90/25⌋ = 3; the last stack reads files 73 … 82 of the 99 flow images.
    first = frame_numbers(100, 25, "flow")
    np.testing.assert_array_equal(first, 1 + 3 * np.arange(25))
    stacks = stack_numbers(first, 10)
    assert stacks.shape == (25, 10)
    np.testing.assert_array_equal(stacks[-1], np.arange(73, 83))


def test_rgb_plus_flow_shares_the_flow_step():
    np.testing.assert_array_equal(frame_numbers(100, 25, "rgb+flow"), frame_numbers(100, 25, "flow"))


@pytest.mark.parametrize("n, modality", [(19, "rgb"), (24, "rgb"), (34, "flow"), (11, "flow")])
def test_short_videos_repeat_the_first_sample(n, modality):
    # Step 0 (§3.3): RGB when n < T (n − 1 < T − 1), flow when n < T + L.
    np.testing.assert_array_equal(frame_numbers(n, 25, modality), np.ones(25))


def test_step_one_just_above_the_short_limit():
    np.testing.assert_array_equal(frame_numbers(26, 25), np.arange(1, 26))
    np.testing.assert_array_equal(frame_numbers(35, 25, "flow"), np.arange(1, 26))


@pytest.mark.parametrize(
    "n, modality, message",
    [
        (10, "flow", "10 frames give 9 flow images per direction, fewer than one stack of 10"),
        (10, "rgb+flow", "10 frames give 9 flow images .* fewer than one stack of 10"),
        (0, "rgb", "0 frames, nothing to sample"),
    ],
)
def test_unsamplable_videos(n, modality, message):
    with pytest.raises(ValueError, match=f"list.txt:7: {message}"):
        frame_numbers(n, 25, modality, where="list.txt:7")


def test_bad_arguments():
    with pytest.raises(ValueError, match="modality 'depth'"):
        check_sampling_arguments(10, 25, "depth", 10)
    with pytest.raises(ValueError, match="frames_per_video 0"):
        check_sampling_arguments(10, 0, "rgb", 10)


def test_start_frame_offset():
    # Charades clip `video 285 223 92`: s = ⌊222/24⌋ = 9 from file 286.
    np.testing.assert_array_equal(frame_numbers(223, 25, start_frame=285), 286 + 9 * np.arange(25))


def test_single_frame_random_ranges():
    rng = np.random.default_rng(0)
    rgb = {int(frame_numbers(10, 1, rng=rng)[0]) for _ in range(400)}
    flow = {int(frame_numbers(30, 1, "flow", rng=rng)[0]) for _ in range(400)}
    assert rgb == set(range(1, 11))  # U{0 … n−1}
    assert flow == set(range(1, 20))  # U{0 … n−L−2}
    assert frame_numbers(10, 1)[0] == 6  # no rng: the middle, 1 + ⌊½·10⌋


def test_temporal_jitter_segments():
    # Without draws: segment centres ⌊(i + ½)·n/T⌋ (TSN test sampling).
    np.testing.assert_array_equal(frame_numbers(100, 4, temporal_jitter=True), [13, 38, 63, 88])
    rng = np.random.default_rng(1)
    draws = np.stack([frame_numbers(100, 4, temporal_jitter=True, rng=rng) for _ in range(300)])
    for i in range(4):  # sample i stays in segment i and covers it
        assert set(draws[:, i]) == set(range(1 + 25 * i, 26 + 25 * i))


@st.composite
def _sampling_cases(draw):
    modality = draw(st.sampled_from(["rgb", "flow", "rgb+flow"]))
    flow_stack = draw(st.integers(1, 12))
    low = 1 if modality == "rgb" else flow_stack + 1
    num_frames = draw(st.integers(low, 400))
    frames = draw(st.integers(1, 40))
    jitter = draw(st.booleans())
    start = draw(st.integers(0, 50))
    u = draw(st.lists(st.floats(0, 1, exclude_max=True), min_size=frames, max_size=frames))
    return num_frames, frames, modality, flow_stack, start, jitter, np.array(u)


class _FixedDraws:
    def __init__(self, u):
        self.u = u

    def random(self, size):
        assert size == len(self.u)
        return self.u


@settings(max_examples=150, deadline=None)
@given(_sampling_cases())
def test_property_indices_in_range_sorted_and_numpy_equals_tf(case):
    n, frames, modality, flow_stack, start, jitter, u = case
    first = frame_numbers(n, frames, modality, flow_stack, start, jitter, _FixedDraws(u))
    assert first.shape == (frames,)
    assert np.all(np.diff(first) >= 0)
    last_file = start + (n if modality == "rgb" else n - 1)  # n−1 flow images per direction
    files = first if modality == "rgb" else stack_numbers(first, flow_stack)
    assert files.min() >= start + 1 and files.max() <= last_file
    if modality == "rgb+flow":  # the paired RGB frame exists too
        assert first.max() <= start + n
    graph = frame_numbers_tf(
        tf.constant(n, tf.int64), frames, modality, flow_stack, tf.constant(start, tf.int64), jitter, tf.constant(u)
    )
    np.testing.assert_array_equal(graph.numpy(), first)


def test_tf_version_inside_tf_data_equals_eager():
    counts = tf.constant([100, 34, 11, 223], tf.int64)
    starts = tf.constant([0, 0, 0, 285], tf.int64)
    dataset = tf.data.Dataset.from_tensor_slices((counts, starts)).map(
        lambda n, s: stack_numbers(frame_numbers_tf(n, 25, "flow", 10, s), 10)
    )
    for (n, s), graph in zip(zip(counts.numpy(), starts.numpy()), dataset):
        np.testing.assert_array_equal(graph.numpy(), stack_numbers(frame_numbers(n, 25, "flow", 10, s), 10))
