"""What the action-word figures share: a model's VLAD internals on a video, the crops the network
saw, assignment overlays, and an Agg figure saved atomically as PNG."""

import keras
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
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
    i.e. per receptive-field centre) is on; the mask is spread over each cell (paper Fig. 6)."""
    height, width = frame.shape[:2]
    rows = np.minimum((np.arange(height) * mask.shape[0]) // height, mask.shape[0] - 1)
    cols = np.minimum((np.arange(width) * mask.shape[1]) // width, mask.shape[1] - 1)
    weight = dim + (1.0 - dim) * np.asarray(mask, np.float32)[rows][:, cols, None]
    return np.clip(frame.astype(np.float32) * weight, 0, 255).astype(np.uint8)


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
