"""k-means initialisation (release §5): frame sampling, descriptor normalisation, seeded centres, .npz."""

import numpy as np
import pytest
import tensorflow as tf

from actionvlad_tf.centers import load_centers, save_centers
from actionvlad_tf.data.lists import VideoEntry
from actionvlad_tf.data.sampling import frame_numbers
from actionvlad_tf.evaluation.fusion import l2_normalize_rows
from actionvlad_tf.training.kmeans import fit_centers, sample_descriptors, sample_frame_entries


def _entries(count=3, frames=30):
    return [VideoEntry(f"class/video{i}", frames, i % 2, line=i + 1, list_file="train.txt") for i in range(count)]


@pytest.mark.parametrize("modality", ["rgb", "flow"])
def test_frame_entries_cycle_shuffled_videos_with_one_random_frame_each(modality):
    entries = _entries()
    chosen = sample_frame_entries(entries, 7, modality, flow_stack=10, seed=3)
    assert len(chosen) == 7
    # Every video once per pass through the list (3 videos: passes of 3, 3, then 1).
    assert sorted(e.path for e in chosen[:3]) == sorted(e.path for e in entries)
    assert sorted(e.path for e in chosen[3:6]) == sorted(e.path for e in entries)
    for entry in chosen:
        # A one-sample clip: T = 1 without a draw (evaluation) reads file start_frame + 1.
        (first,) = frame_numbers(entry.num_frames, 1, modality, 10, entry.start_frame)
        assert first == entry.start_frame + 1
        last_allowed = 30 if modality == "rgb" else 30 - 10 - 1  # U{0..n−1} / U{0..n−L−2}, 1-based
        assert 1 <= first <= last_allowed
        assert entry.where.startswith("train.txt:")
    assert len({e.start_frame for e in chosen}) > 1  # frames are drawn, not fixed
    assert chosen == sample_frame_entries(entries, 7, modality, flow_stack=10, seed=3)


def test_descriptors_are_l2_normalised_per_position_and_subsampled():
    maps = np.random.default_rng(0).normal(size=(5, 2, 3, 4)).astype(np.float32)  # [frames, h, w, D]
    maps[0, 0, 0] = 0.0  # an all-zero descriptor stays zero (the 1e-12 floor), not NaN
    frames = tf.data.Dataset.from_tensor_slices((maps, np.zeros(5))).batch(2)
    descriptors = sample_descriptors(lambda x: x, frames, num_frames=5, progress=False)
    assert descriptors.shape == (30, 4)
    expected = maps.reshape(-1, 4) / np.maximum(np.linalg.norm(maps.reshape(-1, 4), axis=1, keepdims=True), 1e-6)
    np.testing.assert_allclose(descriptors, expected, rtol=1e-5, atol=1e-6)
    sub = sample_descriptors(
        lambda x: x, frames.map(lambda m, _: m[:, None]), 3, descriptors_per_frame=2, progress=False
    )
    assert sub.shape == (6, 4)
    assert all(any(np.allclose(row, full) for full in expected[:18]) for row in sub)
    with pytest.raises(ValueError, match="ran out after 5 of the 6"):
        sample_descriptors(lambda x: x, frames, num_frames=6, progress=False)


@pytest.mark.parametrize("algorithm", ["kmeans", "minibatch"])
def test_centers_find_the_clusters_reproducibly_and_are_not_renormalised(algorithm):
    rng = np.random.default_rng(0)
    truth = l2_normalize_rows(rng.normal(size=(4, 8)).astype(np.float32))
    points = np.repeat(truth, 100, axis=0) + rng.normal(scale=0.3, size=(400, 8))
    descriptors = l2_normalize_rows(points.astype(np.float32))
    centers, info = fit_centers(descriptors, 4, seed=1, algorithm=algorithm, n_init=3, batch_size=64)
    again, _ = fit_centers(descriptors, 4, seed=1, algorithm=algorithm, n_init=3, batch_size=64)
    np.testing.assert_array_equal(centers, again)
    assert centers.shape == (4, 8) and centers.dtype == np.float32 and info["inertia"] > 0
    # Each true direction has a centre close to it; the centres are means of unit vectors: ‖c‖ < 1.
    similarity = l2_normalize_rows(centers) @ truth.T
    assert np.all(similarity.max(axis=0) > 0.95)
    assert np.all(np.linalg.norm(centers, axis=1) < 0.99)
    with pytest.raises(ValueError, match="at least K descriptors"):
        fit_centers(descriptors[:3], 4)


def test_centers_npz_round_trip_and_checks(tmp_path):
    centers = np.random.default_rng(0).normal(size=(4, 8)).astype(np.float32)
    path = save_centers(tmp_path / "c.npz", centers, seed=3, inertia=1.5)
    np.testing.assert_array_equal(load_centers(path, num_clusters=4, descriptor_size=8), centers)
    assert list(tmp_path.iterdir()) == [tmp_path / "c.npz"]
    with pytest.raises(ValueError, match=r"shape \(4, 8\), the model needs \[64, D\]"):
        load_centers(path, num_clusters=64)
    np.savez(tmp_path / "object.npz", centers=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="object.npz.*not a numeric array.*allow_pickle=False"):
        load_centers(tmp_path / "object.npz")
    np.savez(tmp_path / "other.npz", means=centers)
    with pytest.raises(ValueError, match="no 'centers'"):
        load_centers(tmp_path / "other.npz")
    with pytest.raises(ValueError, match="finite"):
        save_centers(tmp_path / "nan.npz", np.full((2, 2), np.nan))
