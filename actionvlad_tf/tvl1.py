"""Dual TV-L1 optical flow in TensorFlow, step for step as OpenCV's `cv2.optflow` computes it.

`tvl1_flow(first, second)` maps a batch of grayscale frame pairs [B, H, W] to flow [B, H, W, 2]
(dx, dy in pixels, from `first` to `second`), the same field `cv2.optflow.DualTVL1OpticalFlow_create()
.calc(first, second, None)` returns for each pair: Zach, Pock and Bischof's duality-based TV-L1
(DAGM 2007) with Wedel et al.'s refinements (2009), in the form of Sánchez Pérez's IPOL code that
OpenCV transcribes (opencv_contrib `modules/optflow/src/tvl1flow.cpp`, CPU path):

1. a pyramid of `nscales` levels, each `scale_step` times the size of the one above (cv::resize,
   bilinear, half-pixel centres, no pre-smoothing), stopping before a level under 16 pixels;
   flow starts at zero on the coarsest level;
2. per level, `warps` times: I1 and its centred gradients (one-sided halves at the borders) are
   warped by the flow with cv::remap's bicubic (a = −0.75, zero outside the image); |∇I1w|² and
   the constant part of the linearised residual
   ρ(u) = I1w + ∇I1w·(u − u0) − I0 are computed once;
3. up to `outer_iterations` rounds, each opening with a `median_filtering`² median of both flow
   components (border replicate, as cv::medianBlur), of up to `inner_iterations` steps: the
   thresholding step v = u + TH(ρ) against λθ|∇I1w|², u = v + θ·div p, the dual step
   p ← (p + τ/θ·∇u) / (1 + τ/θ·|∇u|) with forward differences (zero on the last row / column)
   and the divergence as their adjoint; both loops stop once Σ|u − u_prev|² ≤ ε²·H·W;
4. the flow is upsampled bilinearly to the next finer level and divided by `scale_step`.

Batching keeps each pair's own stopping rule: a pair whose flow has converged is frozen (its
state is selected unchanged) while the others iterate, so a pair's flow does not depend on the
batch it is computed in. Images are float32 in [0, 255] (uint8 as is; floating input is taken as
[0, 1] and scaled by 255, as OpenCV does). The illumination term (gamma) and an initial flow are
not supported (OpenCV's defaults: gamma = 0, no initial flow).

One graph per frame size and batch size: `TVL1` compiles with `tf.function` (XLA with
`jit_compile=True`) and runs wherever TensorFlow places it (`device="/GPU:0"`, …). This module
imports only TensorFlow and NumPy.
"""

import dataclasses
import functools

import numpy as np
import tensorflow as tf

MIN_LEVEL_SIZE = 16  # OpenCV stops the pyramid before a level narrower or lower than this
CUBIC_A = -0.75  # cv::remap's bicubic kernel parameter
FLOAT_EPSILON = float(np.finfo(np.float32).eps)  # std::numeric_limits<float>::epsilon()


@dataclasses.dataclass(frozen=True)
class TVL1Params:
    """OpenCV's DualTVL1OpticalFlow parameters, with its defaults (gamma 0, no initial flow)."""

    tau: float = 0.25
    lambda_: float = 0.15
    theta: float = 0.3
    nscales: int = 5
    warps: int = 5
    epsilon: float = 0.01
    inner_iterations: int = 30
    outer_iterations: int = 10
    scale_step: float = 0.8
    median_filtering: int = 5

    def __post_init__(self):
        for name in ("nscales", "warps", "inner_iterations", "outer_iterations"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"TVL1Params.{name} must be ≥ 1, got {getattr(self, name)}")
        if not 0.0 < self.scale_step < 1.0:
            raise ValueError(f"TVL1Params.scale_step must be in (0, 1), got {self.scale_step}")
        if self.median_filtering < 1 or (self.median_filtering > 1 and self.median_filtering % 2 == 0):
            raise ValueError(f"TVL1Params.median_filtering must be 1 (off) or an odd size, got {self.median_filtering}")
        if min(self.tau, self.lambda_, self.theta) <= 0 or self.epsilon < 0:
            raise ValueError(f"TVL1Params: tau, lambda_, theta must be > 0, epsilon ≥ 0: {self}")


def pyramid_shapes(height, width, nscales=5, scale_step=0.8):
    """[(h, w)] of the levels OpenCV builds, finest first: cvRound(size·scale_step) per level,
    stopping before a level whose width or height would be under 16."""
    shapes = [(int(height), int(width))]
    for _ in range(1, nscales):
        h, w = shapes[-1]
        # cv::resize with fx = fy = scaleStep: dsize = saturate_cast<int>(size * scale) (cvRound,
        # half to even, as Python's round).
        h, w = round(h * scale_step), round(w * scale_step)
        if h < MIN_LEVEL_SIZE or w < MIN_LEVEL_SIZE:
            break
        shapes.append((h, w))
    return shapes


def _linear_taps(in_size, out_size, scale):
    """cv::resize INTER_LINEAR along one axis: (lower index, upper index, weight of the upper)."""
    position = (np.arange(out_size, dtype=np.float64) + 0.5) * scale - 0.5
    lower = np.floor(position)
    frac = (position - lower).astype(np.float32)
    clamped = (lower < 0) | (lower >= in_size - 1)
    frac[clamped] = 0.0
    lower = np.clip(lower, 0, in_size - 1).astype(np.int32)
    upper = np.minimum(lower + 1, in_size - 1).astype(np.int32)
    return lower, upper, frac


def _resize_axis(images, axis, out_size, scale):
    in_size = images.shape[axis]
    lower, upper, frac = _linear_taps(in_size, out_size, scale)
    shape = [1, 1, 1]
    shape[axis] = out_size
    frac = tf.reshape(tf.constant(frac), shape)
    low = tf.gather(images, lower, axis=axis)
    high = tf.gather(images, upper, axis=axis)
    return low + frac * (high - low)


def resize_bilinear(images, out_shape, scale=None):
    """cv::resize(…, INTER_LINEAR) of [B, H, W] float images to out_shape (h, w).

    `scale` is the source step per destination pixel (OpenCV: 1/fx when the size comes from a
    factor, in_size/out_size when it is given); default in/out per axis.
    """
    out_h, out_w = out_shape
    in_h, in_w = images.shape[1], images.shape[2]
    scale_y = in_h / out_h if scale is None else scale
    scale_x = in_w / out_w if scale is None else scale
    # OpenCV interpolates rows first, then columns; in float32 the order does not matter beyond
    # rounding.
    return _resize_axis(_resize_axis(images, 2, out_w, scale_x), 1, out_h, scale_y)


def _replicate_shift(images, dy, dx):
    """images[:, y + dy, x + dx] with indices clamped to the image (border replicate)."""
    height, width = images.shape[1], images.shape[2]
    out = images
    if dy:
        out = tf.gather(out, np.clip(np.arange(height) + dy, 0, height - 1), axis=1)
    if dx:
        out = tf.gather(out, np.clip(np.arange(width) + dx, 0, width - 1), axis=2)
    return out


def centered_gradient(images):
    """OpenCV's centredGradient: ½(I[x+1] − I[x−1]) inside, ½ one-sided differences at borders."""
    dx = 0.5 * (_replicate_shift(images, 0, 1) - _replicate_shift(images, 0, -1))
    dy = 0.5 * (_replicate_shift(images, 1, 0) - _replicate_shift(images, -1, 0))
    return dx, dy


def forward_gradient(images):
    """Forward differences, zero on the last column (x) and last row (y)."""
    dx = tf.concat([images[:, :, 1:] - images[:, :, :-1], tf.zeros_like(images[:, :, :1])], 2)
    dy = tf.concat([images[:, 1:] - images[:, :-1], tf.zeros_like(images[:, :1])], 1)
    return dx, dy


def divergence(p_x, p_y):
    """OpenCV's divergence: backward differences with p = 0 before the first row / column."""
    div_x = tf.concat([p_x[:, :, :1], p_x[:, :, 1:] - p_x[:, :, :-1]], 2)
    div_y = tf.concat([p_y[:, :1], p_y[:, 1:] - p_y[:, :-1]], 1)
    return div_x + div_y


def _batcher_pairs(n):
    """Comparators (i, j), i < j, of Batcher's odd-even merge sort on n = 2^k wires."""
    pairs, p = [], 1
    while p < n:
        k = p
        while k >= 1:
            for j in range(k % p, n - k, 2 * k):
                for i in range(min(k, n - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return pairs


@functools.lru_cache(maxsize=None)
def selection_network(count, rank):
    """A min/max network that selects the `rank`-th smallest (0-based) of `count` values.

    Batcher's sorting network on the next power of two, padded with −∞ and +∞ so that the wanted
    rank lands on one wire; comparators with a constant become relabellings, and only the min /
    max operations that the output depends on are kept (204 for the median of 25, against the
    7 × 25 passes of a sort). Returns a tuple of ("min" | "max", a, b) on value ids, where ids
    0 … count − 1 are the inputs and id count + k is the k-th operation; the last is the output.
    """
    size = 1 << max(1, (count - 1).bit_length())
    low = (size - count) // 2
    kinds = ["-inf"] * low + ["input"] * count + ["+inf"] * (size - count - low)
    nodes = [(kind, None, None) for kind in kinds]
    wires = list(range(size))
    for i, j in _batcher_pairs(size):
        a, b = wires[i], wires[j]
        if nodes[a][0] == "-inf" or nodes[b][0] == "+inf":
            continue
        if nodes[a][0] == "+inf" or nodes[b][0] == "-inf":
            wires[i], wires[j] = b, a
            continue
        nodes += [("min", a, b), ("max", a, b)]
        wires[i], wires[j] = len(nodes) - 2, len(nodes) - 1
    needed, stack = set(), [wires[low + rank]]
    while stack:
        node = stack.pop()
        if node not in needed:
            needed.add(node)
            if nodes[node][0] in ("min", "max"):
                stack += [nodes[node][1], nodes[node][2]]
    inputs = [k for k, node in enumerate(nodes) if node[0] == "input"]
    ids = {node: position for position, node in enumerate(inputs)}
    network = []
    for k in sorted(needed):
        kind, a, b = nodes[k]
        if kind in ("min", "max"):
            ids[k] = count + len(network)
            network.append((kind, ids[a], ids[b]))
    return tuple(network)


def select_rank(values, rank):
    """The `rank`-th smallest (0-based) of a list of same-shaped tensors, elementwise."""
    values = list(values)
    for kind, a, b in selection_network(len(values), rank):
        values.append((tf.minimum if kind == "min" else tf.maximum)(values[a], values[b]))
    return values[-1]


def median_filter(images, size):
    """cv::medianBlur(images, size) of [B, H, W] float images (border replicate).

    A selection network of elementwise min / max over the size² shifted copies: XLA fuses it into
    one pass over the image (a sort per pixel is many times slower).
    """
    if size <= 1:
        return images
    radius = size // 2
    height, width = images.shape[1], images.shape[2]
    rows = np.clip(np.arange(-radius, height + radius), 0, height - 1)
    cols = np.clip(np.arange(-radius, width + radius), 0, width - 1)
    padded = tf.gather(tf.gather(images, rows, axis=1), cols, axis=2)
    window = [padded[:, i : i + height, j : j + width] for i in range(size) for j in range(size)]
    return select_rank(window, (size * size) // 2)


def _cubic_weights(frac):
    """cv::interpolateCubic's four weights for the taps at −1, 0, 1, 2 around a position."""
    a = CUBIC_A
    x = frac + 1.0
    w0 = ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
    w1 = ((a + 2.0) * frac - (a + 3.0)) * frac * frac + 1.0
    y = 1.0 - frac
    w2 = ((a + 2.0) * y - (a + 3.0)) * y * y + 1.0
    return [w0, w1, w2, 1.0 - w0 - w1 - w2]


def warp_bicubic(images, flow_x, flow_y):
    """cv::remap(images, x + flow_x, y + flow_y, INTER_CUBIC, BORDER_CONSTANT 0).

    Args:
        images: float [B, H, W, C] (the channels share the sampling positions).
        flow_x, flow_y: float [B, H, W].

    Taps outside the image read 0. Positions are exact, as OpenCV 5's remap samples them (4.x
    rounds them to 1/32 pixel first: at most 1/64 pixel apart).
    """
    height, width = images.shape[1], images.shape[2]
    channels = images.shape[3]
    grid_y, grid_x = np.meshgrid(np.arange(height, dtype=np.float32), np.arange(width, dtype=np.float32), indexing="ij")
    # Beyond these every tap is outside (reads 0); clipping keeps the int cast defined.
    x = tf.clip_by_value(grid_x + flow_x, -4.0, width + 3.0)
    y = tf.clip_by_value(grid_y + flow_y, -4.0, height + 3.0)
    x0, y0 = tf.floor(x), tf.floor(y)
    fx, fy = x - x0, y - y0
    ix, iy = tf.cast(x0, tf.int32), tf.cast(y0, tf.int32)
    wx, wy = _cubic_weights(fx), _cubic_weights(fy)
    flat = tf.reshape(images, [-1, height * width, channels])
    rows = []
    for i in range(4):
        row = iy + (i - 1)
        row_ok = (row >= 0) & (row < height)
        row_index = tf.clip_by_value(row, 0, height - 1) * width
        taps, weights = [], []
        for j in range(4):
            col = ix + (j - 1)
            ok = row_ok & (col >= 0) & (col < width)
            taps.append(tf.gather(flat, row_index + tf.clip_by_value(col, 0, width - 1), batch_dims=1))  # [B, H, W, C]
            weights.append(tf.where(ok, wx[j], 0.0))
        # Σ_j w_j·tap_j as one reduction (no chain of adds for grappler to rewrite)
        row_sum = tf.reduce_sum(tf.stack(taps, -1) * tf.stack(weights, -1)[..., None, :], -1)
        rows.append(row_sum * tf.expand_dims(wy[i], -1))
    return tf.reduce_sum(tf.stack(rows, -1), -1)


def _threshold_step(u1, u2, i1wx, i1wy, rho_c, lt_grad, inverse_grad, l_t):
    """v = u + TH(ρ(u)): the three cases of the data term's proximal step.

    `lt_grad` = λθ|∇I1w|² and `inverse_grad` = 1/|∇I1w|² (0 where |∇I1w|² ≤ float epsilon) are
    fixed for a warp, so they are computed once per warp rather than at every iteration.
    """
    rho = tf.add(rho_c, tf.add(i1wx * u1, i1wy * u2))
    scale = tf.where(rho < -lt_grad, l_t, tf.where(rho > lt_grad, -l_t, -rho * inverse_grad))
    return u1 + scale * i1wx, u2 + scale * i1wy


def _one_scale(i0, i1, u1, u2, params):
    """OpenCV's procOneScale on one pyramid level: `warps` warps of the inner solver."""
    height, width = i0.shape[1], i0.shape[2]
    scaled_epsilon = params.epsilon * params.epsilon * height * width
    l_t = params.lambda_ * params.theta
    taut = params.tau / params.theta
    theta = params.theta
    inner = params.inner_iterations
    total = params.outer_iterations * inner
    median = params.median_filtering
    i1x, i1y = centered_gradient(i1)
    i1_and_gradient = tf.stack([i1, i1x, i1y], axis=-1)

    def iterate(i1wx, i1wy, rho_c, lt_grad, inverse_grad):
        def cond(n, active, *_):
            return (n < total) & tf.reduce_any(active)

        def body(n, active, error, u1, u2, p11, p12, p21, p22):
            keep = active[:, None, None]
            if median > 1:

                def filtered():
                    return (
                        tf.where(keep, median_filter(u1, median), u1),
                        tf.where(keep, median_filter(u2, median), u2),
                    )

                u1, u2 = tf.cond(n % inner == 0, filtered, lambda: (u1, u2))
            v1, v2 = _threshold_step(u1, u2, i1wx, i1wy, rho_c, lt_grad, inverse_grad, l_t)
            new_u1 = v1 + theta * divergence(p11, p12)
            new_u2 = v2 + theta * divergence(p21, p22)
            step_error = tf.reduce_sum(tf.square(new_u1 - u1) + tf.square(new_u2 - u2), [1, 2])
            u1x, u1y = forward_gradient(new_u1)
            u2x, u2y = forward_gradient(new_u2)
            # p ← (p + τ/θ·∇u) / (1 + τ/θ·|∇u|), dividing by multiplying with the reciprocal.
            ng1 = 1.0 / (1.0 + taut * tf.sqrt(tf.square(u1x) + tf.square(u1y)))
            ng2 = 1.0 / (1.0 + taut * tf.sqrt(tf.square(u2x) + tf.square(u2y)))
            new_p = (
                (p11 + taut * u1x) * ng1,
                (p12 + taut * u1y) * ng1,
                (p21 + taut * u2x) * ng2,
                (p22 + taut * u2y) * ng2,
            )
            u1 = tf.where(keep, new_u1, u1)
            u2 = tf.where(keep, new_u2, u2)
            p11, p12, p21, p22 = (tf.where(keep, new, old) for new, old in zip(new_p, (p11, p12, p21, p22)))
            error = tf.where(active, step_error, error)
            return (n + 1, error > scaled_epsilon, error, u1, u2, p11, p12, p21, p22)

        return body, cond

    def warp(w, u1, u2, p11, p12, p21, p22):
        warped = warp_bicubic(i1_and_gradient, u1, u2)
        i1w, i1wx, i1wy = warped[..., 0], warped[..., 1], warped[..., 2]
        grad = tf.square(i1wx) + tf.square(i1wy)
        rho_c = i1w - i1wx * u1 - i1wy * u2 - i0
        has_grad = grad > FLOAT_EPSILON
        inverse_grad = tf.where(has_grad, 1.0 / tf.where(has_grad, grad, 1.0), 0.0)
        body, cond = iterate(i1wx, i1wy, rho_c, l_t * grad, inverse_grad)
        error = tf.ones_like(i0[:, 0, 0]) * np.finfo(np.float32).max
        state = (tf.constant(0), error > scaled_epsilon, error, u1, u2, p11, p12, p21, p22)
        # One iteration at a time (each needs the last): overlapping frames of nested loops made
        # grappler's add rewrites collide on their temporaries in a long run.
        state = tf.while_loop(cond, body, state, maximum_iterations=total, parallel_iterations=1)
        return (w + 1,) + tuple(state[3:])

    zeros = tf.zeros_like(i0)
    state = (tf.constant(0), u1, u2, zeros, zeros, zeros, zeros)
    state = tf.while_loop(
        lambda w, *_: w < params.warps, warp, state, maximum_iterations=params.warps, parallel_iterations=1
    )
    return state[1], state[2]


def as_float_images(frames, name):
    """uint8 frames as float32 [0, 255]; floating frames ([0, 1], as OpenCV takes them) × 255."""
    frames = tf.convert_to_tensor(frames)
    if frames.shape.rank != 3:
        raise ValueError(f"{name} must be grayscale frames [B, H, W], got shape {frames.shape}")
    if frames.dtype == tf.uint8:
        return tf.cast(frames, tf.float32)
    if not frames.dtype.is_floating:
        raise ValueError(f"{name} must be uint8 in [0, 255] or floating in [0, 1], got {frames.dtype.name}")
    return tf.cast(frames, tf.float32) * 255.0


def tvl1_flow_graph(first, second, params=TVL1Params()):
    """The TV-L1 computation as TensorFlow ops (trace it inside `tf.function`; see `TVL1`)."""
    i0 = as_float_images(first, "first")
    i1 = as_float_images(second, "second")
    if i0.shape[1:] != i1.shape[1:]:
        raise ValueError(f"frame sizes differ: first {i0.shape}, second {i1.shape}")
    height, width = i0.shape[1], i0.shape[2]
    if height is None or width is None or height < 3 or width < 3:
        raise ValueError(f"frames need a static size of at least 3×3, got {height}×{width}")
    shapes = pyramid_shapes(height, width, params.nscales, params.scale_step)
    levels0, levels1 = [i0], [i1]
    for shape in shapes[1:]:
        # From the level above with the factor itself, as cv::resize(…, Size(), fx, fy).
        levels0.append(resize_bilinear(levels0[-1], shape, 1.0 / params.scale_step))
        levels1.append(resize_bilinear(levels1[-1], shape, 1.0 / params.scale_step))
    u1 = u2 = tf.zeros_like(levels0[-1])
    for level in range(len(shapes) - 1, -1, -1):
        u1, u2 = _one_scale(levels0[level], levels1[level], u1, u2, params)
        if level:
            finer = shapes[level - 1]
            u1 = resize_bilinear(u1, finer) / params.scale_step
            u2 = resize_bilinear(u2, finer) / params.scale_step
    return tf.stack([u1, u2], axis=-1)


class TVL1:
    """A compiled TV-L1: `TVL1()(first, second)` → flow float32 [B, H, W, 2] (a tf.Tensor).

    Args:
        params: `TVL1Params` (OpenCV's defaults).
        jit_compile: compile with XLA (`tf.function(jit_compile=True)`); None lets TensorFlow
            decide (no XLA).
        device: where to run, e.g. "/GPU:0" or "/CPU:0"; None: TensorFlow's placement (the first
            GPU where there is one).

    The graph is traced once per frame size and batch size.
    """

    def __init__(self, params=TVL1Params(), jit_compile=None, device=None):
        self.params = params
        self.device = device
        # The loops are explicit tf.while_loop / tf.cond: no AutoGraph conversion needed.
        self._function = tf.function(self._compute, jit_compile=jit_compile, autograph=False, reduce_retracing=False)

    def _compute(self, first, second):
        return tvl1_flow_graph(first, second, self.params)

    def __call__(self, first, second):
        if self.device is None:
            return self._function(first, second)
        with tf.device(self.device):
            return self._function(first, second)


def tvl1_flow(first, second, params=TVL1Params(), jit_compile=None, device=None):
    """Flow [B, H, W, 2] float32 NumPy from grayscale pairs [B, H, W] (or one pair [H, W]).

    A one-off convenience: it builds (and traces) a new `TVL1`; reuse a `TVL1` for many calls.
    """
    first, second = np.asarray(first), np.asarray(second)
    single = first.ndim == 2
    if single:
        first, second = first[None], second[None]
    flow = TVL1(params, jit_compile, device)(first, second).numpy()
    return flow[0] if single else flow


def endpoint_error(flow, reference):
    """Mean endpoint error ‖flow − reference‖₂ over pixels (NumPy; any leading shape)."""
    difference = np.asarray(flow, np.float64) - np.asarray(reference, np.float64)
    return float(np.mean(np.sqrt(np.sum(difference * difference, axis=-1))))


__all__ = ["TVL1", "TVL1Params", "endpoint_error", "pyramid_shapes", "tvl1_flow", "tvl1_flow_graph"]
