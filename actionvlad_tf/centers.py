"""NetVLAD's initial centres on disk: an `.npz` with a `centers` [K, D] float32 array and scalar
metadata, never a pickle (WORKSPACE.md). Written by k-means (`training.kmeans`) and by the release
k-means converter (`convert.release_ckpt`), read by training."""

import numpy as np

from actionvlad_tf.atomic import atomic_output


def save_centers(path, centers, **metadata):
    """Writes `centers` [K, D] (and scalar/array metadata) to an `.npz`, atomically."""
    centers = np.asarray(centers, np.float32)
    if centers.ndim != 2 or not np.isfinite(centers).all():
        raise ValueError(f"centres must be a finite [K, D] array, got shape {centers.shape}")
    with atomic_output(path) as temporary, open(temporary, "wb") as handle:
        np.savez(handle, centers=centers, **{k: np.asarray(v) for k, v in metadata.items()})
    return str(path)


def load_centers(path, num_clusters=None, descriptor_size=None):
    """The `centers` [K, D] of an `.npz` written by `save_centers` (no pickle is ever loaded)."""
    with np.load(path, allow_pickle=False) as data:
        if "centers" not in data:
            raise ValueError(f"{path}: no 'centers' array (it holds {sorted(data.files)})")
        try:
            centers = data["centers"].astype(np.float32)
        except ValueError as error:  # an object array: numpy refuses to unpickle it
            raise ValueError(f"{path}: 'centers' is not a numeric array ({error}); refused") from None
    expected = (num_clusters, descriptor_size)
    if centers.ndim != 2 or any(e is not None and e != s for e, s in zip(expected, centers.shape)):
        raise ValueError(
            f"{path}: centres have shape {centers.shape}, the model needs "
            f"[{num_clusters or 'K'}, {descriptor_size or 'D'}]"
        )
    if not np.isfinite(centers).all():
        raise ValueError(f"{path}: centres hold NaN or inf")
    return centers
