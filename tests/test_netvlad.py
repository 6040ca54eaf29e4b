"""NetVLADPooling against an independent float64 numpy implementation of Eq. (1) + the release's
normalisations, plus gradients and the shared layer harness (serialisation, masking, mixed precision).
Runs on every Keras backend (tests/test_backends.py); the gradient checks use TensorFlow."""

import keras
import numpy as np
import pytest
from harness import run_layer_test, to_numpy

from actionvlad_tf.layers import NetVLADPooling

tensorflow_only = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="gradient checks written with tf.GradientTape"
)


def reference_netvlad(x, kernel, bias, centers, num_clusters, normalize_input=True, intra=True, final=True):
    """float64 numpy, written from the release's description (§1.2) with an explicit sum over
    descriptors per cluster — deliberately not the layer's matmul formulation."""
    x = np.asarray(x, np.float64)
    batch, depth = x.shape[0], x.shape[-1]
    x = x.reshape(batch, -1, depth)
    if normalize_input:
        x = x / np.sqrt(np.maximum((x**2).sum(-1, keepdims=True), 1e-12))
    logits = x @ kernel.astype(np.float64) + bias.astype(np.float64)
    logits = logits - logits.max(-1, keepdims=True)
    a = np.exp(logits)
    a = (a / a.sum(-1, keepdims=True))[..., :num_clusters]
    out = np.zeros((batch, num_clusters, depth))
    for b in range(batch):
        for k in range(num_clusters):
            residuals = x[b] - centers[k].astype(np.float64)[None, :]
            out[b, k] = (a[b, :, k : k + 1] * residuals).sum(0)
    unnormalized = out.copy()
    if intra:
        out = out / np.sqrt(np.maximum((out**2).sum(-1, keepdims=True), 1e-12))
    out = out.reshape(batch, -1)
    if final:
        out = out / np.sqrt(np.maximum((out**2).sum(-1, keepdims=True), 1e-12))
    return out, unnormalized, a


def make_layer(depth, num_clusters, ghost=0, alpha=1.0, seed=0, **kwargs):
    """A built layer whose kernel, bias and centres are independent random values (decoupled)."""
    rng = np.random.default_rng(seed)
    layer = NetVLADPooling(num_clusters, alpha=alpha, ghost_clusters=ghost, **kwargs)
    layer.build((None, None, depth))
    kernel = rng.normal(size=(depth, num_clusters + ghost)).astype(np.float32) * 3
    bias = rng.normal(size=(num_clusters + ghost,)).astype(np.float32)
    centers = rng.normal(size=(num_clusters, depth)).astype(np.float32) * 0.3
    layer.assignment_kernel.assign(kernel)
    layer.assignment_bias.assign(bias)
    layer.centers.assign(centers)
    return layer, kernel, bias, centers


@pytest.mark.parametrize("shape", [(2, 3, 4, 5, 16), (3, 7, 16), (1, 2, 2, 16)])
@pytest.mark.parametrize("ghost", [0, 2])
def test_matches_float64_reference_with_decoupled_weights(shape, ghost):
    layer, kernel, bias, centers = make_layer(shape[-1], 6, ghost=ghost)
    x = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    expected, _, _ = reference_netvlad(x, kernel, bias, centers, 6)
    got = keras.ops.convert_to_numpy(layer(x))
    assert got.shape == (shape[0], 6 * shape[-1])
    np.testing.assert_allclose(got, expected, atol=2e-6)


@pytest.mark.parametrize(
    "options",
    [
        dict(normalize_input=False),
        dict(intra_normalization=False),
        dict(output_normalization=False),
        dict(normalize_input=False, intra_normalization=False, output_normalization=False),
    ],
)
def test_normalisation_options(options):
    layer, kernel, bias, centers = make_layer(8, 4, **options)
    x = np.random.default_rng(2).normal(size=(2, 5, 8)).astype(np.float32)
    expected, _, _ = reference_netvlad(
        x,
        kernel,
        bias,
        centers,
        4,
        options.get("normalize_input", True),
        options.get("intra_normalization", True),
        options.get("output_normalization", True),
    )
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), expected, rtol=1e-5, atol=1e-5)


def test_output_details_and_cluster_major_layout():
    layer, kernel, bias, centers = make_layer(8, 4, output_details=True)
    x = np.random.default_rng(3).normal(size=(2, 3, 2, 2, 8)).astype(np.float32)
    expected, unnormalized, assignment = reference_netvlad(x, kernel, bias, centers, 4)
    out = layer(x)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out["vlad"]), expected, atol=2e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out["unnormalized"]), unnormalized, atol=1e-5)
    maps = keras.ops.convert_to_numpy(out["assignments"])
    assert maps.shape == (2, 3, 2, 2, 4)
    np.testing.assert_allclose(maps.reshape(2, -1, 4), assignment, atol=1e-6)
    # Index k·D + d holds cluster k, dimension d (release §1.2 step 5).
    intra = unnormalized / np.linalg.norm(unnormalized, axis=-1, keepdims=True)
    flat = intra.reshape(2, -1)
    flat /= np.linalg.norm(flat, axis=-1, keepdims=True)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out["vlad"])[:, 1 * 8 + 3], flat[:, 1 * 8 + 3], atol=1e-6)
    assert layer.compute_output_shape((2, 3, 2, 2, 8)) == {
        "vlad": (2, 32),
        "assignments": (2, 3, 2, 2, 4),
        "unnormalized": (2, 4, 8),
    }


def test_initial_centers_give_paper_soft_assignment():
    """With kernel = 2αcᵀ, bias = −α‖c‖², softmax_k(wᵀx̂ + b) = softmax_k(−α‖x̂ − c_k‖²) (Eq. 1)."""
    rng = np.random.default_rng(4)
    centers = rng.normal(size=(5, 8)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True) * 1.3
    layer = NetVLADPooling(5, alpha=10.0, initial_centers=centers)
    x = rng.normal(size=(2, 6, 8)).astype(np.float32)
    layer(x)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.assignment_kernel), 20.0 * centers.T, rtol=1e-6)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer.assignment_bias), -10.0 * (centers**2).sum(1), rtol=1e-6
    )
    xn = x / np.linalg.norm(x, axis=-1, keepdims=True)
    dist = ((xn[:, :, None, :] - centers[None, None]) ** 2).sum(-1)
    paper = np.exp(-10.0 * dist - (-10.0 * dist).max(-1, keepdims=True))
    paper /= paper.sum(-1, keepdims=True)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.soft_assignment(x)), paper, atol=1e-5)


def test_set_centers_on_built_layer_keeps_ghost_columns():
    layer, kernel, bias, _ = make_layer(8, 4, ghost=2, alpha=1000.0)
    centers = np.random.default_rng(5).normal(size=(4, 8)).astype(np.float32)
    layer.set_centers(centers)
    got = keras.ops.convert_to_numpy(layer.assignment_kernel)
    np.testing.assert_allclose(got[:, :4], 2000.0 * centers.T, rtol=1e-6)
    np.testing.assert_array_equal(got[:, 4:], kernel[:, 4:])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.assignment_bias)[4:], bias[4:])
    with pytest.raises(ValueError, match="shape"):
        layer.set_centers(np.zeros((3, 8)))


@tensorflow_only
def test_stable_at_alpha_1000_and_beyond():
    """Logits near ±2000 (α = 1000, unit descriptors): finite values and gradients, also for
    all-zero and identical descriptors and α = 1e4."""
    import tensorflow as tf

    rng = np.random.default_rng(6)
    centers = rng.normal(size=(4, 8)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    inputs = {
        "random": rng.normal(size=(2, 10, 8)),
        "zeros": np.zeros((2, 10, 8)),
        "identical": np.tile(rng.normal(size=(1, 1, 8)), (2, 10, 1)),
    }
    for alpha in (1000.0, 1e4):
        layer = NetVLADPooling(4, alpha=alpha, initial_centers=centers)
        for name, x in inputs.items():
            x = tf.constant(x, tf.float32)
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = layer(x)
                loss = tf.reduce_sum(y * tf.range(32, dtype=tf.float32))
            grads = tape.gradient(loss, [x] + layer.trainable_weights)
            assert np.isfinite(y.numpy()).all(), (alpha, name)
            for g in grads:
                assert np.isfinite(tf.convert_to_tensor(g).numpy()).all(), (alpha, name)


@tensorflow_only
def test_gradient_matches_finite_differences():
    import tensorflow as tf

    layer, _, _, _ = make_layer(6, 3, alpha=2.0)
    x = tf.constant(np.random.default_rng(7).normal(size=(2, 4, 6)), tf.float64)
    weights = tf.constant(np.random.default_rng(8).normal(size=(2, 18)), tf.float64)

    def f(inputs):
        return tf.reduce_sum(tf.cast(layer(tf.cast(inputs, tf.float32)), tf.float64) * weights)

    theoretical, numerical = tf.test.compute_gradient(f, [x], delta=1e-3)
    np.testing.assert_allclose(theoretical[0], numerical[0], atol=2e-3)


@pytest.mark.parametrize("options", [{}, dict(ghost_clusters=1, intra_normalization=False, alpha=50.0)])
def test_layer_harness(options, tmp_path):
    """Config and `.keras` round trips, eager = symbolic, one fitted step, mixed precision, and a
    mask over padded frames (or over every position) that equals the unpadded video exactly."""
    rng = np.random.default_rng(10)
    centers = rng.normal(size=(4, 8)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    video = rng.normal(size=(2, 3, 2, 2, 8)).astype(np.float32) * 30.0
    padded = np.concatenate([video, rng.normal(size=(2, 2, 2, 2, 8)).astype(np.float32)], axis=1)
    frame_mask = np.array([[True] * 3 + [False] * 2] * 2)
    layer = run_layer_test(
        NetVLADPooling,
        dict(num_clusters=4, initial_centers=centers, **options),
        video,
        (2, 32),
        tmp_path,
        mixed_precision_atol=0.02,
        padded_input=padded,
        mask=frame_mask,
    )
    position_mask = np.broadcast_to(frame_mask[:, :, None, None], (2, 5, 2, 2))
    np.testing.assert_allclose(to_numpy(layer(padded, mask=position_mask)), to_numpy(layer(video)), atol=1e-6)
    config = layer.get_config()
    for key in (
        "num_clusters",
        "alpha",
        "ghost_clusters",
        "normalize_input",
        "intra_normalization",
        "output_normalization",
        "output_details",
        "initial_centers",
        "epsilon",
        "assignment_kernel_initializer",
        "assignment_bias_initializer",
        "centers_initializer",
    ):
        assert key in config


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="initial_centers"):
        NetVLADPooling(4, initial_centers=np.zeros((3, 8)))
    with pytest.raises(ValueError, match="dimension"):
        NetVLADPooling(4, initial_centers=np.zeros((4, 8)))(np.zeros((1, 2, 6), np.float32))
    with pytest.raises(ValueError, match="pooled axis"):
        NetVLADPooling(4)(np.zeros((1, 8), np.float32))
