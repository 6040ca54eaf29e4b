"""Packed shards are what training and evaluation read with --packed_files: a model trained from
the shards `build_tfrecords.py` writes equals one trained from the frame folders, step for step,
and evaluation gives the same logits."""

import h5py
import keras
import numpy as np
from test_train_cli import _write_dataset

from actionvlad_tf.data.datasets import dataset_spec
from actionvlad_tf.data.lists import read_list
from actionvlad_tf.evaluation.run import evaluate_experiment
from actionvlad_tf.prep.shards import write_packed_shards
from actionvlad_tf.specs import InputSpec, ModelSpec
from actionvlad_tf.training import TrainConfig
from actionvlad_tf.training.run import TrainOptions, train_experiment


def _weights(path):
    return [np.asarray(w) for w in keras.saving.load_model(path, compile=False).weights]


def test_training_from_shards_equals_training_from_folders(tmp_path):
    data = tmp_path / "data"
    _write_dataset(data)
    for split in ("train", "test"):
        entries = read_list(str(data / "lists" / f"{split}_split1.txt"), 3)
        write_packed_shards(
            entries, str(data / "packed" / f"{split}_split1"), str(data / "frames"), modality="rgb", progress=False
        )
    dataset = dataset_spec("demo", 3)
    model = ModelSpec(3, pooling="avg", image_size=32, frames_per_video=2)
    folders = InputSpec(
        frames_per_video=2,
        batch_size=2,
        image_size=32,
        resize_shape=(40, 48),
        frames_root=str(data / "frames"),
        list_dir=str(data / "lists"),
    )
    packed = InputSpec(
        frames_per_video=2,
        batch_size=2,
        image_size=32,
        resize_shape=(40, 48),
        packed_files=str(data / "packed" / "{split}_split{split_id}-*.tfrecord"),
    )
    models = {}
    for name, inputs in (("folders", folders), ("packed", packed)):
        options = TrainOptions(
            TrainConfig(str(tmp_path / name), max_number_of_steps=3, save_every_n_steps=3),
            videos_per_update=2,
            videos_per_micro_batch=2,
            seed=5,
            mixed_precision="float32",
        )
        result, _ = train_experiment(dataset, model, inputs, options)
        assert result.step == 3
        models[name] = _weights(result.model_path)
    for a, b in zip(models["folders"], models["packed"]):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)

    logits = {}
    for name, inputs in (("folders", folders), ("packed", packed)):
        results = evaluate_experiment(
            dataset,
            model,
            inputs,
            str(tmp_path / "folders" / "model.keras"),
            str(tmp_path / f"eval_{name}"),
            mixed_precision="float32",
        )
        assert results["num_videos"] == 6
        with h5py.File(results["logits_file"], "r") as h5:
            logits[name] = h5["stream0/logits"][()]
    np.testing.assert_array_equal(logits["folders"], logits["packed"])
