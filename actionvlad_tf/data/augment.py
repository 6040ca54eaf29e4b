"""Spatial preprocessing of a video's frames: resize, crops, flip, channel order and means (§3.4-3.7).

Every function takes one video, `[T, H, W, C]` uint8 (or float 0 … 255), and uses TF ops only, so
the same code runs eagerly, inside `tf.data` and inside a SavedModel serving signature.

* Resize (§3.4): every frame to `resize_shape` (256 × 340, aspect ratio ignored), bilinear with
  TF1 semantics (`half_pixel_centers=False`, §8 row 14; the ResizeBilinear kernel behind
  `tf.compat.v1.image.resize_bilinear`, called directly to avoid its deprecation warning);
  `half_pixel_centers=True` gives the modern convention. The release resizes values in [0, 1] and
  multiplies by 255 after; resizing 0 … 255 directly is the same linear map up to float rounding (≈1e-5).
* Training (§3.6): ONE crop and ONE flip per video, shared by all frames and by both streams of
  rgb+flow. Crop height and width are drawn independently from ⌊S·{1, .875, .75, .66}⌋ (relative to
  the output size S = 224, not to 256), placed uniformly at random, resized to S × S; horizontal
  flip with p = ½. Flow x-images are mirrored but not inverted (§8 row 7) unless
  `invert_flow_on_flip` (then x → 255 − x, the physically right sign).
* Evaluation (§3.7): 1 crop at (y, x) = (16, 60) — 2 px right of centre — or 5 crops at (0, 0),
  (0, 115), (31, 0), (31, 115), (16, 60) (1 px short of the corners), no flips, frame-major order
  (frame 0 crops 0-4, frame 1 crops 0-4, …), all in one bag for NetVLAD (§8 row 9). For other
  sizes the offsets keep the release's place within the free margin: y = round(y₀·(H−S)/32),
  x = round(x₀·(W−S)/116); the defaults give the release's offsets exactly.
* Channels and means by modality (§3.5, §8 row 13): RGB → BGR minus the integer Caffe means
  (104, 117, 123); flow minus 128.
"""

import math

import tensorflow as tf

from actionvlad_tf.specs import RELEASE_IMAGE_SIZE  # noqa: F401  (re-exported)

RELEASE_RESIZE_SHAPE = (256, 340)
TRAIN_SCALES = (1.0, 0.875, 0.75, 0.66)
BGR_MEANS = (104.0, 117.0, 123.0)
FLOW_MEAN = 128.0
# (y, x) of the release's test crops for a 224 crop of 256 × 340, i.e. in a (32, 116) margin.
_RELEASE_MARGIN = (32, 116)
RELEASE_EVAL_CROPS = {1: ((16, 60),), 5: ((0, 0), (0, 115), (31, 0), (31, 115), (16, 60))}


def default_resize_shape(image_size=RELEASE_IMAGE_SIZE):
    """The release's 256×340 resize for 224² crops (§3.4), scaled with the crop side for other sizes,
    so a model trained at one size is preprocessed alike by training, evaluation, export and
    prediction without being told the resize."""
    if image_size == RELEASE_IMAGE_SIZE:
        return RELEASE_RESIZE_SHAPE
    return tuple(round(side * image_size / RELEASE_IMAGE_SIZE) for side in RELEASE_RESIZE_SHAPE)


def _bilinear(images, size, half_pixel_centers):
    return tf.raw_ops.ResizeBilinear(
        images=images, size=size, align_corners=False, half_pixel_centers=half_pixel_centers
    )


def _on_resized(frames, resize_shape, half_pixel_centers, function):
    """function(frames resized to `resize_shape`) → float32. Frames that already have that size
    reach `function` as they are (uint8, say), so it can crop before converting to float: the
    resize would be exact, and skipping it saves work on the common 340 × 256 dumps."""
    frames = tf.convert_to_tensor(frames)
    if frames.shape[1:3].is_fully_defined():  # decided when tracing
        same = tuple(frames.shape[1:3]) == tuple(resize_shape)
        return function(frames if same else _bilinear(frames, resize_shape, half_pixel_centers))
    channels = frames.shape[-1] if frames.shape[-1] is not None else tf.shape(frames)[-1]
    target = [-1, *resize_shape, channels]
    same = tf.reduce_all(tf.shape(frames)[1:3] == tf.constant(resize_shape))
    # tf.reshape, not tf.ensure_shape, gives the branches their static shape: an If op's branches
    # are shape-inferred with the runtime input, and the untaken branch's EnsureShape then fails.
    return tf.cond(
        same,
        lambda: function(tf.reshape(frames, target)),
        lambda: function(tf.reshape(_bilinear(frames, resize_shape, half_pixel_centers), target)),
    )


def resize_frames(frames, resize_shape=RELEASE_RESIZE_SHAPE, half_pixel_centers=False):
    """[T, H, W, C] → float32 [T, *resize_shape, C], bilinear (§3.4); a cast if already there."""
    return _on_resized(frames, resize_shape, half_pixel_centers, lambda resized: tf.cast(resized, tf.float32))


def eval_crop_offsets(num_crops=1, image_size=RELEASE_IMAGE_SIZE, resize_shape=RELEASE_RESIZE_SHAPE):
    """Top-left (y, x) of the test crops (§3.7), scaled to the margin of other sizes."""
    if num_crops not in RELEASE_EVAL_CROPS:
        raise ValueError(f"num_crops {num_crops} must be 1 or 5 (release §3.7)")
    margin = (resize_shape[0] - image_size, resize_shape[1] - image_size)
    if min(margin) < 0:
        raise ValueError(f"crop {image_size} does not fit in resize_shape {resize_shape}")
    return tuple(
        tuple(int(math.floor(v * m / m0 + 0.5)) for v, m, m0 in zip(offset, margin, _RELEASE_MARGIN))
        for offset in RELEASE_EVAL_CROPS[num_crops]
    )


def normalize_channels(frames, modality):
    """RGB: → BGR, minus (104, 117, 123); flow: minus 128 (§3.5). Any dtype in, float32 out."""
    if modality == "rgb":
        if frames.shape[-1] not in (None, 3):
            raise ValueError(f"RGB frames need 3 channels, got shape {frames.shape}")
        # tf.reverse, not frames[..., ::-1]: the strided slice is ~4x slower on 3 channels.
        return tf.cast(tf.reverse(frames, [-1]), tf.float32) - tf.constant(BGR_MEANS)
    if modality == "flow":
        return tf.cast(frames, tf.float32) - FLOW_MEAN
    raise ValueError(f"modality {modality!r} is not 'rgb' or 'flow'")


def _per_stream(function, frames, modality):
    """Applies `function(frames, modality)` to one stream, or to each of an rgb+flow dict."""
    if modality == "rgb+flow":
        if not isinstance(frames, dict) or set(frames) != {"rgb", "flow"}:
            raise ValueError("rgb+flow frames must be a dict with keys 'rgb' and 'flow'")
        return {name: function(frames[name], name) for name in ("rgb", "flow")}
    return function(frames, modality)


def preprocess_for_eval(
    frames, modality, num_crops=1, image_size=RELEASE_IMAGE_SIZE, resize_shape=None, half_pixel_centers=False
):
    """One video [T, H, W, C] (any H, W) → the model input [crops·T, S, S, C] float32 (§3.4-3.7).

    Args:
        frames: uint8 or float 0 … 255; for "rgb+flow" a dict {"rgb": …, "flow": …}.
        modality: "rgb" (C = 3, RGB order), "flow" (C = 2L, interleaved x/y) or "rgb+flow".
        num_crops: 1 or 5 (frame-major order).
        image_size: S.
        resize_shape: (H, W) every frame is first resized to; default `default_resize_shape(S)`.
        half_pixel_centers: modern resize instead of the release's TF1 semantics.
    """
    resize_shape = tuple(resize_shape or default_resize_shape(image_size))
    offsets = eval_crop_offsets(num_crops, image_size, resize_shape)

    def crops(resized, name):  # crop (uint8 where no resize was needed), then convert
        stacked = tf.stack([resized[:, y : y + image_size, x : x + image_size] for y, x in offsets], 1)
        stacked = tf.reshape(stacked, [-1, image_size, image_size, resized.shape[-1]])
        return normalize_channels(stacked, name)

    def crop(stream, name):
        return _on_resized(stream, resize_shape, half_pixel_centers, lambda resized: crops(resized, name))

    return _per_stream(crop, frames, modality)


def sample_train_crop(
    seed, image_size=RELEASE_IMAGE_SIZE, resize_shape=RELEASE_RESIZE_SHAPE, scales=TRAIN_SCALES, flip_probability=0.5
):
    """One video's random crop (§3.6) from a stateless seed [2]: dict of int32 scalars
    `y, x, height, width` in the resized frame and a bool `flip`."""
    sizes = [int(image_size * s) for s in scales]
    if max(sizes) > min(resize_shape):
        raise ValueError(f"crop sizes {sizes} exceed resize_shape {resize_shape}")
    sizes = tf.constant(sizes, tf.int32)
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=5)
    height, width = (
        tf.gather(sizes, tf.random.stateless_uniform([], s, 0, len(scales), tf.int32)) for s in (seeds[0], seeds[1])
    )
    y = tf.random.stateless_uniform([], seeds[2], 0, resize_shape[0] - height + 1, tf.int32)
    x = tf.random.stateless_uniform([], seeds[3], 0, resize_shape[1] - width + 1, tf.int32)
    flip = tf.random.stateless_uniform([], seeds[4]) < flip_probability
    return {"y": y, "x": x, "height": height, "width": width, "flip": flip}


def apply_train_crop(
    frames,
    modality,
    crop,
    image_size=RELEASE_IMAGE_SIZE,
    resize_shape=RELEASE_RESIZE_SHAPE,
    invert_flow_on_flip=False,
    half_pixel_centers=False,
):
    """Applies a `sample_train_crop` crop and flip to one stream [T, H, W, C] → [T, S, S, C]."""
    channels = frames.shape[-1]

    def crop_and_flip(resized):
        window = tf.slice(resized, [0, crop["y"], crop["x"], 0], [-1, crop["height"], crop["width"], -1])
        out = _bilinear(window, [image_size, image_size], half_pixel_centers)  # float32

        def flipped():
            mirrored = tf.reverse(out, axis=[2])
            if modality == "flow" and invert_flow_on_flip:  # x-images are the even channels
                is_x = tf.range(channels) % 2 == 0
                mirrored = tf.where(is_x, 255.0 - mirrored, mirrored)
            return mirrored

        out = tf.cond(crop["flip"], flipped, lambda: out)
        return normalize_channels(tf.ensure_shape(out, [None, image_size, image_size, channels]), modality)

    return _on_resized(frames, resize_shape, half_pixel_centers, crop_and_flip)


def preprocess_for_train(
    frames,
    modality,
    seed,
    image_size=RELEASE_IMAGE_SIZE,
    resize_shape=RELEASE_RESIZE_SHAPE,
    scales=TRAIN_SCALES,
    invert_flow_on_flip=False,
    half_pixel_centers=False,
):
    """One video [T, H, W, C] → [T, S, S, C] float32 with the release's training augmentation.

    `seed` is a stateless seed [2]; the same seed gives the same crop and flip. For "rgb+flow"
    (`frames` a dict) both streams get the same crop and flip (§3.6).
    """
    crop = sample_train_crop(seed, image_size, resize_shape, scales)
    return _per_stream(
        lambda stream, name: apply_train_crop(
            stream, name, crop, image_size, resize_shape, invert_flow_on_flip, half_pixel_centers
        ),
        frames,
        modality,
    )
