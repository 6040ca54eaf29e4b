"""Process-wide settings an entry point makes before building anything: the Keras precision
policy and determinism (seeds, deterministic TF ops)."""
import keras
import tensorflow as tf

from actionvlad_tf import hardware


def set_precision(mixed_precision="auto"):
    """Sets the Keras dtype policy before building and prints it with the reason: `mixed_precision`
    is auto (bfloat16 on a CPU only where it has native bfloat16, bfloat16 or float16 on a GPU,
    float32 otherwise: `actionvlad_tf.hardware.choose_precision`), float32, bfloat16, float16, or a
    boolean (true: float16 on GPU with loss scaling in the trainer, bfloat16 on CPU). NetVLAD and the
    logits stay float32. Returns the policy name."""
    name, reason = hardware.choose_precision(mixed_precision)
    keras.mixed_precision.set_global_policy(name)
    print(f"precision: {name} ({reason})", flush=True)
    return name


def set_determinism(seed, deterministic):
    """Seeds Python, numpy and TF (`keras.utils.set_random_seed`); `deterministic` also makes TF's
    ops deterministic, so a resumed run ends with the weights of an uninterrupted one."""
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
