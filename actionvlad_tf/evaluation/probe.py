"""Linear probes of a backbone's conv5 features on the demo's frames: does a backbone tell the demo's
objects apart by shape, colour and shape×colour (the conjunctions the demo's classes bind)?

Each frame of a demo video shows one sub-action object (`synthetic.py`); its shape and colour are in
the dataset's manifest. A frame's feature is the global max and mean of the backbone's pre-ReLU
conv5 map (what NetVLAD pools) on the whole frame, resized as the pipeline resizes it; a logistic
regression is fitted on the train videos' frames and scored on the test videos' frames.
"""

import json
import os

import cv2
import numpy as np

from actionvlad_tf.data.augment import BGR_MEANS, resize_frames
from actionvlad_tf.data.frames import RGB_TEMPLATE

TARGETS = ("shape", "colour", "shape_colour")


def demo_frames(demo_dir, frames_dir, frame_step=1, template=RGB_TEMPLATE):
    """(frames BGR uint8 [N, H, W, 3], labels {"shape", "colour", "shape_colour"} int [N], is_train
    bool [N]) of every `frame_step`-th frame of every video of a demo dataset (its manifest.json)
    whose frames were extracted into `frames_dir` (`data_prep/extract_frames.py`)."""
    manifest_path = os.path.join(demo_dir, "manifest.json")
    with open(manifest_path, encoding="utf-8") as f:
        manifest = json.load(f)
    shapes = sorted({s["shape"] for v in manifest["videos"] for s in v["segments"]})
    colours = sorted({s["colour"] for v in manifest["videos"] for s in v["segments"]})
    frames, labels, is_train = [], {t: [] for t in TARGETS}, []
    for video in manifest["videos"]:
        for segment in video["segments"]:
            for number in range(segment["first_frame"], segment["last_frame"] + 1, frame_step):
                path = os.path.join(frames_dir, video["path"], template % number)
                image = cv2.imread(path, cv2.IMREAD_COLOR)
                if image is None:
                    raise FileNotFoundError(
                        f"{path}: frame {number} of {video['path']} ({manifest_path}) is missing or unreadable"
                    )
                frames.append(image)
                shape, colour = shapes.index(segment["shape"]), colours.index(segment["colour"])
                labels["shape"].append(shape)
                labels["colour"].append(colour)
                labels["shape_colour"].append(shape * len(colours) + colour)
                is_train.append(video["split"] == "train")
    return np.stack(frames), {t: np.array(v) for t, v in labels.items()}, np.array(is_train)


def conv5_pooled(backbone, frames_bgr, resize_shape, batch_size=64):
    """[N, 2D]: global max and mean of `backbone`'s map on BGR uint8 frames resized to
    `resize_shape` (bilinear, as the pipeline) minus the Caffe means."""
    import keras

    pooled = []
    for start in range(0, len(frames_bgr), batch_size):
        x = resize_frames(frames_bgr[start : start + batch_size], resize_shape)
        maps = keras.ops.convert_to_numpy(backbone(x - np.asarray(BGR_MEANS, np.float32), training=False))
        maps = maps.astype(np.float32)
        pooled.append(np.concatenate([maps.max(axis=(1, 2)), maps.mean(axis=(1, 2))], axis=-1))
    return np.concatenate(pooled)


def linear_probe(features, labels, is_train, seed=0):
    """{target: test accuracy} of a logistic regression per target (standardised features)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    scores = {}
    for target, y in labels.items():
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=3000, random_state=seed))
        probe.fit(features[is_train], y[is_train])
        scores[target] = float(probe.score(features[~is_train], y[~is_train]))
    return scores


def chance(labels, is_train):
    """Accuracy of always answering the train frames' most frequent label, per target."""
    result = {}
    for target, y in labels.items():
        majority = np.bincount(y[is_train]).argmax()
        result[target] = float((y[~is_train] == majority).mean())
    return result
