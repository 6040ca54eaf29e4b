"""Two NetVLAD implementations the benchmark measures `NetVLADPooling` against (docs/performance.md).

Both take the descriptors [B, T, H, W, D] and the layer's weights (assignment kernel [D, K], bias
[K], centres [K, D]) and return the normalised vector [B, K·D] in the release's cluster-major order;
both agree with `NetVLADPooling` (tests/test_bench.py).

* `netvlad_loop_reference` transcribes the release's `nets/frame_pooling.py::netvlad` (§1.2) into
  TF2 ops: frames folded into the batch, normalisation on axis 3, the assignment as a 1×1 VALID
  convolution plus bias, then a Python loop over videos and, inside, over the K clusters, each
  summing a_k·(x̂ − c_k) over frames × H × W — 2·K per-cluster [T, H, W, D] temporaries per video.
* `netvlad_broadcast_reference` is the common vectorised form that materialises every residual:
  an [B, N, K, D] tensor (N = T·H·W).
"""

import tensorflow as tf

EPSILON = 1e-12  # tf.nn.l2_normalize's floor on the squared norm, as the release


def netvlad_loop_reference(features, kernel, bias, centers):
    """The release's per-cluster loop (§1.2 steps 1–5). Inside `tf.function` the loop unrolls into
    B·K branches of the graph."""
    videos = features.shape[0]
    num_clusters = centers.shape[0]
    frames = tf.reshape(features, [-1, *features.shape[2:]])  # [B·T, H, W, D], release layout
    normed = tf.math.l2_normalize(frames, axis=3, epsilon=EPSILON)
    logits = tf.nn.bias_add(tf.nn.conv2d(normed, kernel[None, None], 1, "VALID"), bias)
    assignment = tf.nn.softmax(logits, axis=3)
    video_vlads = []
    for video_features, video_assignment in zip(tf.split(normed, videos, 0), tf.split(assignment, videos, 0)):
        per_cluster = [
            tf.reduce_sum((video_features - centers[k]) * video_assignment[..., k : k + 1], [0, 1, 2])
            for k in range(num_clusters)
        ]
        video_vlads.append(tf.stack(per_cluster, 0))
    vlad = tf.math.l2_normalize(tf.stack(video_vlads, 0), axis=2, epsilon=EPSILON)
    return tf.math.l2_normalize(tf.reshape(vlad, [videos, -1]), axis=1, epsilon=EPSILON)


def netvlad_broadcast_reference(features, kernel, bias, centers):
    """Vectorised with an explicit residual tensor x̂_n − c_k of shape [B, N, K, D]."""
    videos, depth = features.shape[0], features.shape[-1]
    x = tf.math.l2_normalize(tf.reshape(features, [videos, -1, depth]), axis=2, epsilon=EPSILON)
    assignment = tf.nn.softmax(tf.matmul(x, kernel) + bias, axis=2)  # [B, N, K]
    residuals = x[:, :, None, :] - centers  # [B, N, K, D]
    vlad = tf.reduce_sum(assignment[..., None] * residuals, axis=1)  # [B, K, D]
    vlad = tf.math.l2_normalize(vlad, axis=2, epsilon=EPSILON)
    return tf.math.l2_normalize(tf.reshape(vlad, [videos, -1]), axis=1, epsilon=EPSILON)
