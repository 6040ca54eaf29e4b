"""Tiny frame / flow folders for the data tests (release layout §3.1), written with cv2.

Frame k of a "coded" video is uniform with R = CODE·k mod 256, G = 100, B = 200, and its flow
images are uniform x = k + 10, y = k + 150: uniform JPEGs decode exactly, so a test can read back
which frame (and which flow image, in which channel) the pipeline took. "Textured" videos are
random noise instead, for tests that compare two pipelines pixel for pixel.
"""

import cv2
import numpy as np

CODE = 7
SIZE = (24, 32)  # H, W of the written frames


def frame_value(k):
    return (CODE * k) % 256


def write_video(
    root,
    video,
    num_frames,
    flow=True,
    textured=False,
    seed=0,
    size=SIZE,
    rgb_template="image_%05d.jpg",
    flow_template="flow_{}_%05d.jpg",
):
    """Writes `num_frames` frames and, with `flow`, n−1 flow images per direction."""
    folder = root / video
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for k in range(1, num_frames + 1):
        if textured:
            rgb = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        else:
            rgb = np.empty((*size, 3), np.uint8)
            rgb[...] = (frame_value(k), 100, 200)
        cv2.imwrite(str(folder / (rgb_template % k)), rgb[..., ::-1])  # cv2 writes BGR
        if flow and k < num_frames:
            for direction, offset in (("x", 10), ("y", 150)):
                image = rng.integers(0, 256, size, dtype=np.uint8) if textured else np.full(size, k + offset, np.uint8)
                cv2.imwrite(str(folder / (flow_template.format(direction) % k)), image)
    return folder


def write_list(path, lines):
    path.write_text("".join(line + "\n" for line in lines))
    return path
