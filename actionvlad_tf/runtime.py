"""Process-wide settings an entry point makes before building anything: the Keras precision
policy, determinism (seeds, deterministic TF ops) and, for rehearsing multi-replica runs without
GPUs, the CPU split into logical devices."""

import os

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


CPU_REPLICAS_ENV = "ACTIONVLAD_CPU_REPLICAS"


def set_cpu_replicas(replicas=None):
    """Splits the CPU into `replicas` logical devices, so that `training.make_strategy` mirrors over
    them as it would over that many GPUs (a rehearsal of a multi-GPU run on one machine; the update
    is the same, the speed is not). `replicas` None or 0 reads the environment variable
    `ACTIONVLAD_CPU_REPLICAS` (unset: leave the devices as they are). Devices a caller configured
    before (`tf.config.set_logical_device_configuration`) are kept; asking for another number then,
    or for CPU replicas where GPUs are visible, is an error. Must run before TensorFlow initialises
    its devices. Returns the number of logical CPU devices."""
    if not replicas:
        value = os.environ.get(CPU_REPLICAS_ENV, "").strip()
        if not value:
            return None
        try:
            replicas = int(value)
        except ValueError:
            raise ValueError(f"{CPU_REPLICAS_ENV}={value!r} is not a whole number of replicas") from None
    replicas = int(replicas)
    if replicas < 1:
        raise ValueError(f"CPU replicas must be ≥ 1, got {replicas}")
    if tf.config.list_physical_devices("GPU"):
        raise ValueError(
            f"{replicas} CPU replicas asked for, but GPUs are visible: the strategy mirrors over "
            "the GPUs (hide them with CUDA_VISIBLE_DEVICES= to rehearse on the CPU)"
        )
    cpu = tf.config.list_physical_devices("CPU")[0]
    configured = tf.config.get_logical_device_configuration(cpu)
    if configured:  # the caller split the CPU already
        if len(configured) != replicas:
            raise ValueError(
                f"the CPU is already split into {len(configured)} logical devices; "
                f"{replicas} CPU replicas cannot be set as well"
            )
        return replicas
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
    except RuntimeError as error:  # TF's devices are fixed at its first use
        if len(tf.config.list_logical_devices("CPU")) == replicas:
            return replicas
        raise RuntimeError(
            f"{replicas} CPU replicas must be set before TensorFlow initialises its devices "
            f"(before any tensor is made): {error}"
        ) from None
    return replicas
