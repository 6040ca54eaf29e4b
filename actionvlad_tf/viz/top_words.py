"""Top contributing action words for a video's class (paper Sec. 4.7, Fig. 8).

The linear classifier's score for class c is Σ_k Σ_d W[k·D + d, c] · v[k·D + d] + b_c over the
ActionVLAD vector v (cluster-major, release §1.2). The inner sum is action word k's contribution;
the figure ranks the words by it and shows, for the top ones, the frames where they fire.
"""

import numpy as np

from actionvlad_tf.viz.action_words import frames_where_word_fires, hard_assignments
from actionvlad_tf.viz.common import new_figure, overlay, save_png, show_image


def word_contributions(vlad, kernel, class_index, num_clusters):
    """[K] contribution of each action word to the class score (the score less the bias)."""
    vlad = np.asarray(vlad, np.float64).reshape(num_clusters, -1)
    weights = np.asarray(kernel, np.float64)[:, class_index].reshape(num_clusters, -1)
    return (vlad * weights).sum(axis=1)


def class_contributions(internals, class_index=None):
    """(class, [K] `word_contributions` to its score) of one video; `internals` as
    `common.vlad_internals` (vlad, kernel, logits, assignments); class_index None: the predicted class."""
    explained = int(np.argmax(internals["logits"])) if class_index is None else int(class_index)
    return explained, word_contributions(
        internals["vlad"], internals["kernel"], explained, internals["assignments"].shape[-1]
    )


def contributing_words(internals, num_words, class_index=None):
    """Of the action words that win at least one position of the video, the `num_words` with the
    largest contribution to its class score (`class_contributions`), largest first (intra-
    normalisation gives a word that no descriptor is near a unit residual too, so an absent word can
    contribute)."""
    _, contributions = class_contributions(internals, class_index)
    present = np.unique(hard_assignments(internals["assignments"]))
    return [int(k) for k in present[np.argsort(-contributions[present], kind="stable")][:num_words]]


def plot_top_words(crops, assignments, contributions, path, title, num_words=4, frames_per_word=4):
    """A bar chart of every word's contribution (the top `num_words` in red) above one row per top
    word: the video's frames where it wins the most positions. Returns the top words."""
    order = np.argsort(-contributions, kind="stable")
    top = [int(k) for k in order[:num_words]]
    figure = new_figure(max(2.0 * frames_per_word, 6.0), 2.4 + 1.9 * len(top))
    grid = figure.add_gridspec(1 + len(top), frames_per_word, height_ratios=[1.4] + [1.0] * len(top))
    bars = figure.add_subplot(grid[0, :])
    colours = ["tab:red" if k in top else "tab:gray" for k in order]
    bars.bar(np.arange(len(order)), contributions[order], color=colours)
    bars.set_xticks(np.arange(len(order)), [str(k) for k in order], fontsize=6, rotation=90)
    bars.set_xlabel("action word (sorted by contribution)", fontsize=8)
    bars.set_ylabel("contribution to score", fontsize=8)
    bars.axhline(0.0, color="black", linewidth=0.5)
    bars.set_title(title, fontsize=10)
    for row, word in enumerate(top, start=1):
        shown = frames_where_word_fires([assignments], word, frames_per_word)
        for column in range(frames_per_word):
            axes = figure.add_subplot(grid[row, column])
            if column < len(shown):
                _, t, share = shown[column]
                show_image(
                    axes,
                    overlay(crops[t], hard_assignments(assignments[t]) == word),
                    f"word {word} ({contributions[word]:+.3f}) · f{t + 1} · {share:.0%}",
                )
            else:
                axes.axis("off")
    figure.tight_layout()
    save_png(figure, path)
    return top
