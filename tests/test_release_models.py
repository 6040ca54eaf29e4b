"""A released checkpoint by name → an evaluated Keras model, offline: the test writes a checkpoint
with the release's names and shapes (HMDB51: 51 classes), "downloads" it from a file:// address
with its checksum recorded and checked, converts it, and evaluates it on a tiny test split."""

import dataclasses

import h5py
import numpy as np
import pytest
import tensorflow as tf
from test_release_ckpt import _release_values, _save_release_checkpoint
from test_train_cli import _write_dataset

from actionvlad_tf.convert import release_models
from actionvlad_tf.specs import InputSpec


def test_the_table_lists_get_models_checkpoints():
    names = set(release_models.RELEASE_MODELS)
    assert {f"{d}_{m}_split{s}" for d in ("hmdb51", "ucf101") for m in ("rgb", "flow") for s in (1, 2, 3)} <= names
    assert {f"hmdb51_twostream_flow_split{s}" for s in (1, 2, 3)} <= names and "charades_rgb_split1" in names
    assert release_models.release_model("hmdb51_flow_split2").expected == 59.74
    assert release_models.release_model("hmdb51_twostream_flow_split1").frame_network
    assert all(entry.url.startswith("https://cmu.box.com/") for entry in release_models.RELEASE_MODELS.values())
    with pytest.raises(ValueError, match="unknown release checkpoint 'x'"):
        release_models.release_model("x")


@pytest.fixture
def hmdb51_checkpoint(tmp_path):
    rng = np.random.default_rng(3)
    values = _release_values(rng, "stream0/", 3)
    values["stream0/classifier/logits/weights"] = rng.normal(0, 1.0, (4 * 512, 51)).astype(np.float32)
    values["stream0/classifier/logits/biases"] = rng.normal(0, 0.1, 51).astype(np.float32)
    images = rng.uniform(-128, 128, (4, 32, 32, 3)).astype(np.float32)
    path = tmp_path / "release" / "split1.ckpt"
    path.parent.mkdir()
    _save_release_checkpoint(path, values, {"stream0/": images}, {"stream0/": False}, tf.compat.v1.train.SaverDef.V1)
    return path


def test_name_to_evaluated_model_offline(tmp_path, hmdb51_checkpoint, monkeypatch):
    entry = release_models.release_model("hmdb51_rgb_split1")
    monkeypatch.setitem(
        release_models.RELEASE_MODELS, entry.name, dataclasses.replace(entry, url=hmdb51_checkpoint.as_uri())
    )
    data = tmp_path / "data"
    _write_dataset(data)
    inputs = InputSpec(
        frames_per_video=2,
        batch_size=3,
        image_size=32,
        resize_shape=(40, 48),
        frames_root=str(data / "frames"),
        list_dir=str(data / "lists"),
    )
    done = release_models.fetch_convert_evaluate(
        entry.name,
        str(tmp_path / "root"),
        str(tmp_path / "m.keras"),
        inputs,
        str(tmp_path / "eval"),
        mixed_precision="float32",
    )
    downloaded = tmp_path / "root" / entry.path
    assert done["path"] == str(downloaded) and downloaded.read_bytes() == hmdb51_checkpoint.read_bytes()
    assert (tmp_path / "root" / f"{entry.path}.sha256").read_text().split()[0] == done["sha256"]
    assert done["report"].missing == [] and len(done["report"].assigned) == 31
    results = done["results"]
    assert results["num_videos"] == 6 and done["expected"] == 51.37
    with h5py.File(results["logits_file"], "r") as h5:
        logits = h5["stream0/logits"][()]
    assert logits.shape == (6, 51) and np.abs(logits).max() > 0.1
    assert results["top1"] == pytest.approx(100 * np.mean(logits.argmax(1) == np.repeat(np.arange(3), 2)))

    # a second use checks the file against the recorded sum; a changed file is refused
    assert release_models.fetch(entry.name, str(tmp_path / "root"))[1] == done["sha256"]
    with open(downloaded, "ab") as f:
        f.write(b"x")
    with pytest.raises(ValueError, match="differs from the recorded"):
        release_models.fetch(entry.name, str(tmp_path / "root"))
    with pytest.raises(ValueError, match="differs from the given"):
        release_models.fetch(entry.name, "unused", local_file=str(hmdb51_checkpoint), sha256="0" * 64)


def test_a_wrong_checkpoint_or_an_unreachable_address_is_named(tmp_path, hmdb51_checkpoint, monkeypatch):
    with pytest.raises(ValueError, match="a rgb checkpoint, but hmdb51_flow_split1 is flow"):
        release_models.convert("hmdb51_flow_split1", str(hmdb51_checkpoint), str(tmp_path / "m.keras"), 32)
    entry = release_models.release_model("ucf101_rgb_split1")
    monkeypatch.setitem(
        release_models.RELEASE_MODELS, entry.name, dataclasses.replace(entry, url=(tmp_path / "nowhere.ckpt").as_uri())
    )
    with pytest.raises(OSError, match="download it by hand"):
        release_models.fetch(entry.name, str(tmp_path / "root"))
    assert not (tmp_path / "root" / entry.path).exists()
