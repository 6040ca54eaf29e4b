"""A generated still-image classification set on which the VGG-16 topology is pretrained offline: the
demo's stand-in for ImageNet (docs/pretrained_standin.md).

The demo videos (`synthetic.py`) need features that tell small objects apart by shape and colour at
every place of the frame; ImageNet features do that, random ones do not. This set teaches exactly
those generic skills, with more variety than the demo shows, and never uses the demo's videos or
its action classes:

* one labelled object per image, with three labels: its shape (`SHAPES`, 10, the demo's three among
  them), its colour bin (`COLOUR_BINS`: 8 hue bins of 45° centred on 0°, 45°, … with continuous hues
  drawn within ±40 % of a bin's width of its centre, plus "grey" for unsaturated objects) and its
  texture (`TEXTURES`: flat, stripes, checker, dots, noise; brightness modulation of the colour);
* object radii log-uniform in `radius_range` px (default 4–20 px at 64², i.e. 8–40 px wide; the
  demo's objects are 8–20 px wide in its 64² crops, more when the training crop zooms in),
  anywhere in the image, at any rotation, shapes of equal area at equal radius;
* backgrounds of four kinds: smooth colour fields, linear gradients, low-contrast stripes/checker
  textures and clutter (random lines), weakly tinted, plus 0–3 thin grey outline distractors
  (rings, crosses, polylines) and sensor noise.

Images are BGR uint8 like the demo's frames (the pipeline's preprocessing then applies: BGR minus
the Caffe means). Everything is deterministic given the seed; textures, backgrounds and compositing
are vectorised over the batch, only the anti-aliased drawing of each outline is per image (OpenCV).
"""

import math

import cv2
import numpy as np

SHAPES = ("circle", "square", "triangle", "star", "cross", "ring", "diamond", "arrow", "bar", "crescent")
_ARROW = np.array([[-1, -0.25], [0.2, -0.25], [0.2, -0.6], [1, 0], [0.2, 0.6], [0.2, 0.25], [-1, 0.25]])  # area 1.08
HUE_BINS = 8
COLOUR_BINS = tuple(f"hue{round(360 * i / HUE_BINS)}" for i in range(HUE_BINS)) + ("grey",)
TEXTURES = ("flat", "stripes", "checker", "dots", "noise")
LABELS = {"shape": SHAPES, "colour": COLOUR_BINS, "texture": TEXTURES}
DEFAULT_RADIUS_RANGE = (4.0, 20.0)
_SUB = 16  # OpenCV sub-pixel drawing: coordinates in 1/16 px
_HUE_SPREAD = 0.4  # hues within ±40 % of a bin's width of its centre


def _points(xy):
    return np.round(np.asarray(xy) * _SUB).astype(np.int32)


def _regular(corners, circumradius, angle, centre, inner=None):
    """Vertices of a regular polygon (or a star with `inner` radius between the corners)."""
    if inner is None:
        angles = angle + 2 * math.pi * np.arange(corners) / corners
        radii = np.full(corners, circumradius)
    else:
        angles = angle + math.pi * np.arange(2 * corners) / corners
        radii = np.where(np.arange(2 * corners) % 2 == 0, circumradius, inner)
    return centre + radii[:, None] * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _area_radius(corners, radius):
    """Circumradius of a regular polygon with the area of a circle of `radius`."""
    return radius * math.sqrt(2 * math.pi / (corners * math.sin(2 * math.pi / corners)))


def draw_shape(mask, shape, centre, radius, angle):
    """Draws a filled, anti-aliased `shape` (about the area of a circle of `radius`) into the uint8
    single-channel `mask` (255 inside)."""
    centre = np.asarray(centre, np.float64)
    c = tuple(int(v) for v in _points(centre))
    rotate = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    if shape == "circle":
        cv2.circle(mask, c, int(round(radius * _SUB)), 255, -1, cv2.LINE_AA, 4)
    elif shape == "ring":  # the annulus of a circle's area, holed to 55 % of its outer radius
        outer = radius / math.sqrt(1 - 0.55**2)
        cv2.circle(mask, c, int(round(outer * _SUB)), 255, -1, cv2.LINE_AA, 4)
        cv2.circle(mask, c, int(round(0.55 * outer * _SUB)), 0, -1, cv2.LINE_AA, 4)
    elif shape == "crescent":  # a disc minus a shifted disc
        outer = radius * 1.35
        cv2.circle(mask, c, int(round(outer * _SUB)), 255, -1, cv2.LINE_AA, 4)
        offset = rotate @ np.array([0.55 * outer, 0.0])
        cv2.circle(
            mask,
            tuple(int(v) for v in _points(centre + offset)),
            int(round(0.85 * outer * _SUB)),
            0,
            -1,
            cv2.LINE_AA,
            4,
        )
    elif shape in ("square", "triangle"):
        corners = {"square": 4, "triangle": 3}[shape]
        cv2.fillPoly(
            mask, [_points(_regular(corners, _area_radius(corners, radius), angle, centre))], 255, cv2.LINE_AA, 4
        )
    elif shape == "star":
        outer = radius * 1.45
        cv2.fillPoly(mask, [_points(_regular(5, outer, angle, centre, inner=0.45 * outer))], 255, cv2.LINE_AA, 4)
    elif shape == "arrow":
        cv2.fillPoly(
            mask, [_points(centre + _ARROW * radius * math.sqrt(math.pi / 1.08) @ rotate.T)], 255, cv2.LINE_AA, 4
        )
    elif shape in ("diamond", "bar", "cross"):
        # diamond: a rhombus 2:1; bar: a 4:1 rectangle; cross: two 4:1 bars (areas ≈ π r²).
        half = {"diamond": (1.77, 0.89), "bar": (1.77, 0.44), "cross": (1.45, 0.36)}[shape]
        corners = np.array(
            [[1, 0], [0, 1], [-1, 0], [0, -1]] if shape == "diamond" else [[1, 1], [-1, 1], [-1, -1], [1, -1]],
            np.float64,
        )
        for turn in (0.0, math.pi / 2) if shape == "cross" else (0.0,):
            r = np.array(
                [[math.cos(angle + turn), -math.sin(angle + turn)], [math.sin(angle + turn), math.cos(angle + turn)]]
            )
            polygon = centre + (corners * np.array(half) * radius) @ r.T
            cv2.fillPoly(mask, [_points(polygon)], 255, cv2.LINE_AA, 4)
    else:
        raise ValueError(f"unknown shape {shape!r} (known: {SHAPES})")
    return mask


def _hsv_to_bgr(hue_degrees, saturation, value):
    """Vectorised HSV → BGR in [0, 255]: hue in degrees, saturation and value in [0, 1]."""
    h = (np.asarray(hue_degrees) % 360) / 60.0
    k = (np.array([5.0, 3.0, 1.0]) + h[..., None]) % 6  # R, G, B
    rgb = value[..., None] * (1 - saturation[..., None] * np.clip(np.minimum(k, 4 - k), 0, 1))
    return 255.0 * rgb[..., ::-1]


def _smooth_fields(rng, n, size, channels, cells):
    """[n, size, size, channels] smooth random fields in [-1, 1] (bicubic upsampling of a coarse grid)."""
    coarse = rng.uniform(-1, 1, (n, cells, cells, channels)).astype(np.float32)
    return np.stack(
        [cv2.resize(c, (size, size), interpolation=cv2.INTER_CUBIC).reshape(size, size, channels) for c in coarse]
    )


def _patterns(rng, kinds, size):
    """[n, size, size] texture patterns in [0, 1] for texture indices `kinds` (TEXTURES order), at
    random periods (3–7 px), orientations and phases; "flat" is all ones."""
    n = len(kinds)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    angle = rng.uniform(0, math.pi, (n, 1, 1)).astype(np.float32)
    frequency = (2 * math.pi / rng.uniform(3, 7, (n, 1, 1))).astype(np.float32)
    phase = rng.uniform(0, 2 * math.pi, (2, n, 1, 1)).astype(np.float32)
    u = (x * np.cos(angle) + y * np.sin(angle)) * frequency + phase[0]
    v = (y * np.cos(angle) - x * np.sin(angle)) * frequency + phase[1]
    sin_u, sin_v = np.sin(u) > 0, np.sin(v) > 0
    options = {
        1: sin_u,
        2: sin_u ^ sin_v,
        3: (np.cos(u) + np.cos(v)) > 1.0,
        4: rng.uniform(0, 1, (n, size, size)) > 0.5,
    }
    kinds = np.asarray(kinds)
    out = np.ones((n, size, size), np.float32)
    for kind, pattern in options.items():
        out[kinds == kind] = pattern[kinds == kind]
    return out


def _backgrounds(rng, n, size):
    """[n, size, size, 3] float BGR backgrounds: smooth fields, gradients, textures, clutter."""
    kind = rng.integers(0, 4, n)
    base = rng.uniform(60, 190, (n, 1, 1, 1)).astype(np.float32)
    tint = rng.uniform(-35, 35, (n, 1, 1, 3)).astype(np.float32)
    field = _smooth_fields(rng, n, size, 3, int(rng.integers(3, 7)))
    amplitude = rng.uniform(15, 45, (n, 1, 1, 1)).astype(np.float32)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    angle = rng.uniform(0, 2 * math.pi, (n, 1, 1)).astype(np.float32)
    ramp = (x * np.cos(angle) + y * np.sin(angle))[..., None] * rng.uniform(-120, 120, (n, 1, 1, 3)).astype(np.float32)
    texture = (_patterns(rng, rng.integers(1, len(TEXTURES), n), size)[..., None] - 0.5) * rng.uniform(
        10, 40, (n, 1, 1, 1)
    ).astype(np.float32)
    kind = kind[:, None, None, None]
    image = base + tint + field * amplitude * np.where(kind == 1, np.float32(0.3), np.float32(1.0))
    image += ramp * (kind == 1) + texture * (kind == 2)
    images = np.clip(image, 0, 255)
    for index in np.flatnonzero(kind == 3):  # clutter: random lines of random grey-ish colours
        for _ in range(int(rng.integers(3, 9))):
            ends = rng.uniform(-0.2, 1.2, (2, 2)) * size
            colour = tuple(float(v) for v in np.clip(base[index, 0, 0, 0] + rng.uniform(-70, 70, 3), 0, 255))
            cv2.line(
                images[index],
                tuple(int(v) for v in _points(ends[0])),
                tuple(int(v) for v in _points(ends[1])),
                colour,
                int(rng.integers(1, 3)),
                cv2.LINE_AA,
                4,
            )
    return images


def draw_outline(image, kind, centre, radius, angle, grey):
    """A thin anti-aliased outline drawn in place: kind 0 a ring, 1 a cross, 2 an open polyline of
    four corners (`angle` turns the cross and the polyline)."""
    if kind == 0:
        cv2.circle(image, tuple(int(v) for v in _points(centre)), int(radius * _SUB), grey, 1, cv2.LINE_AA, 4)
        return
    count = 2 if kind == 1 else 3
    angles = angle + np.arange(2 * count) * math.pi / count
    ends = centre + radius * np.stack([np.cos(angles), np.sin(angles)], 1)
    pairs = ends.reshape(count, 2, 2) if kind == 1 else ends[None, :4]
    cv2.polylines(image, [_points(p) for p in pairs], False, grey, 1, cv2.LINE_AA, 4)


def _distractors(rng, images):
    """0–3 thin grey outline rings, crosses or polylines per image, drawn in place."""
    size = images.shape[1]
    for index in range(len(images)):
        for _ in range(int(rng.integers(0, 4))):
            grey = (float(rng.uniform(30, 245)),) * 3
            centre = rng.uniform(0, size, 2)
            radius = rng.uniform(3, 12)
            kind = rng.integers(0, 3)
            draw_outline(images[index], kind, centre, radius, 0.0 if kind == 0 else rng.uniform(0, 2 * math.pi), grey)


def draw_labels(rng, label_sets, n, radius_range):
    """n random labels per head of `label_sets` (head → class names; int indices, in head order) and
    log-uniform object radii in `radius_range` ("radius", px)."""
    low, high = radius_range
    if not 0 < low <= high:
        raise ValueError(f"radius_range must be 0 < low ≤ high, got {radius_range}")
    labels = {head: rng.integers(0, len(names), n) for head, names in label_sets.items()}
    labels["radius"] = np.exp(rng.uniform(math.log(low), math.log(high), n))
    return labels


def generate_stills(num_images, seed=0, size=64, radius_range=DEFAULT_RADIUS_RANGE):
    """`num_images` stills: (images BGR uint8 [N, size, size, 3], labels) where labels is a dict of
    int arrays [N] "shape", "colour", "texture" (indices into SHAPES, COLOUR_BINS, TEXTURES) and
    float "radius" (px). Deterministic in (seed, num_images, size, radius_range)."""
    if num_images < 1 or size < 8:
        raise ValueError(f"need num_images ≥ 1 and size ≥ 8, got {num_images}, {size}")
    rng = np.random.default_rng(seed)
    n = num_images
    labels = draw_labels(rng, LABELS, n, radius_range)
    grey = labels["colour"] == HUE_BINS
    hue = (labels["colour"] + rng.uniform(-_HUE_SPREAD, _HUE_SPREAD, n)) * 360.0 / HUE_BINS
    saturation = np.where(grey, rng.uniform(0.0, 0.12, n), rng.uniform(0.55, 1.0, n))
    value = np.where(grey, rng.uniform(0.15, 1.0, n), rng.uniform(0.45, 1.0, n))
    colour = _hsv_to_bgr(hue, saturation, value)  # [n, 3]
    contrast = rng.uniform(0.15, 0.4, (n, 1, 1))  # textures keep the silhouette
    pattern = 1 - contrast.astype(np.float32) + contrast.astype(np.float32) * _patterns(rng, labels["texture"], size)
    foreground = colour[:, None, None, :] * pattern[..., None]

    masks = np.zeros((n, size, size), np.uint8)
    radius = labels["radius"]
    margin = np.minimum(radius, size / 2)
    centres = rng.uniform(margin[:, None], size - margin[:, None], (n, 2))
    angles = rng.uniform(0, 2 * math.pi, n)
    for index in range(n):
        draw_shape(masks[index], SHAPES[labels["shape"][index]], centres[index], radius[index], angles[index])
    images = _backgrounds(rng, n, size)
    _distractors(rng, images)
    alpha = masks[..., None].astype(np.float32) / 255.0
    images = images * (1 - alpha) + foreground.astype(np.float32) * alpha
    images += rng.normal(0, 3, images.shape).astype(np.float32)
    return np.clip(np.rint(images), 0, 255).astype(np.uint8), labels
