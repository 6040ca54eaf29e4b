"""ActionVLAD (Girdhar et al., CVPR 2017) in TensorFlow 2 / Keras 3.

Importing the package registers its Keras layers and model parts, so `keras.saving.load_model`
reads saved ActionVLAD models without `custom_objects`. The layers and the model builders run on
any Keras 3 backend (TensorFlow, JAX, PyTorch); the input pipelines, training, evaluation and
export need TensorFlow (`pip install 'actionvlad_tf[cpu]'`, `[gpu]` or `[tf]`).
"""

from actionvlad_tf import layers, models  # noqa: F401  (registers serializable classes)
from actionvlad_tf.layers import NetVLADPooling, SpatioTemporalPooling

__version__ = "0.1.0"
__all__ = ["NetVLADPooling", "SpatioTemporalPooling", "layers", "models"]
