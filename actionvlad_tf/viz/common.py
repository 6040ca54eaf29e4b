"""What the action-word figures share: a model's VLAD internals on a video, the crops the network
saw, assignment overlays (hard masks, soft heat maps and their colour bar), and an Agg figure saved
atomically as PNG."""

import keras
import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from actionvlad_tf.atomic import atomic_output
from actionvlad_tf.data.augment import BGR_MEANS, preprocess_for_eval
from actionvlad_tf.layers import NetVLADPooling
from actionvlad_tf.models import model_streams, pooling_layers
from actionvlad_tf.prep.extraction import read_video_frames
from actionvlad_tf.prep.video_inputs import DEFAULT_FRAMES_PER_VIDEO, FlowCache, sample_inputs


def new_figure(width, height):
    """A bare matplotlib Figure on the Agg canvas (no pyplot state, no display)."""
    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


def save_png(figure, path, dpi=100):
    with atomic_output(path) as temporary:
        figure.savefig(temporary, format="png", dpi=dpi)
    return str(path)


def stream_model(model, modality=None):
    """The single-stream model of `modality` inside a late-fusion model (`rgb_actionvlad`,
    `flow_actionvlad`), or `model` itself."""
    names = [layer.name for layer in model.layers]
    if modality is not None and f"{modality}_actionvlad" in names:
        return model.get_layer(f"{modality}_actionvlad")
    if "rgb_actionvlad" in names:
        raise ValueError(f"{model.name} is a late-fusion model: name the stream (modality='rgb' or 'flow')")
    return model


def vlad_internals(model, video):
    """A single-stream ActionVLAD model on one preprocessed video [F, S, S, C] (F = crops·T):
    `descriptors` [F, h, w, D] (the pooled pre-ReLU map), `assignments` [F, h, w, K] (soft, paper
    Eq. 1), `vlad` [K·D], `logits` [C] and the classifier `kernel` [K·D, C]."""
    found = [layer for layer in pooling_layers(model) if isinstance(layer, NetVLADPooling)]
    if len(found) != 1:
        raise ValueError(f"{model.name}: expected one NetVLADPooling layer, found {len(found)}")
    pooling = found[0]
    features = keras.Model(model.input, pooling.input)(video[None])
    return {
        "descriptors": keras.ops.convert_to_numpy(features)[0],
        "assignments": keras.ops.convert_to_numpy(pooling.soft_assignment(features))[0],
        "vlad": keras.ops.convert_to_numpy(pooling(features))[0],
        "logits": keras.ops.convert_to_numpy(model(video[None]))[0],
        "kernel": keras.ops.convert_to_numpy(model.get_layer("classifier").kernel),
    }


def rgb_crops(frames, image_size):
    """The release's single eval crop (§3.7) of raw RGB frames [T, H, W, 3], as uint8 RGB: what
    the network sees, before the channel flip and means."""
    network = preprocess_for_eval(frames, "rgb", 1, image_size).numpy()
    return np.clip(np.rint((network + np.asarray(BGR_MEANS, np.float32))[..., ::-1]), 0, 255).astype(np.uint8)


def overlay(frame, mask, dim=0.35):
    """A frame dimmed to `dim` except where `mask` [h, w] (values in [0, 1], one per conv5 position,
    i.e. per receptive-field centre) is on; the mask is spread over each cell (`top_words`, Fig. 8)."""
    height, width = frame.shape[:2]
    rows = np.minimum((np.arange(height) * mask.shape[0]) // height, mask.shape[0] - 1)
    cols = np.minimum((np.arange(width) * mask.shape[1]) // width, mask.shape[1] - 1)
    weight = dim + (1.0 - dim) * np.asarray(mask, np.float32)[rows][:, cols, None]
    return np.clip(frame.astype(np.float32) * weight, 0, 255).astype(np.uint8)


HEAT_COLORMAP = "inferno"  # perceptually uniform; dark (and, with the alpha ramp, clear) at 0
HEAT_MAX_ALPHA = 0.75


def _catmull_rom(x):
    x = np.abs(x)
    return np.where(x <= 1, (1.5 * x - 2.5) * x * x + 1, np.where(x < 2, ((-0.5 * x + 2.5) * x - 4) * x + 2, 0.0))


def _upsampling(size, cells):
    """For `cells` values along an axis (one per cell centre) seen at `size` pixels: the [size, cells]
    Catmull-Rom (bicubic) weights (edges held) and, per pixel, the two nearest cells [size] × 2."""
    position = (np.arange(size) + 0.5) * cells / size - 0.5
    base = np.floor(position).astype(int)
    weights = np.zeros((size, cells), np.float64)
    for offset in (-1, 0, 1, 2):
        np.add.at(
            weights, (np.arange(size), np.clip(base + offset, 0, cells - 1)), _catmull_rom(position - base - offset)
        )
    return weights, np.clip(base, 0, cells - 1), np.clip(base + 1, 0, cells - 1)


def upsample_smoothly(values, height, width):
    """[h, w] values (one per conv5 cell) → [height, width]: bicubic (Catmull-Rom), so each value is
    exact at its cell's centre and a lone cell reads as a round blob (bilinear draws a cross), clipped
    to the range of the four nearest cell centres, so there is no overshoot or ringing: a plateau of
    0 stays 0 and nothing leaves [min, max] of the values."""
    values = np.asarray(values, np.float64)
    rows, top, bottom = _upsampling(height, values.shape[0])
    columns, left, right = _upsampling(width, values.shape[1])
    corners = np.stack([values[top][:, left], values[top][:, right], values[bottom][:, left], values[bottom][:, right]])
    return np.clip(rows @ values @ columns.T, corners.min(axis=0), corners.max(axis=0))


def heat_overlay(frame, values, cmap=HEAT_COLORMAP, vmin=0.0, vmax=1.0, max_alpha=HEAT_MAX_ALPHA):
    """An RGB uint8 frame [H, W, 3] with `values` [h, w] (one per conv5 position, e.g. a word's soft
    assignment) drawn over it as a heat map: upsampled smoothly to the frame (`upsample_smoothly`),
    mapped to `cmap` over [vmin, vmax] and alpha-blended with an opacity rising linearly from 0 at
    `vmin` (the frame unchanged) to `max_alpha` at `vmax`. `frame` and the result are RGB, as
    `rgb_crops` and `show_image`."""
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[-1] != 3:
        raise ValueError(f"expected an RGB frame [H, W, 3], got shape {frame.shape}")
    values = np.asarray(values, np.float32)
    if values.ndim != 2:
        raise ValueError(f"expected one value per position [h, w], got shape {values.shape}")
    height, width = frame.shape[:2]
    smooth = upsample_smoothly(values, height, width)
    level = np.clip((smooth - vmin) / (vmax - vmin), 0.0, 1.0)
    colour = matplotlib.colormaps[cmap](level)[..., :3] * 255.0
    alpha = (max_alpha * level)[..., None]
    blended = (1.0 - alpha) * frame.astype(np.float32) + alpha * colour
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def heat_colorbar(figure, axes, label, cmap=HEAT_COLORMAP, vmin=0.0, vmax=1.0):
    """One colour bar for the `heat_overlay`s of all `axes` (a fixed [vmin, vmax] scale, so that
    panels compare), at their right; returns its Colorbar."""
    mappable = ScalarMappable(norm=Normalize(vmin, vmax), cmap=cmap)
    colorbar = figure.colorbar(mappable, ax=axes, fraction=0.04, pad=0.02, aspect=30)
    colorbar.set_label(label, fontsize=8)
    colorbar.ax.tick_params(labelsize=7)
    return colorbar


def show_image(axes, image, title=None):
    axes.imshow(image)
    axes.set_xticks([])
    axes.set_yticks([])
    if title:
        axes.set_title(title, fontsize=8)


def analyse_video(model, path, frames_per_video=DEFAULT_FRAMES_PER_VIDEO, flow_method="tvl1"):
    """(crops [T, S, S, 3] uint8, `vlad_internals`) of a single-stream model on a video file, with
    the release's sampling and single eval crop. For a flow model the crops are the RGB frames at
    the start of each flow stack (the rgb+flow pairing, §3.3), so words show on the scene."""
    ((modality, (frames, size, _)),) = model_streams(model).items()
    decoded = read_video_frames(path)
    wanted = ("rgb",) if modality == "rgb" else ("rgb", "flow")
    inputs = sample_inputs(
        decoded, wanted, frames or frames_per_video, FlowCache(decoded, flow_method), where=str(path)
    )
    network = preprocess_for_eval(inputs[modality], modality, 1, size).numpy()
    return rgb_crops(inputs["rgb"], size), vlad_internals(model, network)
