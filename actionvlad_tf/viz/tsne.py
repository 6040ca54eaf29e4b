"""t-SNE of local features (paper Fig. 5: conv5_3 vs fc7 of the same frames, coloured by video;
appendix Fig. 10: L2-normalised conv5 of corresponding RGB and flow frames, coloured by stream).

conv5 maps give many descriptors per frame; `sample_positions` picks the same positions for maps of
corresponding frames, so RGB and flow descriptors stay paired.
"""

import keras
import matplotlib
import numpy as np
from sklearn.manifold import TSNE

from actionvlad_tf.data.augment import preprocess_for_eval
from actionvlad_tf.models.vgg16 import build_vgg16
from actionvlad_tf.viz.common import new_figure, save_png, vlad_internals

MAX_LEGEND_ENTRIES = 12


def sample_positions(num_frames, height, width, per_frame, rng):
    """[num_frames · per_frame] flat indices into maps [num_frames, height, width]: per_frame
    distinct positions of each frame."""
    per_frame = min(per_frame, height * width)
    picks = np.stack([rng.choice(height * width, per_frame, replace=False) for _ in range(num_frames)])
    return (np.arange(num_frames)[:, None] * height * width + picks).ravel()


def take_descriptors(maps, positions, normalize=True):
    """Descriptors [len(positions), D] of maps [N, h, w, D] at flat `positions`, L2-normalised
    per descriptor (as NetVLAD sees them, release §1.2) unless `normalize` is False."""
    flat = np.asarray(maps, np.float64).reshape(-1, maps.shape[-1])[positions]
    if normalize:
        flat = flat / np.sqrt(np.maximum((flat**2).sum(axis=1, keepdims=True), 1e-12))
    return flat


def conv5_vs_fc7_panels(videos, vgg_weights, descriptors_per_frame, rng):
    """Fig. 5 panels: conv5_3 descriptors and fc7 vectors (both pre-ReLU) of the same frames of a
    VGG-16 (`vgg_weights`: None random, "imagenet" or an `.h5`), labelled by video. `videos`:
    per video, its sampled RGB frames [T, H, W, 3] (uint8, BGR)."""
    vgg = build_vgg16(conv_endpoint="fc7", input_shape=(224, 224), weights=vgg_weights)
    taps = keras.Model(vgg.input, [vgg.get_layer("block5_conv3").output, vgg.output])
    conv, fc, conv_labels, fc_labels = [], [], [], []
    for index, frames in enumerate(videos):
        conv5, fc7 = (keras.ops.convert_to_numpy(t) for t in taps(preprocess_for_eval(frames, "rgb")))
        positions = sample_positions(len(conv5), conv5.shape[1], conv5.shape[2], descriptors_per_frame, rng)
        conv.append(take_descriptors(conv5, positions))
        fc.append(take_descriptors(fc7, np.arange(len(fc7))))
        conv_labels += [index] * len(positions)
        fc_labels += [index] * len(fc7)
    return [
        ("conv5_3 (pre-ReLU)", np.concatenate(conv), conv_labels),
        ("fc7 (pre-ReLU)", np.concatenate(fc), fc_labels),
    ]


def rgb_vs_flow_panels(rgb_model, flow_model, videos, descriptors_per_frame, rng):
    """Fig. 10 panel: conv5 descriptors of corresponding RGB and flow frames, labelled by stream (0
    RGB, 1 flow). `videos`: per video, its sampled {"rgb": [T, H, W, 3], "flow": [T, H, W, 20]}."""
    features = [[], []]
    for inputs in videos:
        maps = [
            vlad_internals(model, preprocess_for_eval(inputs[m], m, 1, model.input.shape[2]).numpy())["descriptors"]
            for model, m in ((rgb_model, "rgb"), (flow_model, "flow"))
        ]
        positions = sample_positions(len(maps[0]), maps[0].shape[1], maps[0].shape[2], descriptors_per_frame, rng)
        for stream, conv5 in enumerate(maps):
            features[stream].append(take_descriptors(conv5, positions))
    rgb, flow = (np.concatenate(f) for f in features)
    return [("conv5 of corresponding frames", np.concatenate([rgb, flow]), [0] * len(rgb) + [1] * len(flow))]


def embed(features, seed=0, perplexity=30.0):
    """2-D t-SNE embedding [N, 2]; perplexity capped below N / 3 for small sets."""
    features = np.asarray(features, np.float64)
    if len(features) < 4:
        raise ValueError(f"t-SNE needs at least 4 points, got {len(features)}")
    perplexity = min(perplexity, (len(features) - 1) / 3.0)
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(features)


def plot_tsne(panels, path, label_names=None, seed=0, title=None):
    """One scatter per panel (title, features [N, D], labels [N] ints), each embedded on its own,
    points coloured by label (same colours in every panel). Returns the embeddings."""
    figure = new_figure(4.5 * len(panels), 4.8)
    num_labels = max(int(np.max(labels)) + 1 for _, _, labels in panels)
    colours = matplotlib.colormaps["tab10" if num_labels <= 10 else "tab20"]
    embeddings = []
    for index, (panel_title, features, labels) in enumerate(panels):
        labels = np.asarray(labels)
        if len(labels) != len(features):
            raise ValueError(f"panel {panel_title!r}: {len(features)} points but {len(labels)} labels")
        points = embed(features, seed)
        embeddings.append(points)
        axes = figure.add_subplot(1, len(panels), index + 1)
        for label in np.unique(labels):
            chosen = labels == label
            name = label_names[label] if label_names is not None else str(label)
            axes.scatter(points[chosen, 0], points[chosen, 1], s=6, color=colours(int(label) % colours.N), label=name)
        if len(np.unique(labels)) <= MAX_LEGEND_ENTRIES:
            axes.legend(fontsize=6, markerscale=2, loc="best")
        axes.set_xticks([])
        axes.set_yticks([])
        axes.set_title(panel_title, fontsize=9)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    save_png(figure, path)
    return embeddings
