"""The training loop: the release's update rule against hand-computed gradients, stages, replicas,
checkpoints and resumption, non-finite losses (release §2.3–§2.5, §8 row 11)."""

import json
import logging
import os
import pathlib
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from actionvlad_tf.models import build_actionvlad
from actionvlad_tf.training import (
    NonFiniteLossError,
    TrainConfig,
    load_model_weights,
    make_optimizer,
    make_strategy,
    recipe_defaults,
    train,
    update_shape,
)

REPO = pathlib.Path(__file__).resolve().parents[1]


def _linear_model(strategy, weight_decay, kernel, bias):
    with strategy.scope():
        inputs = keras.Input((kernel.shape[0],))
        logits = keras.layers.Dense(kernel.shape[1], kernel_regularizer=keras.regularizers.L2(weight_decay / 2))(inputs)
        model = keras.Model(inputs, logits)
    model.set_weights([kernel, bias])
    return model


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _hand_gradients(x, y, kernel, bias, weight_decay):
    """Mean softmax-CE gradient of a linear model, plus slim's wd·Σw²/2 on the kernel (§1.6)."""
    delta = (_softmax(x @ kernel + bias) - np.eye(kernel.shape[1])[y]) / len(y)
    return [x.T @ delta + weight_decay * kernel, delta.sum(axis=0)]


def _clip(g, c):
    return g * c / max(np.linalg.norm(g), c)


def _sgd_config(tmp_path, **kwargs):
    defaults = dict(
        train_dir=str(tmp_path / "train"),
        max_number_of_steps=1,
        optimizer="sgd",
        learning_rate=1.0,
        learning_rate_decay_type="fixed",
        progress=False,
        final_model_path="",
    )
    return TrainConfig(**{**defaults, **kwargs})


def test_recipe_defaults_and_videos_per_update():
    assert recipe_defaults(1)["learning_rate"] == 0.01 and recipe_defaults(1)["max_number_of_steps"] == 10000
    assert recipe_defaults(2)["learning_rate"] == 1e-4 and recipe_defaults(2)["max_number_of_steps"] == 8000
    assert recipe_defaults(2)["opt_epsilon"] == 1e-4 and recipe_defaults(2)["clip_gradients"] == 5.0
    assert recipe_defaults(None, frame_baseline=True)["optimizer"] == "momentum"
    # the release's global numbers (§2.5): stage 1 16 per update clipped per 8, stage 2 per 16
    assert [
        (recipe_defaults(s)["videos_per_update"], recipe_defaults(s)["videos_per_micro_batch"]) for s in (1, 2)
    ] == [(16, 8), (16, 16)]
    stage1 = [update_shape(16, 8, n) for n in (1, 2, 4, 8)]
    assert [(s.per_replica_batch, s.iter_size) for s in stage1] == [(8, 2), (4, 2), (2, 2), (1, 2)]
    assert [(s.per_replica_batch, s.iter_size) for s in (update_shape(16, 16, n) for n in (1, 2, 4))] == [
        (16, 1),
        (8, 1),
        (4, 1),
    ]
    assert stage1[1].describe() == (
        "2 replica(s) × 4 videos = micro-batch of 8 (clipped as one) × iter_size 2 = 16 videos per update"
    )
    with pytest.raises(
        ValueError,
        match=r"micro-batch of 8 videos .* cannot be split over 3 replicas: run on a "
        r"replica count among \[1, 2, 4, 8\], no micro-batch dividing 16",
    ):
        update_shape(16, 8, 3)
    with pytest.raises(ValueError, match=r"over 16 replicas: .* one of \[16\]"):
        update_shape(16, 8, 16)
    with pytest.raises(ValueError, match="16 is not a multiple of videos_per_micro_batch 6"):
        update_shape(16, 6, 1)
    with pytest.raises(ValueError, match="nan_policy"):
        TrainConfig(train_dir="x", max_number_of_steps=1, nan_policy="ignore")


def test_learning_rate_is_staircase_over_updates():
    config = TrainConfig(
        train_dir="x", max_number_of_steps=1, learning_rate=0.01, num_steps_per_decay=3, learning_rate_decay_factor=0.1
    )
    optimizer = make_optimizer(config)
    assert isinstance(optimizer, keras.optimizers.Adam) and optimizer.epsilon == 1e-4
    rates = []
    for step in range(7):
        optimizer.iterations.assign(step)
        rates.append(float(optimizer.learning_rate))
    np.testing.assert_allclose(rates, [0.01] * 3 + [0.001] * 3 + [0.0001], rtol=1e-6)


def test_update_is_mean_of_per_micro_batch_clipped_gradients(tmp_path):
    """One update over two micro-batches against numpy: the second micro-batch's kernel gradient
    is clipped, the first's is not, and clip-then-mean differs from mean-then-clip."""
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(3, 2)).astype(np.float32)
    bias = np.array([0.1, -0.2], np.float32)
    x = np.concatenate([rng.normal(size=(2, 3)) * 0.1, rng.normal(size=(2, 3)) * 20]).astype(np.float32)
    y = np.array([0, 1, 1, 0])
    wd, clip = 0.05, 1.0
    strategy = make_strategy()
    model = _linear_model(strategy, wd, kernel, bias)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(2).repeat()
    result = train(model, dataset, _sgd_config(tmp_path, iter_size=2, clip_gradients=clip), strategy=strategy)

    micro = [_hand_gradients(x[i : i + 2], y[i : i + 2], kernel, bias, wd) for i in (0, 2)]
    norms = [[np.linalg.norm(g) for g in grads] for grads in micro]
    assert max(norms[0]) < clip < norms[1][0]  # only the second micro-batch's kernel gradient is clipped
    clip_then_mean = [(_clip(a, clip) + _clip(b, clip)) / 2 for a, b in zip(*micro)]
    mean_then_clip = [_clip((a + b) / 2, clip) for a, b in zip(*micro)]
    assert np.abs(clip_then_mean[0] - mean_then_clip[0]).max() > 0.05
    new_kernel, new_bias = model.get_weights()
    np.testing.assert_allclose(new_kernel, kernel - clip_then_mean[0], atol=1e-5)
    np.testing.assert_allclose(new_bias, bias - clip_then_mean[1], atol=1e-5)
    assert result.step == 1
    ce = -np.log(_softmax(x[2:] @ kernel + bias)[np.arange(2), y[2:]]).mean()
    assert result.loss == pytest.approx(
        np.mean([-np.log(_softmax(x[:2] @ kernel + bias)[np.arange(2), y[:2]]).mean(), ce])
        + wd / 2 * np.sum(kernel**2),
        rel=1e-4,
    )


def test_no_clipping_when_clip_gradients_is_zero(tmp_path):
    rng = np.random.default_rng(1)
    kernel, bias = rng.normal(size=(3, 2)).astype(np.float32), np.zeros(2, np.float32)
    x, y = (rng.normal(size=(4, 3)) * 20).astype(np.float32), np.array([0, 1, 1, 0])
    strategy = make_strategy()
    model = _linear_model(strategy, 0.0, kernel, bias)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(4).repeat()
    train(model, dataset, _sgd_config(tmp_path, clip_gradients=0.0), strategy=strategy)
    expected = _hand_gradients(x, y, kernel, bias, 0.0)
    np.testing.assert_allclose(model.get_weights()[0], kernel - expected[0], atol=1e-5)


def _tiny_actionvlad(strategy, **kwargs):
    keras.utils.set_random_seed(0)
    centers = np.random.default_rng(0).normal(size=(4, 512)).astype(np.float32) * 0.05
    with strategy.scope():
        return build_actionvlad(
            3, frames_per_video=3, image_size=32, num_clusters=4, netvlad_alpha=10.0, initial_centers=centers, **kwargs
        )


def _video_dataset(num_videos=4, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    videos = rng.uniform(-100, 100, size=(num_videos, 3, 32, 32, 3)).astype(np.float32)
    labels = np.arange(num_videos) % 3
    return tf.data.Dataset.from_tensor_slices((videos, labels)).batch(batch).repeat()


@pytest.mark.parametrize(
    "stage, trained",
    [
        (1, {"classifier"}),
        (2, {"block5_conv1", "block5_conv2", "block5_conv3", "pooling", "classifier"}),
    ],
)
def test_stage_switching_changes_only_that_stages_variables(tmp_path, stage, trained):
    strategy = make_strategy()
    model = _tiny_actionvlad(strategy)
    before = {w.path: w.numpy().copy() for w in model.weights}
    config = TrainConfig(
        train_dir=str(tmp_path / "train"),
        max_number_of_steps=1,
        learning_rate=0.01,
        progress=False,
        final_model_path="",
    )
    train(model, _video_dataset(), config, strategy=strategy, stage=stage)
    changed = {w.path.split("/")[0] for w in model.weights if not np.array_equal(before[w.path], w.numpy())}
    assert changed == trained


def test_resume_continues_step_optimizer_and_schedule(tmp_path):
    strategy = make_strategy()
    model = _tiny_actionvlad(strategy)
    config = TrainConfig(
        train_dir=str(tmp_path / "train"),
        max_number_of_steps=2,
        save_every_n_steps=1,
        learning_rate=0.01,
        num_steps_per_decay=2,
        progress=False,
    )
    first = train(model, _video_dataset(), config, strategy=strategy, stage=1)
    assert first.step == 2 and pathlib.Path(first.model_path).is_file()
    config.max_number_of_steps = 3
    model = _tiny_actionvlad(strategy)
    rates = []
    resumed = train(
        model,
        _video_dataset(),
        config,
        strategy=strategy,
        stage=1,
        on_update=lambda step, metrics: rates.append((step, metrics["learning_rate"])),
    )
    assert resumed.step == 3 and rates == [(3, pytest.approx(0.001))]  # step 2 → decayed lr
    assert not any(name.startswith(".") for name in os.listdir(tmp_path / "train"))  # no temp files left


def test_truncated_latest_checkpoint_is_passed_over(tmp_path, caplog):
    strategy = make_strategy()
    model = _tiny_actionvlad(strategy)
    config = TrainConfig(
        train_dir=str(tmp_path / "train"),
        max_number_of_steps=4,
        save_every_n_steps=2,
        progress=False,
        final_model_path="",
    )
    train(model, _video_dataset(), config, strategy=strategy, stage=1)
    (data_file,) = (tmp_path / "train").glob("ckpt-4.data-*")
    data_file.write_bytes(data_file.read_bytes()[:100])
    config.max_number_of_steps = 5
    steps = []
    with caplog.at_level(logging.WARNING):
        result = train(
            _tiny_actionvlad(strategy),
            _video_dataset(),
            config,
            strategy=strategy,
            stage=1,
            on_update=lambda step, metrics: steps.append(step),
        )
    assert "ckpt-4" in caplog.text and "unreadable" in caplog.text
    assert steps == [3, 4, 5] and result.step == 5


def _nan_dataset(bad_index):
    videos = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    videos[bad_index] = np.nan
    names = [f"class/video_{i}" for i in range(4)]
    return tf.data.Dataset.from_tensor_slices((videos, np.array([0, 1, 0, 1]), names)).batch(2).repeat()


def test_non_finite_loss_raises_naming_step_and_videos(tmp_path):
    strategy = make_strategy()
    model = _linear_model(strategy, 0.0, np.ones((3, 2), np.float32), np.zeros(2, np.float32))
    with pytest.raises(NonFiniteLossError, match=r"step 2.*class/video_2, class/video_3"):
        train(model, _nan_dataset(3), _sgd_config(tmp_path, max_number_of_steps=3), strategy=strategy)


def test_non_finite_batches_are_skipped_counted_and_named(tmp_path):
    strategy = make_strategy()
    kernel, bias = np.ones((3, 2), np.float32) * 0.1, np.zeros(2, np.float32)
    model = _linear_model(strategy, 0.0, kernel, bias)
    config = _sgd_config(tmp_path, max_number_of_steps=2, nan_policy="skip", clip_gradients=0.0)
    result = train(model, _nan_dataset(1), config, strategy=strategy)
    assert result.step == 2
    bad = ["class/video_0", "class/video_1"]
    assert result.skipped_batches == [{"step": step, "what": "loss", "videos": bad} for step in (1, 2)]
    written = json.loads((tmp_path / "train" / "skipped_batches.json").read_text())
    assert written == result.skipped_batches
    # Both updates used the good micro-batch (videos 2, 3); the NaN one was never applied.
    x = _nan_dataset(1).take(2).as_numpy_iterator()
    next(x)
    good_x, good_y, _ = next(x)
    grads = _hand_gradients(good_x, good_y, kernel, bias, 0.0)
    kernel_1 = kernel - grads[0]
    grads = _hand_gradients(good_x, good_y, kernel_1, bias - grads[1], 0.0)
    np.testing.assert_allclose(model.get_weights()[0], kernel_1 - grads[0], atol=1e-5)


def test_consecutive_non_finite_batches_stop_training(tmp_path):
    strategy = make_strategy()
    model = _linear_model(strategy, 0.0, np.ones((3, 2), np.float32), np.zeros(2, np.float32))
    videos = np.full((2, 3), np.nan, np.float32)
    dataset = tf.data.Dataset.from_tensor_slices((videos, np.array([0, 1]))).batch(2).repeat()
    config = _sgd_config(tmp_path, nan_policy="skip", max_consecutive_skips=3)
    with pytest.raises(NonFiniteLossError, match="3 non-finite micro-batches in a row.*unknown"):
        train(model, dataset, config, strategy=strategy)


def test_dataset_that_ends_is_an_error(tmp_path):
    strategy = make_strategy()
    model = _linear_model(strategy, 0.0, np.ones((3, 2), np.float32), np.zeros(2, np.float32))
    dataset = tf.data.Dataset.from_tensor_slices((np.ones((2, 3), np.float32), np.array([0, 1]))).batch(2)
    with pytest.raises(ValueError, match="ended after 1 micro-batches"):
        train(model, dataset, _sgd_config(tmp_path, max_number_of_steps=2), strategy=strategy)


def test_model_outside_the_strategy_scope_is_an_error(tmp_path):
    model = _linear_model(tf.distribute.get_strategy(), 0.0, np.ones((3, 2), np.float32), np.zeros(2, np.float32))
    dataset = tf.data.Dataset.from_tensor_slices((np.ones((2, 3), np.float32), np.array([0, 1]))).batch(2).repeat()
    with pytest.raises(ValueError, match="strategy.scope"):
        train(model, dataset, _sgd_config(tmp_path), strategy=make_strategy())


def test_uncheckpointable_dataset_is_reported_before_training(tmp_path):
    strategy = make_strategy()
    model = _linear_model(strategy, 0.0, np.ones((3, 2), np.float32), np.zeros(2, np.float32))

    def generate():
        while True:
            yield np.ones(3, np.float32), 1

    dataset = tf.data.Dataset.from_generator(
        generate, output_signature=(tf.TensorSpec((3,), tf.float32), tf.TensorSpec((), tf.int32))
    ).batch(2)
    with pytest.raises(ValueError, match="checkpoint_iterator=False"):
        train(model, dataset, _sgd_config(tmp_path), strategy=strategy)
    result = train(model, dataset, _sgd_config(tmp_path, checkpoint_iterator=False), strategy=strategy)
    assert result.step == 1


def test_float16_overflow_is_retried_at_a_lower_loss_scale(tmp_path):
    """Under mixed_float16 a scaled gradient that overflows float16 is recomputed at half the scale:
    the update still equals the float32 one (to float16 precision) and the scale went down."""
    rng = np.random.default_rng(2)
    kernel, bias = rng.normal(size=(3, 2)).astype(np.float32), np.zeros(2, np.float32)
    x, y = (rng.normal(size=(4, 3)) * 30).astype(np.float32), np.array([0, 1, 1, 0])
    strategy = make_strategy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = _linear_model(strategy, 0.0, kernel, bias)
        dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(4).repeat()
        config = _sgd_config(tmp_path, clip_gradients=0.0, learning_rate=0.01)
        train(model, dataset, config, strategy=strategy)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    scale = tf.train.load_checkpoint(str(tmp_path / "train" / "ckpt-1")).get_tensor(
        "loss_scale/.ATTRIBUTES/VARIABLE_VALUE"
    )
    assert scale < 2.0**15
    expected = kernel - 0.01 * _hand_gradients(x, y, kernel, bias, 0.0)[0]
    np.testing.assert_allclose(model.get_weights()[0], expected, rtol=2e-3, atol=2e-3)


def test_load_model_weights_from_keras_file_and_train_dir(tmp_path):
    strategy = make_strategy()
    model = _tiny_actionvlad(strategy)
    config = TrainConfig(train_dir=str(tmp_path / "train"), max_number_of_steps=1, progress=False)
    result = train(model, _video_dataset(), config, strategy=strategy, stage=1)
    for source in (result.model_path, str(tmp_path / "train")):
        keras.utils.set_random_seed(1)
        other = build_actionvlad(3, frames_per_video=6, image_size=32, num_clusters=4)  # another T
        load_model_weights(other, source)
        for a, b in zip(model.weights, other.weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_model_weights(other, str(tmp_path))
    with pytest.raises(ValueError, match="does not match"):
        load_model_weights(build_actionvlad(3, frames_per_video=3, image_size=32, num_clusters=5), result.model_path)


def _run_script(tmp_path, source, *args, env=None):
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(source))
    environment = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.run(
        [sys.executable, str(script), *map(str, args)],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )


TWO_REPLICAS = """
    import sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from actionvlad_tf.models import build_actionvlad
    from actionvlad_tf.training import TrainConfig, make_strategy, train

    rng = np.random.default_rng(0)
    videos = rng.uniform(-100, 100, size=(8, 3, 32, 32, 3)).astype(np.float32)
    labels = np.arange(8) % 3
    centers = rng.normal(size=(4, 512)) * 0.05
    results = []
    for devices in (["/cpu:0"], ["/cpu:0", "/cpu:1"]):
        strategy = make_strategy(devices)
        keras.utils.set_random_seed(0)
        with strategy.scope():
            model = build_actionvlad(3, frames_per_video=3, image_size=32, num_clusters=4, netvlad_alpha=10.0,
                                     weight_decay=0.5, initial_centers=centers)
        dataset = tf.data.Dataset.from_tensor_slices((videos, labels)).batch(4).repeat()
        config = TrainConfig(train_dir=sys.argv[1] + str(len(devices)), max_number_of_steps=1, iter_size=2,
                             optimizer="sgd", learning_rate=0.1, clip_gradients=5.0, progress=False,
                             final_model_path="")
        before = [w.numpy().copy() for w in model.trainable_weights]
        result = train(model, dataset, config, strategy=strategy, stage=2)
        after = [w.numpy() for w in model.trainable_weights]
        results.append(([a - b for a, b in zip(after, before)], result.loss, strategy.num_replicas_in_sync))
    (one, loss1, n1), (two, loss2, n2) = results
    assert (n1, n2) == (1, 2)
    for w, a, b in zip(model.trainable_weights, one, two):
        print(w.path, np.abs(a).max(), np.abs(a - b).max())
    worst = max(float(np.abs(a - b).max() / (np.abs(a).max() + 1e-12)) for a, b in zip(one, two))
    print("relative difference", worst, "loss", loss1, loss2)
    assert all(np.abs(a).max() > 0 for a in one)
    assert worst < 1e-4, worst
    assert abs(loss1 - loss2) < 1e-4 * abs(loss1)
"""


def test_two_replicas_give_the_one_device_update(tmp_path):
    """MirroredStrategy over two logical CPUs (fresh process: devices are fixed at TF start) gives
    the same update as one device on the same global batch; weight decay counted once."""
    run = _run_script(tmp_path, TWO_REPLICAS, tmp_path / "train")
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    assert "relative difference" in run.stdout


RESUMABLE = """
    import os, signal, sys
    import numpy as np
    import tensorflow as tf
    import keras
    from actionvlad_tf.training import TrainConfig, make_strategy, train

    tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(0)
    train_dir, kill_at, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    strategy = make_strategy()
    with strategy.scope():
        inputs = keras.Input((6,))
        hidden = keras.layers.Dense(8, activation="relu", kernel_regularizer=keras.regularizers.L2(1e-3))(inputs)
        logits = keras.layers.Dense(3)(keras.layers.Dropout(0.5)(hidden))
        model = keras.Model(inputs, logits)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 6)).astype(np.float32), rng.integers(0, 3, 40)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(40, seed=1).repeat().batch(4)
    config = TrainConfig(train_dir=train_dir, max_number_of_steps=8, iter_size=2, save_every_n_steps=2,
                         learning_rate=0.01, num_steps_per_decay=3, progress=False)

    steps = []

    def die(step, metrics):
        steps.append(step)
        if step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    result = train(model, dataset, config, strategy=strategy, on_update=die)
    np.savez(out, *model.get_weights(), step=result.step)
    print("steps run", steps)
"""


def test_killed_and_resumed_run_equals_uninterrupted_run(tmp_path):
    """SIGKILL after the checkpoint of step 4 (at step 5), restart: with op determinism and fixed
    seeds the final weights equal an uninterrupted run's (dropout state, data position, Adam state
    and the decayed learning rate all resumed)."""
    straight = _run_script(tmp_path, RESUMABLE, tmp_path / "straight", 0, tmp_path / "straight.npz")
    assert straight.returncode == 0, straight.stderr[-3000:]
    killed = _run_script(tmp_path, RESUMABLE, tmp_path / "killed", 5, tmp_path / "killed.npz")
    assert killed.returncode == -9 and not (tmp_path / "killed.npz").exists()
    assert tf.train.latest_checkpoint(str(tmp_path / "killed")).endswith("ckpt-4")
    resumed = _run_script(tmp_path, RESUMABLE, tmp_path / "killed", 0, tmp_path / "killed.npz")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, b = np.load(tmp_path / "straight.npz"), np.load(tmp_path / "killed.npz")
    assert int(a["step"]) == int(b["step"]) == 8
    for key in a.files:
        np.testing.assert_array_equal(a[key], b[key])
    assert "steps run [5, 6, 7, 8]" in resumed.stdout  # it resumed, it did not start over


KILLABLE_TRAINING = """
    steps = []

    def on_update(step, metrics):
        steps.append(step)
        if step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    train(model, dataset, config, strategy=strategy, on_update=on_update)
    np.savez(out, *model.get_weights())
    print("steps run", steps, "replicas", strategy.num_replicas_in_sync, flush=True)
"""

MULTI_WORKER = (
    """
    import json, os, signal, sys
    train_dir, index, ports = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(",")
    kill_at, out = int(sys.argv[4]), sys.argv[5]
    os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": [f"localhost:{p}" for p in ports]},
                                          "task": {"type": "worker", "index": index}})
    from actionvlad_tf.training import TrainConfig, make_strategy, train
    strategy = make_strategy(collective_timeout_s=20)  # first: MultiWorkerMirrored precedes other TF work
    import keras
    import numpy as np
    import tensorflow as tf
    keras.utils.set_random_seed(0)
    with strategy.scope():
        inputs = keras.Input((6,))
        model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Dense(8, activation="relu")(inputs)))
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 6)).astype(np.float32), rng.integers(0, 3, 40)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(40, seed=1).repeat().batch(4)
    config = TrainConfig(train_dir=train_dir, max_number_of_steps=6, save_every_n_steps=2, learning_rate=0.01,
                         progress=False)
"""
    + KILLABLE_TRAINING
)


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _workers(tmp_path, kill_at):
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(MULTI_WORKER))
    ports = f"{_free_port()},{_free_port()}"
    environment = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(script),
                str(tmp_path / "train"),
                str(i),
                ports,
                str(kill_at[i]),
                str(tmp_path / f"worker{i}.npz"),
            ],
            cwd=REPO,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    return [(p.returncode, *output) for p, output in zip(procs, outputs)]


@pytest.mark.slow
def test_multi_worker_run_fails_fast_when_a_worker_dies_and_resumes_on_restart(tmp_path):
    """Two MultiWorkerMirrored workers on loopback: worker 1 is SIGKILLed at step 3 (after the
    checkpoint of step 2); worker 0 stops with an error naming that checkpoint instead of hanging;
    restarting both resumes at step 3 and both end with the same weights."""
    (rc0, out0, err0), (rc1, _, _) = _workers(tmp_path, kill_at=(0, 3))
    assert rc1 == -9
    assert rc0 == 1 and "restart every worker with the same train_dir" in err0 and "ckpt-2" in err0
    (rc0, out0, err0), (rc1, out1, err1) = _workers(tmp_path, kill_at=(0, 0))
    assert rc0 == rc1 == 0, err0[-2000:] + err1[-2000:]
    assert "steps run [3, 4, 5, 6] replicas 2" in out0 and "steps run [3, 4, 5, 6] replicas 2" in out1
    first, second = np.load(tmp_path / "worker0.npz"), np.load(tmp_path / "worker1.npz")
    for key in first.files:
        np.testing.assert_array_equal(first[key], second[key])
    assert not any(name.startswith(".worker") for name in os.listdir(tmp_path / "train"))


PER_WORKER_INPUT = (
    """
    import json, os, signal, sys
    train_dir, index, ports, kill_at, out, list_file, root = sys.argv[1:8]
    index, kill_at = int(index), int(kill_at)
    if ports != "-":
        os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": [f"localhost:{p}" for p in ports.split(",")]},
                                              "task": {"type": "worker", "index": index}})
    from actionvlad_tf.training import TrainConfig, make_strategy, train, worker_input_context
    strategy = make_strategy(collective_timeout_s=20)
    import keras
    import numpy as np
    import tensorflow as tf
    from actionvlad_tf.data.video_input import make_video_dataset
    tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(0)
    with strategy.scope():
        inputs = keras.Input((2, 16, 16, 3))
        features = keras.layers.Conv3D(4, (1, 3, 3), activation="relu")(inputs)
        model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling3D()(features)))

    def dataset(context):  # global batch 4: 4 videos on one worker, 2 on each of two
        return make_video_dataset(list_file, root, frames_per_video=2, training=True, batch_size=4,
                                  shuffle_seed=5, image_size=16, resize_shape=(20, 24),
                                  return_metadata=True, input_context=context)

    config = TrainConfig(train_dir=train_dir, max_number_of_steps=5, save_every_n_steps=2,
                         learning_rate=0.01, progress=False, final_model_path="")
"""
    + KILLABLE_TRAINING
    + """
    # The videos of each step this worker's pipeline reads (a fresh copy of it: it is deterministic).
    rows = [m["index"].numpy().tolist() for _, _, m in dataset(worker_input_context(strategy)).take(5)]
    print("rows", json.dumps(rows), flush=True)
"""
)


def _per_worker_run(tmp_path, name, workers, kill_at=(0, 0)):
    from frame_folders import write_list, write_video

    root = tmp_path / "frames"
    if not root.exists():
        for i in range(10):
            write_video(root, f"v{i}", 6, flow=False, textured=True, seed=i)
        write_list(tmp_path / "list.txt", [f"v{i} 6 {i % 3}" for i in range(10)])
    script = tmp_path / "per_worker.py"
    script.write_text(textwrap.dedent(PER_WORKER_INPUT))
    ports = ",".join(str(_free_port()) for _ in range(workers)) if workers > 1 else "-"
    environment = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(script),
                str(tmp_path / name),
                str(i),
                ports,
                str(kill_at[i]),
                str(tmp_path / f"{name}{i}.npz"),
                str(tmp_path / "list.txt"),
                str(root),
            ],
            cwd=REPO,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(workers)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    return [(p.returncode, *output) for p, output in zip(procs, outputs)]


def _rows(stdout):
    return json.loads(stdout.split("rows ", 1)[1])


@pytest.mark.slow
def test_per_worker_input_equals_one_worker_and_resumes_exactly(tmp_path):
    """Two workers on loopback, each reading only its rows of every global batch (2 of 4 videos),
    train to the weights of one worker reading all 4; a pair killed at step 3 (after the checkpoint
    of step 2) and restarted resumes each worker's own input position and ends with exactly the
    weights of the uninterrupted pair."""
    ((rc, one_out, one_err),) = _per_worker_run(tmp_path, "one", 1)
    assert rc == 0, one_err[-3000:]
    pair = _per_worker_run(tmp_path, "pair", 2)
    assert all(rc == 0 for rc, _, _ in pair), pair[0][2][-2000:] + pair[1][2][-2000:]
    whole, halves = _rows(one_out), [_rows(out) for _, out, _ in pair]
    assert all(len(rows) == 2 for half in halves for rows in half)
    assert [a + b for a, b in zip(*halves)] == whole  # each worker decodes its half of each step
    print("videos per step: one worker", whole, "worker 0", halves[0], "worker 1", halves[1])
    one, two = np.load(tmp_path / "one0.npz"), np.load(tmp_path / "pair0.npz")
    for key in one.files:
        np.testing.assert_allclose(two[key], one[key], rtol=1e-5, atol=1e-6)
    print("largest |pair - one|:", max(float(np.abs(two[k] - one[k]).max()) for k in one.files))

    (rc0, _, err0), (rc1, _, _) = _per_worker_run(tmp_path, "killed", 2, kill_at=(0, 3))
    assert rc1 == -9 and rc0 == 1 and "ckpt-2" in err0, err0[-2000:]
    assert sorted(os.listdir(tmp_path / "killed" / "input_position")) == ["worker0", "worker1"]
    resumed = _per_worker_run(tmp_path, "killed", 2)
    assert all(rc == 0 for rc, _, _ in resumed), resumed[0][2][-2000:] + resumed[1][2][-2000:]
    assert all("steps run [3, 4, 5] replicas 2" in out for _, out, _ in resumed)
    for worker in (0, 1):
        straight, again = np.load(tmp_path / f"pair{worker}.npz"), np.load(tmp_path / f"killed{worker}.npz")
        for key in straight.files:
            np.testing.assert_array_equal(again[key], straight[key])


def test_checkpoint_without_data_position_resumes_weights_and_restarts_data(tmp_path, caplog):
    strategy = make_strategy()
    model = _linear_model(strategy, 0.0, np.ones((3, 2), np.float32), np.zeros(2, np.float32))
    dataset = (
        tf.data.Dataset.from_tensor_slices((np.ones((4, 3), np.float32), np.array([0, 1, 0, 1]))).batch(2).repeat()
    )
    train(model, dataset, _sgd_config(tmp_path, checkpoint_iterator=False), strategy=strategy)
    with caplog.at_level(logging.WARNING):
        result = train(model, dataset, _sgd_config(tmp_path, max_number_of_steps=2), strategy=strategy)
    assert result.step == 2 and "holds no data position" in caplog.text and "unreadable" not in caplog.text
