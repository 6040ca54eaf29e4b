"""Tests of actionvlad_tf.evaluation.fusion: late fusion, iDT fusion, N streams and the weight search."""

import numpy as np
import pytest

from actionvlad_tf.evaluation import fusion, metrics


def test_late_fusion_is_the_release_weighted_sum_of_raw_logits():
    rgb = np.array([[2.0, 0.0, 1.0]])
    flow = np.array([[0.0, 3.0, 1.0]])
    np.testing.assert_allclose(fusion.late_fusion(rgb, flow), 0.333 * rgb + 0.667 * flow)
    np.testing.assert_allclose(fusion.late_fusion(rgb, flow, 0.0), rgb)


def test_softmax_and_l2_normalisation():
    rgb = np.array([[1000.0, 0.0], [0.0, 0.0]])  # large logits must not overflow
    flow = np.array([[0.0, 3.0], [4.0, 0.0]])
    softmax = fusion.late_fusion(rgb, flow, 0.5, normalize="softmax")
    expected_flow = np.exp(flow) / np.exp(flow).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(softmax, 0.5 * np.array([[1.0, 0.0], [0.5, 0.5]]) + 0.5 * expected_flow)
    l2 = fusion.late_fusion(rgb, flow, 0.5, normalize="l2")
    np.testing.assert_allclose(l2, [[0.5, 0.5], [0.5, 0.0]])  # zero rgb row stays zero
    with pytest.raises(ValueError, match="normalize must be one of"):
        fusion.late_fusion(rgb, flow, normalize="probability")


def test_fuse_idt_normalises_rows_and_survives_zero_rows():
    scores = np.array([[3.0, 4.0], [1.0, 0.0]])
    idt = np.array([[0.0, 2.0], [0.0, 0.0]])  # second video has no iDT scores
    fused = fusion.fuse_idt(scores, idt, idt_weight=0.25)
    np.testing.assert_allclose(fused, [[0.75 * 0.6, 0.75 * 0.8 + 0.25], [0.75, 0.0]])
    assert np.isfinite(fusion.fuse_idt(np.zeros((1, 3)), np.zeros((1, 3)))).all()


def test_fuse_streams_generalises_to_three_streams():
    a, b, c = np.eye(3)[None, 0], np.eye(3)[None, 1], np.eye(3)[None, 2]
    np.testing.assert_allclose(fusion.fuse_streams([a, b, c], [0.2, 0.3, 0.5]), [[0.2, 0.3, 0.5]])
    with pytest.raises(ValueError, match="one weight per stream"):
        fusion.fuse_streams([a, b], [1.0])
    with pytest.raises(ValueError, match="one shape"):
        fusion.fuse_streams([a, np.zeros((1, 4))], [0.5, 0.5])


def test_weight_search_finds_the_informative_stream():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, size=100)
    informative = np.eye(5)[labels] + 0.1 * rng.normal(size=(100, 5))
    noise = rng.normal(size=(100, 5))
    best, grid, accuracies = fusion.search_flow_weight(noise, informative, labels, grid=[0.0, 0.5, 1.0])
    assert best == 1.0 and accuracies[-1] == 100.0
    np.testing.assert_array_equal(grid, [0.0, 0.5, 1.0])
    best, _, _ = fusion.search_flow_weight(informative, noise, labels, grid=[0.0, 0.5, 1.0])
    assert best == 0.0


def _released(shared_data, split):
    from actionvlad_tf.evaluation import logits_io

    labels = np.array(
        [int(line.split()[-1]) for line in (shared_data / "hmdb51" / f"test_split{split}.txt").read_text().splitlines()]
    )
    root = shared_data / "hmdb51" / "released_logits"
    return labels, *(
        logits_io.read_logits(root / f"{stream}_split{split}.h5", labels.size) for stream in ("rgb", "flow")
    )


def test_search_on_released_split1_logits_prefers_more_flow(shared_data):
    labels, rgb, flow = _released(shared_data, 1)
    best, _, accuracies = fusion.search_flow_weight(rgb, flow, labels)
    assert 0.5 < best < 0.8  # the release's 1:2 weighting sits in the best region
    assert accuracies.max() >= metrics.top_k_accuracy(fusion.late_fusion(rgb, flow), labels)
