"""ActionVLAD (Girdhar et al., CVPR 2017) in TensorFlow 2 / Keras 3.

Importing the package registers its Keras layers, so `keras.saving.load_model` reads saved
ActionVLAD models without `custom_objects`.
"""
try:
    import tensorflow  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "actionvlad_tf needs TensorFlow >= 2.16: pip install 'actionvlad_tf[cpu]' (tensorflow-cpu) "
        "or 'actionvlad_tf[gpu]' (tensorflow[and-cuda])"
    ) from error

from actionvlad_tf import layers, models  # noqa: F401  (registers serializable classes)
from actionvlad_tf.layers import NetVLADPooling, SpatioTemporalPooling

__version__ = "0.1.0"
__all__ = ["NetVLADPooling", "SpatioTemporalPooling", "layers", "models"]
