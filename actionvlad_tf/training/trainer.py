"""The release's training recipe on tf.distribute and Keras 3 (release §2.3–§2.5; paper Sec. 3.4).

One parameter update (release §2.3, §8 row 11):

    for each of `iter_size` micro-batches (`batch_size` videos per replica, all replicas together
    form the global micro-batch):
        loss  = mean softmax cross-entropy over the videos of the GLOBAL micro-batch
                + the regularisation loss, added once (first replica only, release §1.6)
        grads = Σ over replicas of ∂loss_replica/∂w          (= the mean over all its videos)
        grads = [clip_by_norm(g, clip_gradients) for g in grads]   (each variable on its own)
        accumulate grads
    apply (Σ clipped grads) / iter_size with the optimiser; step += 1 (the step counts updates).

Keras's built-ins do not reproduce this. Keras 3's TF optimiser clips (`clipnorm`) inside `apply()`
before `_backend_update_step` all-reduces the gradients over replicas, so its clipping is per
replica; and `gradient_accumulation_steps` clips the accumulated mean, not each micro-batch. Here
the gradients are all-reduced explicitly in replica context, clipped and accumulated, and the
optimiser is applied in CROSS-replica context, where `_all_reduce_sum_gradients` finds no replica
context and does not reduce again: nothing is summed twice.

The data side: `train()` iterates a plain `tf.data` iterator (so its position can be checkpointed;
a distributed iterator cannot be) and hands each replica its slice of the batch. Given a dataset,
the iterator yields GLOBAL batches and every worker of a MultiWorkerMirroredStrategy iterates the
same seeded dataset, decoding all of it. Given a dataset FUNCTION of a `tf.distribute.InputContext`
(`worker_input_context`), each worker builds and iterates only its share: its rows of every global
batch (`data.video_input.make_video_dataset` reads and decodes just those videos), and the position
of each worker's iterator is checkpointed on its own (`train_dir/input_position/worker<i>/`).
"""

import dataclasses
import glob
import json
import logging
import os
import shutil
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from actionvlad_tf.atomic import ensure_writable_dir, save_keras_atomic, write_json
from actionvlad_tf.models import set_training_stage

log = logging.getLogger(__name__)

_OPTIMIZERS = {  # name → (learning rate, TrainConfig) → Keras optimiser; OPTIMIZERS lists the names
    "adam": lambda lr, c: keras.optimizers.Adam(lr, beta_1=c.adam_beta1, beta_2=c.adam_beta2, epsilon=c.opt_epsilon),
    "sgd": lambda lr, c: keras.optimizers.SGD(lr),
    "momentum": lambda lr, c: keras.optimizers.SGD(lr, momentum=c.momentum),
    "rmsprop": lambda lr, c: keras.optimizers.RMSprop(
        lr, rho=c.rmsprop_decay, momentum=c.rmsprop_momentum, epsilon=c.opt_epsilon
    ),
}
OPTIMIZERS = tuple(_OPTIMIZERS)
LEARNING_RATE_DECAY_TYPES = ("exponential", "fixed")
NAN_POLICIES = ("raise", "skip")
INITIAL_LOSS_SCALE = 2.0**15  # dynamic loss scaling as keras.optimizers.LossScaleOptimizer
LOSS_SCALE_GROWTH_INTERVAL = 2000
SKIPPED_BATCHES_FILE = "skipped_batches.json"

# Release §2.5 (001 scripts) and the two-stream 005 script; `recipe_defaults` picks one.
_ACTIONVLAD_RECIPE = dict(
    optimizer="adam",
    opt_epsilon=1e-4,
    clip_gradients=5.0,
    num_steps_per_decay=5000,
    learning_rate_decay_factor=0.1,
    weight_decay=4e-5,
)
# videos_per_update / videos_per_micro_batch: the GLOBAL videos of one update and of one micro-batch
# (the unit whose gradient is clipped), batch × clones × iter_size and batch × clones in the release:
# stage 1 ran 4 × 2 GPUs × 2 (16 / 8), stage 2 4 × 4 GPUs × 1 (16 / 16), the 005 script 4 × 4 × 1.
RECIPES = {
    1: dict(
        _ACTIONVLAD_RECIPE,
        learning_rate=0.01,
        max_number_of_steps=10000,
        videos_per_update=16,
        videos_per_micro_batch=8,
    ),
    2: dict(
        _ACTIONVLAD_RECIPE,
        learning_rate=1e-4,
        max_number_of_steps=8000,
        videos_per_update=16,
        videos_per_micro_batch=16,
    ),
    0: dict(
        _ACTIONVLAD_RECIPE,
        learning_rate=1e-4,
        max_number_of_steps=8000,
        videos_per_update=16,
        videos_per_micro_batch=16,
    ),
    # 005_VGG_RGB_HMDB_TrainTwoStream: momentum 0.9, lr 0.001 × 0.1 every 2000 steps, 5000 steps,
    # wd 5e-4. It sets no clipping, so the flag default 0 holds.
    "frame_baseline": dict(
        optimizer="momentum",
        opt_epsilon=1e-4,
        clip_gradients=0.0,
        num_steps_per_decay=2000,
        learning_rate_decay_factor=0.1,
        weight_decay=5e-4,
        learning_rate=0.001,
        max_number_of_steps=5000,
        videos_per_update=16,
        videos_per_micro_batch=16,
    ),
}


# The recipe's fields that `TrainConfig` holds (the others: the model's weight decay and the batch
# numbers, which `training.run` applies).
RECIPE_FIELDS = (
    "max_number_of_steps",
    "learning_rate",
    "num_steps_per_decay",
    "learning_rate_decay_factor",
    "optimizer",
    "opt_epsilon",
    "clip_gradients",
)


def recipe_defaults(stage, frame_baseline=False):
    """The release's hyper-parameters for an ActionVLAD stage (0, 1, 2) or the frame baseline."""
    key = "frame_baseline" if frame_baseline else stage
    if key not in RECIPES:
        raise ValueError(f"stage must be one of 0, 1, 2, got {stage!r}")
    return dict(RECIPES[key])


def _divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


@dataclasses.dataclass(frozen=True)
class UpdateShape:
    """How the videos of one update divide over replicas and micro-batches (release §2.3, §2.5).

    The release fixed two GLOBAL quantities: the videos of one update (`videos_per_update`, 16) and
    the videos of one micro-batch (`videos_per_micro_batch`: the videos of all clones together, whose
    summed gradient is clipped per variable as one unit; 8 in stage 1, 16 in stage 2). From them and
    the replica count follow the per-replica batch and `iter_size`, so an update takes the same
    videos and clips per the same unit on 1, 2, 4 or 16 replicas. `update_shape` builds and checks it.
    """

    videos_per_update: int
    videos_per_micro_batch: int
    replicas: int = 1

    @property
    def per_replica_batch(self):
        return self.videos_per_micro_batch // self.replicas

    @property
    def iter_size(self):
        return self.videos_per_update // self.videos_per_micro_batch

    def describe(self):
        return (
            f"{self.replicas} replica(s) × {self.per_replica_batch} videos = micro-batch of "
            f"{self.videos_per_micro_batch} (clipped as one) × iter_size {self.iter_size} = "
            f"{self.videos_per_update} videos per update"
        )


def update_shape(videos_per_update, videos_per_micro_batch, replicas=1):
    """The `UpdateShape` of the global quantities on `replicas` replicas; a ValueError naming the
    numbers and the fix where they do not divide."""
    update, micro, replicas = int(videos_per_update), int(videos_per_micro_batch), int(replicas)
    if min(update, micro, replicas) < 1:
        raise ValueError(
            f"videos_per_update ({update}), videos_per_micro_batch ({micro}) and replicas ({replicas}) must be ≥ 1"
        )
    if update % micro:
        raise ValueError(
            f"videos_per_update {update} is not a multiple of videos_per_micro_batch {micro}: "
            f"choose a micro-batch among {_divisors(update)}"
        )
    if micro % replicas:
        fits = [m for m in _divisors(update) if m % replicas == 0]
        other = (
            f"or set --videos_per_micro_batch to one of {fits} (a multiple of {replicas} dividing "
            f"{update}; this changes the unit whose gradient is clipped, README fidelity row 32)"
            if fits
            else f"no micro-batch dividing {update} splits over {replicas} replicas"
        )
        raise ValueError(
            f"the micro-batch of {micro} videos (clipped as one unit) cannot be split over "
            f"{replicas} replicas: run on a replica count among {_divisors(micro)}, {other}"
        )
    return UpdateShape(update, micro, replicas)


class NonFiniteLossError(FloatingPointError):
    """A micro-batch gave a non-finite loss or gradient (nan_policy="raise")."""


@dataclasses.dataclass
class TrainConfig:
    """Hyper-parameters and bookkeeping of one training stage (release flag names, §2.1).

    The recipe's fields (`RECIPE_FIELDS`: steps, learning rate and its decay, optimiser, ε,
    clipping) left None take the release's values for the stage: `for_recipe(stage)`, which
    `train()` applies (stage 1's where it is given no stage) and `training.run.train_experiment`
    applies for the stage it trains.

    Attributes:
        train_dir: checkpoints, summaries, `skipped_batches.json` and (default) the final model.
            A restart in the same folder resumes from its latest readable checkpoint.
        max_number_of_steps: parameter updates to reach (release `max_number_of_steps`).
        learning_rate, num_steps_per_decay, learning_rate_decay_factor: staircase exponential
            decay lr·factor^⌊step/num_steps_per_decay⌋ (release §2.3); decay type "fixed" keeps lr.
        optimizer: "adam" (ActionVLAD), "momentum" (two-stream 005 script), "sgd" or "rmsprop".
        opt_epsilon: ε of Adam and RMSProp (1e-4 in the recipe; paper Sec. 3.4).
        clip_gradients: > 0 clips each variable's gradient to this L2 norm, per micro-batch after
            the replica sum (release §2.3); 0 disables.
        iter_size: micro-batches accumulated (as their mean) per update.
        save_every_n_steps: checkpoint period in updates (also one at the end).
        keep_checkpoint_max: checkpoints kept (release: 5).
        log_every_n_steps: TensorBoard summary period in updates.
        nan_policy: "raise" stops at a non-finite loss or gradient, naming the step and the videos;
            "skip" drops that micro-batch (its gradient is never applied), draws the next one, and
            records it in the result and in `train_dir/skipped_batches.json`.
        max_consecutive_skips: under "skip", this many non-finite micro-batches in a row stop
            training (the model has diverged).
        checkpoint_iterator: save the input iterator's position with each checkpoint, so a resumed
            run sees the data an uninterrupted one would. Needs a checkpointable dataset (no
            `py_function` / `from_generator`); checked before training starts.
        dynamic_loss_scale: scale the loss for float16 gradients (None: on iff the global Keras
            policy is mixed_float16). A micro-batch whose scaled gradient overflows is recomputed
            at half the scale; the scale doubles after 2000 finite micro-batches.
        final_model_path: where the trained model is saved as `.keras` (atomically); None:
            `train_dir/model.keras`; "" saves none.
        progress: show a tqdm progress bar (chief only).
    """

    train_dir: str
    max_number_of_steps: int = None
    learning_rate: float = None
    num_steps_per_decay: int = None
    learning_rate_decay_factor: float = None
    learning_rate_decay_type: str = "exponential"
    optimizer: str = None
    opt_epsilon: float = None
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    momentum: float = 0.9
    rmsprop_momentum: float = 0.9
    rmsprop_decay: float = 0.9
    clip_gradients: float = None
    iter_size: int = 1
    save_every_n_steps: int = 500
    keep_checkpoint_max: int = 5
    log_every_n_steps: int = 10
    nan_policy: str = "raise"
    max_consecutive_skips: int = 10
    checkpoint_iterator: bool = True
    dynamic_loss_scale: bool = None
    final_model_path: str = None
    progress: bool = True

    def for_recipe(self, stage=1, frame_baseline=False):
        """This config with its None recipe fields set to the release's values for `stage`."""
        recipe = recipe_defaults(stage, frame_baseline)
        return dataclasses.replace(
            self, **{name: recipe[name] for name in RECIPE_FIELDS if getattr(self, name) is None}
        )

    def __post_init__(self):
        if self.optimizer is not None and self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.learning_rate_decay_type not in LEARNING_RATE_DECAY_TYPES:
            raise ValueError(
                f"learning_rate_decay_type must be one of {LEARNING_RATE_DECAY_TYPES}, "
                f"got {self.learning_rate_decay_type!r}"
            )
        if self.nan_policy not in NAN_POLICIES:
            raise ValueError(f"nan_policy must be one of {NAN_POLICIES}, got {self.nan_policy!r}")
        for name in (
            "max_number_of_steps",
            "iter_size",
            "save_every_n_steps",
            "log_every_n_steps",
            "keep_checkpoint_max",
            "num_steps_per_decay",
            "max_consecutive_skips",
        ):
            if getattr(self, name) is not None and int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if self.clip_gradients is not None and self.clip_gradients < 0:
            raise ValueError(f"clip_gradients must be ≥ 0, got {self.clip_gradients}")


@dataclasses.dataclass
class TrainResult:
    """What `train` did: the step reached, the last update's loss and accuracy (percent), the
    micro-batches skipped under nan_policy="skip" ({"step", "what", "videos"} each, this run and
    earlier runs in the same train_dir), the last checkpoint, the saved model (None on workers other
    than the chief), and the median seconds per update of this run (first update, which traces,
    excluded; None if fewer than two)."""

    step: int
    loss: float
    accuracy: float
    skipped_batches: list
    checkpoint: str
    model_path: str
    seconds_per_step: float


def make_strategy(devices=None, collective_timeout_s=None):
    """MultiWorkerMirroredStrategy when `TF_CONFIG` names several workers, else MirroredStrategy
    over `devices` (default: the local GPUs; where there are none, every logical CPU device, one
    unless the CPU was split with `runtime.set_cpu_replicas` or `tf.config.set_logical_device_configuration`).

    `collective_timeout_s` bounds how long a worker waits in a collective for a dead peer; by
    default TF's peer health check (every 30 s) aborts the collectives of the survivors, which then
    fail fast (see `train`).
    """
    cluster = json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster", {})
    if len(cluster.get("worker", [])) + len(cluster.get("chief", [])) > 1:
        if devices is not None:
            raise ValueError("devices cannot be chosen for a multi-worker run (TF_CONFIG is set)")
        options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=collective_timeout_s)
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    if devices is None and not tf.config.list_logical_devices("GPU"):
        cpus = tf.config.list_logical_devices("CPU")
        if len(cpus) > 1:  # the CPU split into logical devices (runtime.set_cpu_replicas): one replica each
            devices = [device.name for device in cpus]
    return tf.distribute.MirroredStrategy(devices)


INPUT_POSITION_DIR = "input_position"


def _workers(strategy):
    """(number of workers, this worker's index: the chief first, then the workers in order)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    cluster = resolver.cluster_spec().as_dict() if resolver is not None else {}
    if not cluster:
        return 1, 0
    chiefs = len(cluster.get("chief", []))
    index = 0 if resolver.task_type == "chief" else chiefs + int(resolver.task_id)
    return chiefs + len(cluster.get("worker", [])), index


def worker_input_context(strategy=None):
    """The `tf.distribute.InputContext` of this worker's input pipeline: one pipeline per worker,
    `get_per_replica_batch_size(global batch)` giving the worker's rows of each global batch (its
    replicas' slices together)."""
    strategy = strategy or tf.distribute.get_strategy()
    workers, index = _workers(strategy)
    return tf.distribute.InputContext(
        num_input_pipelines=workers, input_pipeline_id=index, num_replicas_in_sync=workers
    )


def is_chief(strategy):
    """True for the worker that writes checkpoints, summaries and the final model."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    cluster = resolver.cluster_spec().as_dict()
    if resolver.task_type == "chief":
        return True
    return resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in cluster


def make_learning_rate(learning_rate, num_steps_per_decay, decay_factor, decay_type="exponential"):
    """lr₀·factor^⌊step/num_steps_per_decay⌋ (release §2.3, staircase), or a fixed lr."""
    if decay_type == "fixed":
        return learning_rate
    if decay_type != "exponential":
        raise ValueError(f"decay_type must be one of {LEARNING_RATE_DECAY_TYPES}, got {decay_type!r}")
    return keras.optimizers.schedules.ExponentialDecay(learning_rate, num_steps_per_decay, decay_factor, staircase=True)


def make_optimizer(config):
    """A fresh optimiser for one stage (release §2.4: no optimiser state crosses stages).

    Adam is TF1's ε-hat form in both TF1 and Keras 3, so ε = 1e-4 carries over (release §2.3).
    "momentum" is Keras SGD with momentum: TF1's MomentumOptimizer scales the accumulated velocity
    by the current lr, which differs only at lr changes (release §8 row 29).
    """
    config = config.for_recipe()
    lr = make_learning_rate(
        config.learning_rate,
        config.num_steps_per_decay,
        config.learning_rate_decay_factor,
        config.learning_rate_decay_type,
    )
    return _OPTIMIZERS[config.optimizer](lr, config)


def copy_weights(source, target, where="source model"):
    """Copies weights in order between two models of the same architecture (input sizes may differ),
    checking every name and shape."""
    if len(source.weights) != len(target.weights):
        raise ValueError(f"{where} has {len(source.weights)} weights, the model has {len(target.weights)}")
    for src, dst in zip(source.weights, target.weights):
        if src.path != dst.path or tuple(src.shape) != tuple(dst.shape):
            raise ValueError(
                f"{where}: weight {src.path} {tuple(src.shape)} does not match the model's "
                f"{dst.path} {tuple(dst.shape)}"
            )
    target.set_weights(source.get_weights())


def load_model_weights(model, path):
    """Loads model weights only, no optimiser state and no step (release §2.4), from a `.keras` file
    (safe mode), a `.weights.h5` file, a checkpoint prefix, or a train_dir (its latest checkpoint)."""
    path = os.fspath(path)
    if path.endswith(".keras"):
        if not os.path.exists(path):
            raise FileNotFoundError(f"model file not found: {path}")
        copy_weights(keras.saving.load_model(path, compile=False, safe_mode=True), model, path)
        return path
    if path.endswith(".weights.h5"):
        model.load_weights(path)
        return path
    prefix = tf.train.latest_checkpoint(path) if os.path.isdir(path) else path
    if prefix is None:
        raise FileNotFoundError(f"no checkpoint in {path}")
    if not tf.io.gfile.exists(prefix + ".index"):
        raise FileNotFoundError(f"checkpoint not found: {prefix}")
    tf.train.Checkpoint(model=model).restore(prefix).expect_partial().assert_existing_objects_matched()
    return prefix


def _video_names(metadata):
    """Video names from a batch's metadata (strings, ints, or a dict with a `path`/`video` entry)."""
    if metadata is None:
        return None
    if isinstance(metadata, dict):
        for key in ("path", "video", "video_path"):
            if key in metadata:
                return _video_names(metadata[key])
        return [
            ", ".join(f"{k}={v}" for k, v in zip(metadata, row))
            for row in zip(*(_video_names(v) for v in metadata.values()))
        ]
    values = np.asarray(metadata).reshape(-1)
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values]


def _unpack(element):
    if not isinstance(element, (tuple, list)) or len(element) not in (2, 3):
        raise ValueError("training dataset elements must be (inputs, labels) or (inputs, labels, metadata) tuples")
    return element[0], element[1], element[2] if len(element) == 3 else None


def _per_replica(strategy, inputs, labels, first_replica=0, replicas=None):
    """A batch of the rows of `replicas` replicas from `first_replica` on (default: the global
    batch of all replicas) split into one slice per replica (replica r: rows (r − first)·b …)."""
    replicas = replicas or strategy.num_replicas_in_sync
    if strategy.num_replicas_in_sync == 1:
        return inputs, labels
    batch = int(labels.shape[0])
    if batch % replicas:
        raise ValueError(f"batch of {batch} videos cannot be split over {replicas} replicas")
    size = batch // replicas

    def replica_slice(context):
        start = (context.replica_id_in_sync_group - first_replica) * size
        return tf.nest.map_structure(lambda t: t[start : start + size], (inputs, labels))

    return strategy.experimental_distribute_values_from_function(replica_slice)


class _StepFunctions:
    """The compiled micro-step and update of one stage (see the module docstring)."""

    def __init__(self, model, optimizer, strategy, config):
        self.model, self.optimizer, self.strategy = model, optimizer, strategy
        self.variables = list(model.trainable_variables)
        self.clip = float(config.clip_gradients)
        self.iter_size = int(config.iter_size)
        with strategy.scope():
            # Each replica accumulates its own copy of the (identical, all-reduced) clipped
            # gradients; reading in cross-replica context takes the first replica's copy.
            self.accumulators = [
                tf.Variable(
                    tf.zeros(v.shape, tf.float32),
                    trainable=False,
                    synchronization=tf.VariableSynchronization.ON_READ,
                    aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
                    name=f"accumulated_gradient_{i}",
                )
                for i, v in enumerate(self.variables)
            ]
            self.loss_scale = tf.Variable(1.0, trainable=False, dtype=tf.float32, name="loss_scale")
            self.finite_in_a_row = tf.Variable(0, trainable=False, dtype=tf.int64, name="finite_in_a_row")
        self.micro_step = tf.function(self._micro_step, reduce_retracing=True)
        self.apply_update = tf.function(self._apply_update)

    def _replica_micro_step(self, inputs, labels):
        context = tf.distribute.get_replica_context()
        labels = tf.cast(labels, tf.int32)
        videos = context.all_reduce(tf.distribute.ReduceOp.SUM, tf.cast(tf.shape(labels)[0], tf.float32))
        first_replica = tf.cast(tf.equal(context.replica_id_in_sync_group, 0), tf.float32)
        with tf.GradientTape() as tape:
            logits = tf.cast(self.model(inputs, training=True), tf.float32)
            cross_entropy = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
            regularization = tf.add_n([tf.cast(l, tf.float32) for l in self.model.losses] or [tf.constant(0.0)])
            # Mean over the GLOBAL micro-batch; regularisation once, on the first replica (§1.6).
            loss = tf.reduce_sum(cross_entropy) / videos + first_replica * regularization
            scaled_loss = loss * self.loss_scale
        grads = tape.gradient(scaled_loss, self.variables)
        missing = [v.path for v, g in zip(self.variables, grads) if g is None]
        if missing:
            raise ValueError(f"trainable variables without a gradient: {missing}")
        grads = context.all_reduce(tf.distribute.ReduceOp.SUM, [tf.convert_to_tensor(g) for g in grads])
        grads = [tf.cast(g, tf.float32) / self.loss_scale for g in grads]
        total_loss = context.all_reduce(tf.distribute.ReduceOp.SUM, loss)
        correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels), tf.float32))
        accuracy = context.all_reduce(tf.distribute.ReduceOp.SUM, correct) / videos
        loss_finite = tf.math.is_finite(total_loss)
        grads_finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads])
        norms = tf.stack([tf.norm(g) for g in grads])
        if self.clip > 0:
            grads = [tf.clip_by_norm(g, self.clip) for g in grads]  # per tensor (slim clip_gradient_norms)

        def accumulate():
            for accumulator, grad in zip(self.accumulators, grads):
                accumulator.assign_add(grad)
            return tf.constant(True)

        tf.cond(tf.logical_and(loss_finite, grads_finite), accumulate, lambda: tf.constant(False))
        return {
            "loss": total_loss,
            "accuracy": accuracy,
            "loss_finite": loss_finite,
            "grads_finite": grads_finite,
            "gradient_norms": norms,
        }

    def _micro_step(self, inputs, labels):
        results = self.strategy.run(self._replica_micro_step, args=(inputs, labels))
        # Every replica holds the same all-reduced values.
        return tf.nest.map_structure(lambda v: self.strategy.experimental_local_results(v)[0], results)

    def _apply_update(self):
        grads = [accumulator.read_value() / self.iter_size for accumulator in self.accumulators]
        learning_rate = tf.convert_to_tensor(self.optimizer.learning_rate)
        self.optimizer.apply_gradients(zip(grads, self.variables))
        for accumulator in self.accumulators:
            accumulator.assign(tf.zeros_like(accumulator))
        return {"learning_rate": learning_rate, "update_norms": tf.stack([tf.norm(g) for g in grads])}


def _restore_latest(tracked, directory):
    """Restores the newest readable checkpoint of `directory`, falling back to older ones (a
    truncated or corrupt file is named and passed over). Returns its path, or None if none.

    The data position is restored on its own: a checkpoint saved without it (a run whose pipeline
    could not be saved) resumes the weights and restarts the data, with a warning."""
    state = tf.train.get_checkpoint_state(directory)
    if state is None:
        return None
    core = {name: value for name, value in tracked.items() if name != "iterator"}
    candidates = list(reversed(state.all_model_checkpoint_paths)) or [state.model_checkpoint_path]
    errors = []
    for prefix in candidates:
        try:
            tf.train.Checkpoint(**core).restore(prefix).expect_partial().assert_existing_objects_matched()
        except (tf.errors.OpError, ValueError, AssertionError, IndexError, OSError) as error:
            errors.append(f"{prefix}: {type(error).__name__}: {str(error).splitlines()[0]}")
            log.warning("checkpoint %s is unreadable (%s); trying an older one", prefix, errors[-1])
            continue
        if "iterator" in tracked:
            try:
                tf.train.Checkpoint(iterator=tracked["iterator"]).restore(
                    prefix
                ).expect_partial().assert_existing_objects_matched()
            except AssertionError:
                log.warning("checkpoint %s holds no data position; the data restart from the beginning", prefix)
        return prefix
    raise RuntimeError(f"no readable checkpoint in {directory}:\n" + "\n".join(errors))


class _WorkerInputPosition:
    """One worker's iterator position, saved beside each checkpoint of the step it was saved at
    (`train_dir/input_position/worker<i>/ckpt-<step>`): each worker of a per-worker input reads
    its own share, so no worker's position stands for another's."""

    def __init__(self, iterator, train_dir, worker, keep):
        self.checkpoint = tf.train.Checkpoint(iterator=iterator)
        self.directory = os.path.join(train_dir, INPUT_POSITION_DIR, f"worker{worker}")
        self.keep = keep

    def save(self, step):
        prefix = self.checkpoint.write(os.path.join(self.directory, f"ckpt-{step}"))
        saved = sorted(
            int(name[5:-6])
            for name in os.listdir(self.directory)
            if name.startswith("ckpt-") and name.endswith(".index")
        )
        for old in saved[: -self.keep]:
            for path in glob.glob(os.path.join(self.directory, f"ckpt-{old}.*")):
                os.remove(path)
        return prefix

    def restore(self, step):
        prefix = os.path.join(self.directory, f"ckpt-{step}")
        if not tf.io.gfile.exists(prefix + ".index"):
            log.warning(
                "no input position of this worker at step %d (%s); its data restart from the beginning", step, prefix
            )
            return None
        self.checkpoint.read(prefix).assert_consumed()
        return prefix


def _check_iterator_checkpointable(iterator):
    probe = tempfile.mkdtemp(prefix="iterator_probe_")
    try:
        tf.train.Checkpoint(iterator=iterator).write(os.path.join(probe, "probe"))
    except (tf.errors.OpError, ValueError, TypeError) as error:
        raise ValueError(
            "the training dataset's position cannot be checkpointed "
            f"({type(error).__name__}: {str(error).splitlines()[0]}); use a checkpointable pipeline "
            "(no py_function / from_generator) or set checkpoint_iterator=False, in which case a "
            "resumed run restarts the data from the beginning"
        ) from error
    finally:
        shutil.rmtree(probe, ignore_errors=True)


class _Checkpoints:
    """Checkpoints in train_dir (chief) or in a scratch folder deleted after each save (other
    workers of a multi-worker run, which must take part in every save)."""

    def __init__(self, checkpoint, train_dir, chief, step, keep, task_id):
        self.train_dir, self.chief = train_dir, chief
        self.directory = train_dir if chief else os.path.join(train_dir, f".worker{task_id}_scratch")
        self.manager = tf.train.CheckpointManager(
            checkpoint, self.directory, max_to_keep=keep if chief else 1, step_counter=step
        )

    def save(self, step):
        path = self.manager.save(checkpoint_number=step)
        if not self.chief:
            shutil.rmtree(self.directory, ignore_errors=True)
            return tf.train.latest_checkpoint(self.train_dir)
        return path


def _variables_in_scope(model, strategy):
    variables = model.variables
    if variables and not strategy.extended.variable_created_in_scope(variables[0].value):
        raise ValueError("build the model inside strategy.scope() (the same strategy passed to train())")


def train(model, dataset, config, strategy=None, stage=None, export_model=None, on_update=None):
    """Trains `model` on `dataset` with the release's update rule (module docstring).

    Args:
        model: a Keras model built inside `strategy.scope()`: frames [B, T, S, S, C] (or a dict,
            or precomputed features for the trainable suffix of `split_at_frozen_boundary`) →
            float32 logits [B, C]. Its regularisation losses (`model.losses`) are added once.
        dataset: `tf.data.Dataset` of GLOBAL micro-batches (batch_size × replicas videos):
            (inputs, labels) or (inputs, labels, metadata); metadata (video paths or list indices)
            names the videos of a non-finite batch. It must not run out before training ends.
            Or a function of a `tf.distribute.InputContext` returning this worker's dataset of
            its rows of each global micro-batch (`make_video_dataset(..., input_context=...)`
            with the global batch size): each worker then reads only its share.
        config: `TrainConfig`.
        strategy: from `make_strategy()` (default: the current strategy).
        stage: 1, 2 or 0 to call `set_training_stage(model, stage)` first; None keeps the model's
            trainable flags (e.g. for a split suffix or the frame baseline).
        export_model: the model saved as `.keras` at the end and held by the checkpoints
            (default `model`), e.g. the full model when training a split suffix, so that its
            train_dir loads like any other (stage 2's --checkpoint_path, eval.py).
        on_update: optional callable(step, metrics) after each update and its checkpoint;
            metrics has loss, accuracy (percent) and learning_rate.

    Returns:
        `TrainResult`.

    A restart with the same `train_dir` resumes from the newest readable checkpoint: weights,
    optimiser state, step (so the learning-rate schedule), loss scale and, with
    `checkpoint_iterator`, the data position. With `tf.config.experimental.enable_op_determinism()`
    and fixed seeds the final weights equal an uninterrupted run's.

    Multi-worker runs: if a worker dies, TF's collectives fail on the others (peer health check,
    or `collective_timeout_s` of `make_strategy`); `train` then re-raises with the step of the last
    checkpoint. Restart every worker with the same arguments to resume from it (the behaviour of
    Keras's `BackupAndRestore`).
    """
    strategy = strategy or tf.distribute.get_strategy()
    config = config.for_recipe(1 if stage is None else stage)
    _variables_in_scope(model, strategy)
    if stage is not None:
        set_training_stage(model, stage)
    if not model.trainable_variables:
        raise ValueError(f"model {model.name} has no trainable variables")
    ensure_writable_dir(config.train_dir, "train_dir")
    state = _TrainState(model, dataset, config, strategy, export_model)
    loop = _TrainLoop(state)
    loss, accuracy, durations = loop.run(on_update)
    if state.last_saved != state.step:
        state.save()
    model_path = state.save_model()
    timed = durations[1:]
    return TrainResult(
        step=state.step,
        loss=loss,
        accuracy=accuracy,
        skipped_batches=list(state.skipped),
        checkpoint=state.saved_path,
        model_path=model_path,
        seconds_per_step=float(np.median(timed)) if timed else None,
    )


class _TrainState:
    """What one training run tracks and saves: the optimiser and step functions, this worker's
    iterator (and its replicas' rows of each batch), the checkpoint (model, optimiser, loss scale,
    RNG states, data position) restored from `train_dir` where one is there, the skipped batches,
    and saving (checkpoints, the final model)."""

    def __init__(self, model, dataset, config, strategy, export_model):
        self.model, self.export_model, self.config, self.strategy = model, export_model or model, config, strategy
        self.chief = is_chief(strategy)
        self.dynamic_loss_scale = config.dynamic_loss_scale
        if self.dynamic_loss_scale is None:
            self.dynamic_loss_scale = keras.mixed_precision.global_policy().name == "mixed_float16"
        with strategy.scope():
            self.optimizer = make_optimizer(config)
            self.optimizer.build(model.trainable_variables)
        self.steps = _StepFunctions(model, self.optimizer, strategy, config)
        if self.dynamic_loss_scale:
            self.steps.loss_scale.assign(INITIAL_LOSS_SCALE)
        self.iterator, self.rows, workers, worker = self._input(dataset)
        # Keras's SeedGenerator states (dropout) are variables of the model but not TF trackables:
        # track them explicitly, or a resumed run would redraw the masks of the first steps.
        weights = {id(w) for w in model.weights}
        tracked = dict(
            model=self.export_model,
            optimizer=self.optimizer,
            loss_scale=self.steps.loss_scale,
            finite_in_a_row=self.steps.finite_in_a_row,
            rng_states=[v for v in model.variables if id(v) not in weights],
        )
        self.position = None
        if config.checkpoint_iterator:
            _check_iterator_checkpointable(self.iterator)
            if callable(dataset) and workers > 1:
                self.position = _WorkerInputPosition(
                    self.iterator, config.train_dir, worker, config.keep_checkpoint_max
                )
            else:
                tracked["iterator"] = self.iterator
        restored = _restore_latest(tracked, config.train_dir)
        self.resolver = getattr(strategy, "cluster_resolver", None)
        self.checkpoints = _Checkpoints(
            tf.train.Checkpoint(**tracked),
            config.train_dir,
            self.chief,
            self.optimizer.iterations,
            config.keep_checkpoint_max,
            getattr(self.resolver, "task_id", 0),
        )
        self.skipped_path = os.path.join(config.train_dir, SKIPPED_BATCHES_FILE)
        self.skipped = []
        if restored and os.path.exists(self.skipped_path):
            with open(self.skipped_path, encoding="utf-8") as handle:
                self.skipped = json.load(handle)
        self.step = int(self.optimizer.iterations.numpy())
        self.last_saved, self.saved_path = (self.step, restored) if restored else (None, None)
        if restored:
            log.info("resumed from %s at step %d", restored, self.step)
            if self.position is not None:
                self.position.restore(self.step)

    def _input(self, dataset):
        """(iterator, rows, workers, worker): a dataset function gives this worker's rows of each
        global batch, its replicas' slices in order."""
        workers, worker = _workers(self.strategy)
        rows = {}
        if callable(dataset):
            dataset = dataset(worker_input_context(self.strategy))
            local_replicas = self.strategy.num_replicas_in_sync // workers
            rows = dict(first_replica=worker * local_replicas, replicas=local_replicas)
        return iter(dataset), rows, workers, worker

    def save(self):
        """A checkpoint of the current step (this worker's data position first, before the
        checkpoint pointer moves to the step)."""
        if self.position is not None:
            self.position.save(self.step)
        self.saved_path, self.last_saved = self.checkpoints.save(self.step), self.step

    def save_model(self):
        """The final `.keras` model (chief only; `final_model_path` "" saves none); its path or None."""
        path = self.config.final_model_path
        if path is None:
            path = os.path.join(self.config.train_dir, "model.keras")
        if not (path and self.chief):
            return None
        save_keras_atomic(self.export_model, path)
        return path

    def in_multi_worker_run(self):
        return self.resolver is not None and bool(self.resolver.cluster_spec().as_dict())


def _write_summaries(variables, loss, accuracy, learning_rate, norms, update_norms, loss_scale):
    tf.summary.scalar("loss", loss)
    tf.summary.scalar("accuracy", accuracy)
    tf.summary.scalar("learning_rate", learning_rate)
    tf.summary.scalar("loss_scale", loss_scale)
    # Pre-clip norms of the last micro-batch, and norms of the applied (clipped, averaged) update.
    tf.summary.scalar("gradient_norm/global", float(np.sqrt(np.sum(np.square(norms)))))
    tf.summary.scalar("update_norm/global", float(np.sqrt(np.sum(np.square(update_norms)))))
    for variable, norm, update_norm in zip(variables, norms, update_norms):
        tf.summary.scalar(f"gradient_norm/{variable.path}", float(norm))
        tf.summary.scalar(f"update_norm/{variable.path}", float(update_norm))


class _TrainLoop:
    """The updates of one run over a `_TrainState`: draws micro-batches and runs them (loss-scale
    retries, the nan policy), applies each update, logs, checkpoints and reports progress."""

    def __init__(self, state):
        self.state, self.steps, self.config = state, state.steps, state.config
        self.drawn = 0

    def run(self, on_update=None):
        """Updates until max_number_of_steps; returns (last loss, last accuracy %, seconds per update)."""
        state, config = self.state, self.config
        writer = tf.summary.create_file_writer(config.train_dir) if state.chief else tf.summary.create_noop_writer()
        progress = tqdm(
            total=config.max_number_of_steps,
            initial=state.step,
            unit="step",
            disable=not (config.progress and state.chief),
            desc=os.path.basename(config.train_dir),
        )
        durations, loss, accuracy = [], float("nan"), float("nan")
        try:
            while state.step < config.max_number_of_steps:
                started = time.perf_counter()
                losses, accuracies, norms = self.accumulate(state.step)
                update = self.steps.apply_update()
                state.step = int(state.optimizer.iterations.numpy())
                durations.append(time.perf_counter() - started)
                loss, accuracy = float(np.mean(losses)), 100.0 * float(np.mean(accuracies))
                learning_rate = float(update["learning_rate"])
                progress.update(1)
                progress.set_postfix(loss=f"{loss:.4f}", acc=f"{accuracy:.1f}", lr=f"{learning_rate:.2g}")
                if state.step % config.log_every_n_steps == 0 or state.step == config.max_number_of_steps:
                    with writer.as_default(step=state.step):
                        _write_summaries(
                            self.steps.variables,
                            loss,
                            accuracy,
                            learning_rate,
                            norms,
                            update["update_norms"].numpy(),
                            float(self.steps.loss_scale.numpy()),
                        )
                if state.step % config.save_every_n_steps == 0:
                    state.save()
                if on_update is not None:
                    on_update(state.step, {"loss": loss, "accuracy": accuracy, "learning_rate": learning_rate})
        except (
            tf.errors.UnavailableError,
            tf.errors.DeadlineExceededError,
            tf.errors.CancelledError,
            tf.errors.AbortedError,
        ) as error:
            if not state.in_multi_worker_run():
                raise
            raise RuntimeError(
                f"a worker of the multi-worker run failed at step {state.step} ({type(error).__name__}); "
                f"restart every worker with the same train_dir to resume from the checkpoint of step "
                f"{state.last_saved if state.last_saved is not None else 0} "
                f"({state.saved_path or 'none yet: from scratch'})"
            ) from error
        finally:
            progress.close()
            writer.flush()
        return loss, accuracy, durations

    def _next(self):
        try:
            element = next(self.state.iterator)
        except StopIteration:
            raise ValueError(
                f"the training dataset ended after {self.drawn} micro-batches; it must "
                "repeat (dataset.repeat()) until max_number_of_steps"
            ) from None
        self.drawn += 1
        return _unpack(element)

    def _run(self, inputs, labels):
        """One micro-batch; a float16 overflow (finite loss, non-finite scaled gradient) is retried
        at half the loss scale, so no data is dropped for it."""
        while True:
            out = self.steps.micro_step(*_per_replica(self.state.strategy, inputs, labels, **self.state.rows))
            loss_finite, grads_finite = bool(out["loss_finite"]), bool(out["grads_finite"])
            scale = float(self.steps.loss_scale.numpy())
            if loss_finite and grads_finite:
                if self.state.dynamic_loss_scale:
                    self.steps.finite_in_a_row.assign_add(1)
                    if int(self.steps.finite_in_a_row.numpy()) >= LOSS_SCALE_GROWTH_INTERVAL:
                        self.steps.loss_scale.assign(scale * 2.0)
                        self.steps.finite_in_a_row.assign(0)
                return out
            if self.state.dynamic_loss_scale and loss_finite and scale > 1.0:
                self.steps.loss_scale.assign(scale / 2.0)
                self.steps.finite_in_a_row.assign(0)
                continue
            return out

    def accumulate(self, step):
        """Runs micro-batches until `iter_size` finite ones are accumulated."""
        losses, accuracies, consecutive_skips, good = [], [], 0, 0
        while good < self.config.iter_size:
            inputs, labels, metadata = self._next()
            out = self._run(inputs, labels)
            if bool(out["loss_finite"]) and bool(out["grads_finite"]):
                good += 1
                consecutive_skips = 0
                losses.append(float(out["loss"]))
                accuracies.append(float(out["accuracy"]))
                norms = out["gradient_norms"].numpy()
                continue
            what = "loss" if not bool(out["loss_finite"]) else "gradient"
            names = _video_names(metadata)
            videos = (
                ", ".join(names)
                if names is not None
                else ("unknown (build the dataset with return_metadata=True to name them)")
            )
            message = (
                f"non-finite {what} (loss {float(out['loss'])}) at step {step + 1}, micro-batch "
                f"{good + 1} of {self.config.iter_size}; videos of the batch: {videos}"
            )
            if self.config.nan_policy == "raise":
                raise NonFiniteLossError(message)
            consecutive_skips += 1
            self.state.skipped.append({"step": step + 1, "what": what, "videos": names})
            log.warning("skipped: %s", message)
            if self.state.chief:
                write_json(self.state.skipped_path, self.state.skipped)
            if consecutive_skips >= self.config.max_consecutive_skips:
                raise NonFiniteLossError(
                    f"{consecutive_skips} non-finite micro-batches in a row, the model has diverged; last: {message}"
                )
        return losses, accuracies, norms
