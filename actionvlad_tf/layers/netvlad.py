"""NetVLAD / ActionVLAD pooling as a Keras 3 layer (paper Sec. 3.1, release §1.2)."""

import keras
import numpy as np
from keras import ops

EPSILON = 1e-12  # floor on the squared norm, as tf.nn.l2_normalize (release §1.2 step 1)


def l2_normalize(x, axis=-1, epsilon=EPSILON):
    """x / sqrt(max(sum(x^2), epsilon)) along `axis`, the release's normalisation."""
    return x * ops.rsqrt(ops.maximum(ops.sum(ops.square(x), axis=axis, keepdims=True), epsilon))


def flatten_pooled_axes(inputs, mask=None):
    """[B, ..., D] -> [B, N, D], and a mask [B, ...] (a prefix of the pooled axes) -> float [B, N]."""
    shape = ops.shape(inputs)
    batch, depth = shape[0], shape[-1]
    flat = ops.reshape(inputs, (batch, -1, depth))
    if mask is None:
        return flat, None
    mask = ops.cast(mask, flat.dtype)
    pooled_rank = len(inputs.shape) - 2
    for _ in range(pooled_rank + 1 - len(mask.shape)):
        mask = ops.expand_dims(mask, -1)
    mask = ops.broadcast_to(mask, tuple(shape[:-1]))
    return flat, ops.reshape(mask, (batch, -1))


@keras.saving.register_keras_serializable(package="actionvlad_tf")
class NetVLADPooling(keras.layers.Layer):
    """Trainable VLAD pooling over every axis between batch and channels.

    For each video (batch element) the descriptors x of all pooled positions (frames × height ×
    width, or N set elements) are L2-normalised, softly assigned to K clusters, and their residuals
    to the cluster centres are summed:

        a = softmax_k(W^T x̂ + b),     V[k] = Σ_n a_k(x̂_n) (x̂_n − c_k) = (Aᵀ X̂)[k] − (Σ_n a_k) c_k

    V is intra-normalised (each of the K rows), flattened cluster-major (index k·D + d) and globally
    L2-normalised. Assignment (`assignment_kernel` W, `assignment_bias` b) and residual anchors
    (`centers` c) are separate weights ("decoupled", paper Sec. 3.4, release §1.2). Initialised
    from centres c (e.g. k-means), W = 2αcᵀ and b = −α‖c‖², so that at initialisation
    a = softmax_k(−α‖x̂ − c_k‖²), the paper's Eq. (1).

    The aggregation is one batched matmul (no loop over clusters, no [N, K, D] residual tensor).
    Softmax, norms and aggregation run in float32 under a mixed-precision policy; the output is cast
    to the layer's compute dtype.

    Args:
        num_clusters: K, the number of "action words".
        alpha: α of the soft assignment; 1000 in the paper and the release.
        initial_centers: optional [K, D] array of centres (e.g. from k-means) that sets the three
            weights at build time. Without it, the weights use the initialisers below.
        ghost_clusters: G extra clusters that take part in the soft assignment but are dropped from
            the output (GhostVLAD, Zhong et al. 2018). 0 in ActionVLAD.
        normalize_input: L2-normalise each descriptor first (release default True).
        intra_normalization: L2-normalise each cluster's aggregated residual (default True).
        output_normalization: L2-normalise the flattened K·D vector (default True).
        output_details: if True, the output is a dict with `vlad` [B, K·D], `assignments`
            [B, ..., K] (soft assignment maps, paper Fig. 6-8) and `unnormalized` [B, K, D] (V
            before any normalisation).
        assignment_kernel_initializer, assignment_bias_initializer, centers_initializer:
            initialisers used without `initial_centers`.
        epsilon: floor on squared norms.

    Call arguments:
        inputs: [B, ..., D] descriptors, e.g. [B, T, H, W, D] or [B, N, D].
        mask: optional boolean [B, ...] over the pooled axes or a prefix of them (e.g. [B, T] for
            padded frames); masked positions contribute nothing, so a padded video gives exactly
            the unpadded result.

    Example:

    >>> import numpy as np, keras
    >>> from actionvlad_tf.layers import NetVLADPooling
    >>> frames = np.random.rand(2, 3, 4, 4, 8).astype("float32")  # [B, T, H, W, D]
    >>> centers = np.random.rand(5, 8).astype("float32")
    >>> layer = NetVLADPooling(num_clusters=5, initial_centers=centers)
    >>> layer(frames).shape
    (2, 40)

    Reference:
        Girdhar et al., "ActionVLAD: Learning spatio-temporal aggregation for action
        classification", CVPR 2017; Arandjelović et al., "NetVLAD", CVPR 2016.
    """

    def __init__(
        self,
        num_clusters=64,
        alpha=1000.0,
        initial_centers=None,
        ghost_clusters=0,
        normalize_input=True,
        intra_normalization=True,
        output_normalization=True,
        output_details=False,
        assignment_kernel_initializer="glorot_uniform",
        assignment_bias_initializer="zeros",
        centers_initializer=None,
        epsilon=EPSILON,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_clusters = int(num_clusters)
        self.alpha = float(alpha)
        self.initial_centers = None if initial_centers is None else np.asarray(initial_centers, np.float32)
        if self.initial_centers is not None and (
            self.initial_centers.ndim != 2 or self.initial_centers.shape[0] != self.num_clusters
        ):
            raise ValueError(
                f"initial_centers must have shape [num_clusters={self.num_clusters}, D], "
                f"got {self.initial_centers.shape}"
            )
        self.ghost_clusters = int(ghost_clusters)
        self.normalize_input = bool(normalize_input)
        self.intra_normalization = bool(intra_normalization)
        self.output_normalization = bool(output_normalization)
        self.output_details = bool(output_details)
        self.assignment_kernel_initializer = keras.initializers.get(assignment_kernel_initializer)
        self.assignment_bias_initializer = keras.initializers.get(assignment_bias_initializer)
        self.centers_initializer = keras.initializers.get(
            centers_initializer or keras.initializers.RandomNormal(stddev=0.1)
        )
        self.epsilon = float(epsilon)
        self.supports_masking = True

    def build(self, input_shape):
        depth = input_shape[-1]
        if depth is None:
            raise ValueError("NetVLADPooling needs a known descriptor dimension (last axis).")
        if len(input_shape) < 3:
            raise ValueError(f"NetVLADPooling expects [B, ..., D] with at least one pooled axis, got {input_shape}")
        if self.initial_centers is not None and self.initial_centers.shape[1] != depth:
            raise ValueError(f"initial_centers have dimension {self.initial_centers.shape[1]}, inputs have {depth}")
        total = self.num_clusters + self.ghost_clusters
        # autocast=False: these weights are read in float32 even under a mixed-precision policy.
        self.assignment_kernel = self.add_weight(
            name="assignment_kernel",
            shape=(depth, total),
            initializer=self.assignment_kernel_initializer,
            dtype="float32",
            autocast=False,
        )
        self.assignment_bias = self.add_weight(
            name="assignment_bias",
            shape=(total,),
            initializer=self.assignment_bias_initializer,
            dtype="float32",
            autocast=False,
        )
        self.centers = self.add_weight(
            name="centers",
            shape=(self.num_clusters, depth),
            initializer=self.centers_initializer,
            dtype="float32",
            autocast=False,
        )
        if self.initial_centers is not None:
            self.set_centers(self.initial_centers)

    def set_centers(self, centers):
        """Sets kernel = 2αcᵀ, bias = −α‖c‖², centers = c (ghost columns keep their values)."""
        centers = np.asarray(centers, np.float32)
        expected = tuple(self.centers.shape)
        if centers.shape != expected:
            raise ValueError(f"centers must have shape {expected}, got {centers.shape}")
        kernel = np.array(ops.convert_to_numpy(self.assignment_kernel))
        bias = np.array(ops.convert_to_numpy(self.assignment_bias))
        kernel[:, : self.num_clusters] = 2.0 * self.alpha * centers.T
        bias[: self.num_clusters] = -self.alpha * np.sum(centers**2, axis=1)
        self.assignment_kernel.assign(kernel)
        self.assignment_bias.assign(bias)
        self.centers.assign(centers)

    def assignment_logits(self, x, scale=None):
        """(x·W)·scale + b: the soft assignment's logits [..., K+G] for descriptors x [..., D] (float32),
        with `scale` [..., 1] (1/‖x‖ when the input is normalised) or None. `export.portable`
        replaces it while writing a quantised file, to keep W and b at float32 precision there."""
        logits = ops.matmul(x, self.assignment_kernel)
        if scale is not None:
            logits = logits * scale
        return logits + self.assignment_bias

    def soft_assignment(self, inputs):
        """Soft assignment [B, ..., K] of each descriptor to the K (non-ghost) clusters."""
        x = ops.cast(inputs, "float32")
        if self.normalize_input:
            x = l2_normalize(x, epsilon=self.epsilon)
        return ops.softmax(self.assignment_logits(x), axis=-1)[..., : self.num_clusters]

    def call(self, inputs, mask=None):
        x, weights = flatten_pooled_axes(ops.cast(inputs, "float32"), mask)
        # x̂ = r·x with r = 1/‖x‖ per descriptor. The normalised copy of x is never stored: r scales
        # the rows of X·W and of A instead (same result; half the memory traffic of the layer).
        inverse_norm = None
        if self.normalize_input:
            inverse_norm = ops.rsqrt(ops.maximum(ops.sum(ops.square(x), axis=-1, keepdims=True), self.epsilon))
        logits = self.assignment_logits(x, inverse_norm)  # [B, N, K+G]
        assignment = ops.softmax(logits, axis=-1)[..., : self.num_clusters]  # [B, N, K]
        if weights is not None:
            assignment = assignment * ops.expand_dims(weights, -1)
        mass = ops.sum(assignment, axis=1)  # [B, K]
        scaled = assignment * inverse_norm if self.normalize_input else assignment
        # V = Aᵀ·X̂ − (Σ_n A)·c, one batched matmul per video.
        residual_sum = ops.matmul(ops.transpose(scaled, (0, 2, 1)), x)  # [B, K, D]
        unnormalized = residual_sum - ops.expand_dims(mass, -1) * self.centers
        vlad = unnormalized
        if self.intra_normalization:
            vlad = l2_normalize(vlad, epsilon=self.epsilon)
        vlad = ops.reshape(vlad, (ops.shape(vlad)[0], -1))  # cluster-major: index k·D + d
        if self.output_normalization:
            vlad = l2_normalize(vlad, epsilon=self.epsilon)
        vlad = ops.cast(vlad, self.compute_dtype)
        if not self.output_details:
            return vlad
        assignment_maps = ops.reshape(assignment, tuple(ops.shape(inputs)[:-1]) + (self.num_clusters,))
        return {"vlad": vlad, "assignments": assignment_maps, "unnormalized": unnormalized}

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        depth = input_shape[-1]
        size = None if depth is None else self.num_clusters * depth
        vlad_shape = (input_shape[0], size)
        if not self.output_details:
            return vlad_shape
        return {
            "vlad": vlad_shape,
            "assignments": tuple(input_shape[:-1]) + (self.num_clusters,),
            "unnormalized": (input_shape[0], self.num_clusters, depth),
        }

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_clusters": self.num_clusters,
                "alpha": self.alpha,
                "initial_centers": None if self.initial_centers is None else self.initial_centers.tolist(),
                "ghost_clusters": self.ghost_clusters,
                "normalize_input": self.normalize_input,
                "intra_normalization": self.intra_normalization,
                "output_normalization": self.output_normalization,
                "output_details": self.output_details,
                "assignment_kernel_initializer": keras.initializers.serialize(self.assignment_kernel_initializer),
                "assignment_bias_initializer": keras.initializers.serialize(self.assignment_bias_initializer),
                "centers_initializer": keras.initializers.serialize(self.centers_initializer),
                "epsilon": self.epsilon,
            }
        )
        return config
