"""Figures: action words (Fig. 6, 7), top contributing words (Fig. 8), confusion difference (Fig. 9)
and t-SNE (Fig. 5, 10). Each PNG exists with the expected size and is not blank; the numbers behind
them are checked against the model."""

import os
import subprocess
import sys

import cv2
import h5py
import keras
import matplotlib.image
import numpy as np
import pytest

from actionvlad_tf.data.augment import preprocess_for_eval
from actionvlad_tf.models import build_actionvlad
from actionvlad_tf.viz import action_words, common, top_words, tsne

S, K, C = 32, 4, 5
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _assert_png(path, width_in, height_in, dpi=100):
    image = matplotlib.image.imread(path)
    assert image.shape[:2] == (round(height_in * dpi), round(width_in * dpi))
    assert image[..., :3].var() > 0


def _write_video(path, num_frames=30, seed=0):
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (64, 48))
    base = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    for t in range(num_frames):
        writer.write(np.roll(base, 2 * t, axis=1))
    writer.release()
    return str(path)


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    net = build_actionvlad(C, frames_per_video=None, image_size=S, num_clusters=K, netvlad_alpha=10.0)
    rng = np.random.default_rng(0)
    pooling = net.get_layer("pooling")
    pooling.set_centers(rng.normal(0, 1, (K, 512)) / np.sqrt(512) * 0.8)  # soft, mixed assignments
    net.get_layer("classifier").kernel.assign(rng.normal(0, 1.0, net.get_layer("classifier").kernel.shape))
    return net


@pytest.fixture(scope="module")
def video_internals(model):
    frames = np.random.default_rng(1).integers(0, 255, (6, 40, 56, 3), dtype=np.uint8)
    crops = common.rgb_crops(frames, S)
    return crops, common.vlad_internals(model, preprocess_for_eval(frames, "rgb", 1, S).numpy())


def test_internals_and_contributions_explain_the_logits(model, video_internals):
    crops, internals = video_internals
    assert crops.shape == (6, S, S, 3) and crops.dtype == np.uint8
    assert internals["descriptors"].shape == (6, 2, 2, 512)
    np.testing.assert_allclose(internals["assignments"].sum(-1), 1.0, atol=1e-5)
    bias = model.get_layer("classifier").bias.numpy()
    for c in range(C):
        contributions = top_words.word_contributions(internals["vlad"], internals["kernel"], c, K)
        assert contributions.shape == (K,)
        np.testing.assert_allclose(contributions.sum() + bias[c], internals["logits"][c], atol=1e-4)


def test_overlay_and_word_selection():
    frame = np.full((4, 6, 3), 200, np.uint8)
    mask = np.array([[1, 0], [0, 0]], bool)
    shown = common.overlay(frame, mask, dim=0.5)
    np.testing.assert_array_equal(shown[:2, :3], 200)  # the cell of position (0, 0) stays bright
    np.testing.assert_array_equal(shown[2:, :], 100)
    assignments = np.zeros((2, 2, 2, 3))
    assignments[..., 1] = 1.0
    assignments[0, 0, 0] = [0.9, 0.1, 0.0]
    assert action_words.frequent_words(assignments, 2) == [1, 0]
    assert action_words.frames_where_word_fires([assignments], 0, 5) == [(0, 0, 0.25)]


def test_heat_overlay_blends_the_colormap_by_value():
    frame = np.full((32, 48, 3), (40, 90, 160), np.uint8)
    values = np.zeros((2, 3), np.float32)
    values[1, 2] = 1.0
    shown = common.heat_overlay(frame, values, cmap="magma", max_alpha=0.5)
    assert shown.shape == frame.shape and shown.dtype == np.uint8
    # value 0 more than a cell (16 px) from the one cell at 1, centred at (24, 40): the frame itself
    np.testing.assert_array_equal(shown[:, :24], frame[:, :24])
    np.testing.assert_array_equal(shown[:8], frame[:8])
    top = np.array(matplotlib.colormaps["magma"](1.0)[:3]) * 255
    centre = shown[24, 40].astype(float)  # past the centre of cell (1, 2), at the edge: held at 1
    np.testing.assert_allclose(centre, 0.5 * frame[0, 0] + 0.5 * top, atol=1)
    assert np.abs(centre - top).sum() < np.abs(frame[0, 0] - top).sum()
    ones = common.heat_overlay(frame, np.ones((2, 3)), max_alpha=1.0)  # opaque: the top colour itself
    np.testing.assert_allclose(
        ones, np.broadcast_to(matplotlib.colormaps[common.HEAT_COLORMAP](1.0)[:3], ones.shape) * 255, atol=1
    )
    with pytest.raises(ValueError, match="one value per position"):
        common.heat_overlay(frame, np.zeros((2, 3, 1)))


def test_upsample_smoothly_is_exact_at_cell_centres_and_does_not_overshoot():
    values = np.zeros((3, 4))
    values[1, 2] = 1.0
    values[2, 0] = 0.5
    up = common.upsample_smoothly(values, 33, 44)  # 11 px per cell: cell i's centre is pixel 5 + 11·i
    assert up.shape == (33, 44)
    assert 0.0 <= up.min() and up.max() <= 1.0
    np.testing.assert_allclose(up[5::11, 5::11], values, atol=1e-12)
    np.testing.assert_allclose(common.upsample_smoothly(values, 3, 4), values, atol=1e-12)
    np.testing.assert_array_equal(up[:16, :16], 0.0)  # only zero cells around: no ringing
    row = up[16, 16:28]  # along the peak's row, from the centre of cell (1, 1) to that of (1, 2)
    assert (np.diff(row) >= 0).all() and len(set(np.round(row, 6).tolist())) == len(row)  # smooth, no steps
    np.testing.assert_allclose(common.upsample_smoothly(np.array([[0.3]]), 5, 7), 0.3)


def _colorbars(figure):
    return [axes for axes in figure.axes if axes.get_ylabel() == action_words.COLORBAR_LABEL]


def test_action_word_figures(tmp_path, video_internals):
    crops, internals = video_internals
    figure, words = action_words.video_action_words_figure(
        crops, internals["assignments"], num_words=2, max_frames=4, title="clip"
    )
    assert len(words) == 2 and len(figure.axes) == 2 * 4 + 1 and len(_colorbars(figure)) == 1
    assert _colorbars(figure)[0].get_ylim() == (0.0, 1.0)
    panel = figure.axes[1].get_images()[0].get_array()  # word words[0], the second frame shown
    t, word = action_words.evenly_spaced(len(crops), 4)[1], words[0]
    np.testing.assert_array_equal(panel, common.heat_overlay(crops[t], internals["assignments"][t][..., word]))
    assert figure.axes[1].get_title() == f"word {word} · frame {t + 1}"
    words = action_words.plot_video_action_words(
        crops, internals["assignments"], tmp_path / "video.png", num_words=2, max_frames=4, title="clip"
    )
    assert len(words) == 2
    _assert_png(tmp_path / "video.png", 1.5 * 4 + action_words.COLORBAR_WIDTH, 1.6 * 2 + 0.4)
    word = words[0]
    figure, chosen = action_words.action_word_examples_figure(
        [crops, crops[::-1]], [internals["assignments"]] * 2, word, num_examples=6, columns=3, max_per_video=2
    )
    assert len(figure.axes) == len(chosen) + 1 and len(_colorbars(figure)) == 1
    shown = action_words.plot_action_word_examples(
        [crops, crops[::-1]],
        [internals["assignments"]] * 2,
        word,
        tmp_path / "word.png",
        num_examples=6,
        columns=3,
        max_per_video=2,
    )
    assert shown == chosen
    assert 0 < len(shown) <= 4 and [v for v, _, _ in shown].count(0) <= 2
    shares = [s for _, _, s in shown]
    assert shares == sorted(shares, reverse=True)
    rows = -(-len(shown) // min(3, len(shown)))
    _assert_png(tmp_path / "word.png", 2.2 * min(3, len(shown)) + action_words.COLORBAR_WIDTH, 2.3 * rows + 0.4)
    unused = set(range(K)) - set(action_words.hard_assignments(internals["assignments"]).ravel().tolist())
    for absent in unused:
        with pytest.raises(ValueError, match=f"action word {absent} wins no position"):
            action_words.plot_action_word_examples([crops], [internals["assignments"]], absent, tmp_path / "x.png")


def test_top_words_figure(tmp_path, video_internals):
    crops, internals = video_internals
    contributions = top_words.word_contributions(internals["vlad"], internals["kernel"], 0, K)
    top = top_words.plot_top_words(
        crops, internals["assignments"], contributions, tmp_path / "top.png", "class 0", num_words=2, frames_per_word=3
    )
    assert top == [int(k) for k in np.argsort(-contributions)[:2]]
    _assert_png(tmp_path / "top.png", 6.0, 2.4 + 1.9 * 2)


def test_contributing_words_are_present_words_ranked_by_contribution(video_internals):
    _, internals = video_internals
    winners = set(action_words.hard_assignments(internals["assignments"]).ravel().tolist())
    predicted = int(np.argmax(internals["logits"]))
    contributions = top_words.word_contributions(internals["vlad"], internals["kernel"], predicted, K)
    words = top_words.contributing_words(internals, K)
    assert set(words) == winners and len(words) == len(winners)
    assert [contributions[k] for k in words] == sorted(contributions[list(winners)], reverse=True)
    other = (predicted + 1) % C
    assert top_words.contributing_words(internals, 1, class_index=other) == [
        max(winners, key=lambda k: top_words.word_contributions(internals["vlad"], internals["kernel"], other, K)[k])
    ]


def test_tsne_figure(tmp_path):
    rng = np.random.default_rng(0)
    maps = np.concatenate([rng.normal(0, 1, (4, 3, 3, 16)), rng.normal(5, 1, (4, 3, 3, 16))])
    positions = tsne.sample_positions(len(maps), 3, 3, 4, rng)
    assert len(positions) == 32 and len(set(positions.tolist())) == 32
    assert set((positions // 9).tolist()) == set(range(8))
    descriptors = tsne.take_descriptors(maps, positions)
    np.testing.assert_allclose(np.linalg.norm(descriptors, axis=1), 1.0)
    labels = positions // 9 // 4  # the two groups of frames
    embeddings = tsne.plot_tsne(
        [("a", descriptors, labels), ("b", descriptors * 2, labels)], tmp_path / "t.png", ["first", "second"]
    )
    assert [e.shape for e in embeddings] == [(32, 2), (32, 2)]
    _assert_png(tmp_path / "t.png", 9.0, 4.8)
    with pytest.raises(ValueError, match="at least 4 points"):
        tsne.embed(descriptors[:3])


def _run(script, *args):
    result = subprocess.run(
        [sys.executable, f"experiments/{script}", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow  # subprocesses of the absl entry points; the library is tested above
def test_entry_points(tmp_path, model):
    """viz_action_words, viz_top_words and viz_tsne (rgb_vs_flow) on written clips with tiny
    models, and viz_confusion_diff on written logits."""
    videos = [_write_video(tmp_path / f"clip{i}.avi", seed=i) for i in range(2)]
    model.save(tmp_path / "rgb.keras")
    flow = build_actionvlad(C, modality="flow", frames_per_video=None, image_size=S, num_clusters=K)
    flow.save(tmp_path / "flow.keras")
    out = _run(
        "viz_action_words.py",
        f"--model={tmp_path / 'rgb.keras'}",
        f"--videos={','.join(videos)}",
        f"--output_dir={tmp_path / 'words'}",
        "--frames_per_video=6",
        "--max_frames=3",
        "--num_words=1",
        "--rank=contribution",
    )
    pngs = sorted(p.name for p in (tmp_path / "words").glob("*.png"))
    assert pngs[:2] == ["video_1_clip0.png", "video_2_clip1.png"] and pngs[2].startswith("word_")
    assert len(pngs) == 3 and pngs[2] in out
    for png in pngs[:2]:
        _assert_png(tmp_path / "words" / png, 1.5 * 3 + action_words.COLORBAR_WIDTH, 1.6 + 0.4)

    out = _run(
        "viz_top_words.py",
        f"--model={tmp_path / 'rgb.keras'}",
        f"--video={videos[0]}",
        f"--output={tmp_path / 'top.png'}",
        "--frames_per_video=6",
        "--num_words=2",
        "--frames_per_word=2",
    )
    assert "top words" in out
    _assert_png(tmp_path / "top.png", 6.0, 2.4 + 1.9 * 2)

    out = _run(
        "viz_tsne.py",
        "--mode=rgb_vs_flow",
        f"--rgb_model={tmp_path / 'rgb.keras'}",
        f"--flow_model={tmp_path / 'flow.keras'}",
        f"--videos={','.join(videos)}",
        "--frames_per_video=4",
        "--descriptors_per_frame=2",
        "--flow_method=dis",
        f"--output={tmp_path / 'tsne.png'}",
    )
    assert "32 points" in out  # 2 videos × 4 frames × 2 positions × 2 streams
    _assert_png(tmp_path / "tsne.png", 4.5, 4.8)

    labels = np.arange(12) % 3
    (tmp_path / "list.txt").write_text("".join(f"v{i} 40 {label}\n" for i, label in enumerate(labels)))
    (tmp_path / "names.txt").write_text("run\nwalk\njump\n")
    for name, correct in (("a", 10), ("b", 6)):  # a gets 10 of 12 right, b 6
        logits = np.eye(3)[(labels + (np.arange(12) >= correct)) % 3]
        with h5py.File(tmp_path / f"{name}.h5", "w") as f:
            f["stream0/logits"] = logits.astype(np.float32)
    out = _run(
        "viz_confusion_diff.py",
        f"--a={tmp_path / 'a.h5'}",
        f"--b={tmp_path / 'b.h5'}",
        f"--list_file={tmp_path / 'list.txt'}",
        f"--class_names={tmp_path / 'names.txt'}",
        f"--output={tmp_path / 'diff.png'}",
    )
    assert "top-1 83.33% vs 50.00%" in out
    image = matplotlib.image.imread(tmp_path / "diff.png")
    assert image[..., :3].var() > 0


@pytest.mark.slow
def test_tsne_conv5_vs_fc7_entry_point(tmp_path):
    """Fig. 5 with a random VGG-16 at 224 (fc6 alone holds 103M weights: slow)."""
    videos = [_write_video(tmp_path / f"clip{i}.avi", seed=i) for i in range(2)]
    out = _run(
        "viz_tsne.py",
        "--mode=conv5_vs_fc7",
        f"--videos={','.join(videos)}",
        "--frames_per_video=4",
        "--descriptors_per_frame=3",
        f"--output={tmp_path / 'tsne.png'}",
    )
    assert "conv5_3 (pre-ReLU): 24 points" in out and "fc7 (pre-ReLU): 8 points" in out
    _assert_png(tmp_path / "tsne.png", 9.0, 4.8)
