"""Training: the release's two-stage recipe on tf.distribute, k-means centres, frozen-boundary split."""

from actionvlad_tf.training.split import FrozenSplit, split_at_frozen_boundary
from actionvlad_tf.training.trainer import (
    NonFiniteLossError,
    TrainConfig,
    TrainResult,
    UpdateShape,
    is_chief,
    load_model_weights,
    make_optimizer,
    make_strategy,
    recipe_defaults,
    train,
    update_shape,
    worker_input_context,
)

__all__ = [
    "FrozenSplit",
    "NonFiniteLossError",
    "TrainConfig",
    "TrainResult",
    "UpdateShape",
    "is_chief",
    "load_model_weights",
    "make_optimizer",
    "make_strategy",
    "recipe_defaults",
    "split_at_frozen_boundary",
    "train",
    "update_shape",
    "worker_input_context",
]
