"""'Action words' (paper Sec. 4.7, Fig. 6 and 7): which conv5 positions each VLAD cluster takes.

Each panel shows one word k on one frame (the crop the network saw) with its soft assignment a_k
(Eq. 1) at every conv5 position as a heat map: upsampled smoothly (bicubic) to the crop, coloured
with the perceptually uniform 'inferno' colormap and alpha-blended over the frame with an opacity
that grows with a_k, so positions the word does not take leave the frame as it is and the bright
yellow blobs are the receptive-field centres of the descriptors near the word. One colour bar per
figure, "assignment to the word" on the fixed scale 0–1, so that panels compare
(`common.heat_overlay`, `common.heat_colorbar`).

Which words and frames are shown still follows the hard assignment (the argmax over clusters of the
soft assignment): a word "wins" a position when it is the argmax there.

* `plot_video_action_words` (Fig. 7): for one video, rows of action words over its frames, showing
  how a word "tracks" a patch through the video.
* `plot_action_word_examples` (Fig. 6): for one action word, the frames of many videos where it
  wins the largest share of positions.

Each has a `*_figure` twin that returns the matplotlib Figure instead of writing it.
"""

import numpy as np

from actionvlad_tf.viz.common import heat_colorbar, heat_overlay, new_figure, save_png, show_image

COLORBAR_LABEL = "assignment to the word"
COLORBAR_WIDTH = 0.8  # inches added to a figure's width for its colour bar


def hard_assignments(assignments):
    """[..., K] soft assignments → [...] index of the winning action word."""
    return np.argmax(assignments, axis=-1)


def frequent_words(assignments, num_words):
    """The `num_words` action words that win the most positions, most frequent first."""
    counts = np.bincount(hard_assignments(assignments).ravel(), minlength=assignments.shape[-1])
    return [int(k) for k in np.argsort(-counts, kind="stable")[:num_words]]


def evenly_spaced(num_frames, count):
    return sorted(set(np.linspace(0, num_frames - 1, min(count, num_frames)).round().astype(int).tolist()))


def video_action_words_figure(crops, assignments, words=None, num_words=2, max_frames=8, title=None):
    """(Figure, words shown) of Fig. 7: rows = action words (default: the `num_words` most frequent
    in this video), columns = up to `max_frames` evenly spaced frames, each word's soft assignment as
    a heat map over the frame; `crops` [T, S, S, 3] uint8 RGB are the frames as the network saw them,
    `assignments` [T, h, w, K]."""
    if len(crops) != len(assignments):
        raise ValueError(f"{len(crops)} frames but {len(assignments)} assignment maps")
    words = list(words) if words is not None else frequent_words(assignments, num_words)
    frames = evenly_spaced(len(crops), max_frames)
    figure = new_figure(1.5 * len(frames) + COLORBAR_WIDTH, 1.6 * len(words) + (0.4 if title else 0))
    figure.set_layout_engine("constrained")
    panels = []
    for row, word in enumerate(words):
        for column, t in enumerate(frames):
            axes = figure.add_subplot(len(words), len(frames), row * len(frames) + column + 1)
            show_image(axes, heat_overlay(crops[t], assignments[t][..., word]), f"word {word} · frame {t + 1}")
            panels.append(axes)
    heat_colorbar(figure, panels, COLORBAR_LABEL)
    if title:
        figure.suptitle(title, fontsize=10)
    return figure, words


def plot_video_action_words(crops, assignments, path, words=None, num_words=2, max_frames=8, title=None):
    """Fig. 7 (`video_action_words_figure`) written to `path` as PNG. Returns the words shown."""
    figure, words = video_action_words_figure(crops, assignments, words, num_words, max_frames, title)
    save_png(figure, path)
    return words


def frames_where_word_fires(assignments_per_video, word, num_examples, max_per_video=None):
    """[(video, frame, share)] of the frames in which `word` wins the largest share of positions,
    largest first, at most `max_per_video` from one video; frames where it wins nothing are left out."""
    found = []
    for video, assignments in enumerate(assignments_per_video):
        share = (hard_assignments(assignments) == word).reshape(len(assignments), -1).mean(axis=1)
        best = sorted(((video, t, float(s)) for t, s in enumerate(share) if s > 0), key=lambda item: -item[2])
        found += best[:max_per_video]
    return sorted(found, key=lambda item: -item[2])[:num_examples]


def action_word_examples_figure(
    crops_per_video, assignments_per_video, word, num_examples=8, columns=4, video_names=None, max_per_video=2
):
    """(Figure, [(video, frame, share)] shown) of Fig. 6: the frames (of many videos, at most
    `max_per_video` each) where action word `word` wins the largest share of positions, with its soft
    assignment as a heat map; an error if the word wins no position anywhere."""
    chosen = frames_where_word_fires(assignments_per_video, word, num_examples, max_per_video)
    if not chosen:
        raise ValueError(f"action word {word} wins no position in any of the {len(crops_per_video)} videos")
    columns = min(columns, len(chosen))
    rows = -(-len(chosen) // columns)
    figure = new_figure(2.2 * columns + COLORBAR_WIDTH, 2.3 * rows + 0.4)
    figure.set_layout_engine("constrained")
    panels = []
    for index, (video, t, share) in enumerate(chosen):
        name = video_names[video] if video_names else f"video {video + 1}"
        axes = figure.add_subplot(rows, columns, index + 1)
        show_image(
            axes,
            heat_overlay(crops_per_video[video][t], assignments_per_video[video][t][..., word]),
            f"{name[:24]}\nframe {t + 1} · {share:.0%} of positions",
        )
        panels.append(axes)
    heat_colorbar(figure, panels, COLORBAR_LABEL)
    figure.suptitle(f"action word {word}", fontsize=10)
    return figure, chosen


def plot_action_word_examples(
    crops_per_video, assignments_per_video, word, path, num_examples=8, columns=4, video_names=None, max_per_video=2
):
    """Fig. 6 (`action_word_examples_figure`) written to `path` as PNG. Returns the (video, frame,
    share) shown; an error if the word wins no position anywhere."""
    figure, chosen = action_word_examples_figure(
        crops_per_video, assignments_per_video, word, num_examples, columns, video_names, max_per_video
    )
    save_png(figure, path)
    return chosen
