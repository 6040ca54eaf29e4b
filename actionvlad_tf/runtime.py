"""Process-wide settings an entry point makes before building anything: the Keras precision
policy and determinism (seeds, deterministic TF ops)."""
import keras
import tensorflow as tf


def set_precision(mixed_precision):
    """Mixed precision before building: float16 on GPU (the trainer scales the loss), bfloat16 on
    CPU; NetVLAD and the logits stay float32. Returns the policy name."""
    name = "float32"
    if mixed_precision:
        name = "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"
    keras.mixed_precision.set_global_policy(name)
    return name


def set_determinism(seed, deterministic):
    """Seeds Python, numpy and TF (`keras.utils.set_random_seed`); `deterministic` also makes TF's
    ops deterministic, so a resumed run ends with the weights of an uninterrupted one."""
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
