"""A generated optical-flow classification set on which the VGG-16 topology is pretrained offline for
the flow stream: the demo's stand-in for the release's flow network (docs/pretrained_standin.md).

The release never trains its flow ActionVLAD from a network that has not seen motion: it starts from
a two-stream flow network trained, all layers, on the target dataset's flow (release §2, §4). On two
CPU cores and 60 videos that network does not learn (docs/demo.md), and the RGB stand-in's
features, carried over by the cross-modality first layer, do not tell the demo's flow stacks apart.
This set teaches the flow stream's generic skills — what moves, and how — with more variety than
the demo shows, and never uses the demo's videos or its action classes:

* one labelled object per stack, with two labels: its shape (`stills.SHAPES`, 10, the demo's three
  among them) and its motion (`MOTIONS`: sliding horizontally, vertically or diagonally, or
  scaling — growing and shrinking — about its centre), at random speed, direction, phase, place,
  size, colour and rotation; translations bounce off the borders;
* a static background (`stills`' smooth fields, gradients, textures and clutter), 0–2 thin grey
  outline distractors drifting and turning on their own smooth paths, and fresh sensor noise in
  every frame;
* the `L + 1` frames are turned into `L` flow fields by the project's own estimator
  (`extraction.make_flow_estimator`, default "tvl1_fast" as the demo) and quantised to uint8 with ±bound
  exactly as the demo's flow images (`extraction.quantize_flow`), interleaved x₁, y₁, …, x_L, y_L:
  the pipeline's flow-stack layout (release §3.3). A horizontal flip with x → 255 − x keeps every
  label (`flip_flow_stacks`).

Everything is deterministic given the seed.
"""

import math

import cv2
import numpy as np

from actionvlad_tf.prep import extraction, stills

MOTIONS = ("horizontal", "vertical", "diagonal", "scaling")
LABELS = {"shape": stills.SHAPES, "motion": MOTIONS}
DEFAULT_RADIUS_RANGE = (4.0, 14.0)
DEFAULT_SPEED_RANGE = (1.0, 4.5)  # px per frame; the demo's objects slide 2.3-3.8 px per frame
DEFAULT_FLOW_BOUND = 5.0  # the demo's --flow_bound
FLOW_STACK = 10  # L, the release's flow stack
_SCALE_AMPLITUDE = (0.2, 0.45)  # scaling: relative radius amplitude
_SCALE_PERIOD = (6.0, 14.0)  # frames


def _track(rng, motion, radius, size, length):
    """(centres [length, 2], radii [length]) of one object over `length` frames."""
    times = np.arange(length, dtype=np.float64)
    grow = 1.0 + (_SCALE_AMPLITUDE[1] if motion == "scaling" else 0.0)
    margin = min(radius * grow, size / 2 - 1)
    centre = rng.uniform(margin, size - margin, 2)
    radii = np.full(length, radius)
    centres = np.tile(centre, (length, 1))
    if motion == "scaling":
        amplitude, period = rng.uniform(*_SCALE_AMPLITUDE), rng.uniform(*_SCALE_PERIOD)
        radii = radius * (1 + amplitude * np.sin(2 * math.pi * times / period + rng.uniform(0, 2 * math.pi)))
        return centres, radii
    speed = rng.uniform(*DEFAULT_SPEED_RANGE) * rng.choice([-1.0, 1.0])
    direction = {
        "horizontal": (1.0, 0.0),
        "vertical": (0.0, 1.0),
        "diagonal": (math.sqrt(0.5), math.sqrt(0.5) * rng.choice([-1.0, 1.0])),
    }[motion]
    span = max(size - 2 * margin, 1e-6)
    for axis in (0, 1):
        if direction[axis]:
            travelled = np.mod(centre[axis] - margin + speed * direction[axis] * times, 2 * span)
            centres[:, axis] = margin + np.where(travelled <= span, travelled, 2 * span - travelled)
    return centres, radii


def render_clip(rng, background, shape, motion, radius, colour, size, num_frames):
    """BGR uint8 [num_frames, size, size, 3]: one object of `shape` moving by `motion` over the
    float `background`, with 0-2 moving distractors and sensor noise."""
    centres, radii = _track(rng, motion, radius, size, num_frames)
    angle = rng.uniform(0, 2 * math.pi)
    distractors = [
        dict(
            kind=int(rng.integers(0, 3)),
            grey=(float(rng.uniform(30, 245)),) * 3,
            radius=rng.uniform(3, 10),
            start=rng.uniform(0, size, 2),
            velocity=rng.uniform(-2.5, 2.5, 2),
            angle=rng.uniform(0, 2 * math.pi),
            turn=rng.uniform(-0.3, 0.3),
        )
        for _ in range(int(rng.integers(0, 3)))
    ]
    frames = np.empty((num_frames, size, size, 3), np.uint8)
    for t in range(num_frames):
        image = background.copy()
        for d in distractors:
            stills.draw_outline(
                image, d["kind"], d["start"] + d["velocity"] * t, d["radius"], d["angle"] + d["turn"] * t, d["grey"]
            )
        mask = stills.draw_shape(np.zeros((size, size), np.uint8), shape, centres[t], radii[t], angle)
        alpha = mask[..., None].astype(np.float32) / 255.0
        image = image * (1 - alpha) + colour * alpha + rng.normal(0, 3, image.shape).astype(np.float32)
        frames[t] = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return frames


def generate_flow_stacks(
    num_stacks,
    seed=0,
    size=64,
    radius_range=DEFAULT_RADIUS_RANGE,
    method="tvl1_fast",
    bound=DEFAULT_FLOW_BOUND,
    flow_stack=FLOW_STACK,
):
    """`num_stacks` flow stacks: (stacks uint8 [N, size, size, 2·flow_stack] interleaved x₁, y₁, …,
    labels) where labels is a dict of int arrays [N] "shape", "motion" (indices into
    `stills.SHAPES`, `MOTIONS`) and float "radius" (px). Deterministic in its arguments."""
    if num_stacks < 1 or size < 16 or flow_stack < 1:
        raise ValueError(f"need num_stacks ≥ 1, size ≥ 16 and flow_stack ≥ 1, got {num_stacks}, {size}, {flow_stack}")
    rng = np.random.default_rng(seed)
    n = num_stacks
    labels = stills.draw_labels(rng, LABELS, n, radius_range)
    colours = stills._hsv_to_bgr(rng.uniform(0, 360, n), rng.uniform(0.0, 1.0, n), rng.uniform(0.3, 1.0, n))
    backgrounds = stills._backgrounds(rng, n, size)
    estimate = extraction.make_flow_estimator(method)
    stacks = np.empty((n, size, size, 2 * flow_stack), np.uint8)
    for index in range(n):
        frames = render_clip(
            rng,
            backgrounds[index],
            stills.SHAPES[labels["shape"][index]],
            MOTIONS[labels["motion"][index]],
            labels["radius"][index],
            colours[index].astype(np.float32),
            size,
            flow_stack + 1,
        )
        gray = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in frames]
        flows = np.stack([estimate(gray[t], gray[t + 1], None) for t in range(flow_stack)])  # [L, S, S, 2]
        stacks[index] = extraction.quantize_flow(flows, bound).transpose(1, 2, 0, 3).reshape(size, size, -1)
    return stacks, labels


def flip_flow_stacks(stacks):
    """Mirrors flow stacks [..., H, W, 2L] (uint8 or float 0-255) left-right with the physically right
    sign: x-images (even channels) become 255 − x; every `MOTIONS` label is unchanged."""
    flipped = stacks[..., ::-1, :].copy()
    flipped[..., 0::2] = 255 - flipped[..., 0::2]
    return flipped
