"""extract_features: the HDF5 rows equal the Keras model's pooled vector and soft assignments on the
same sampled frames, for video files and frame folders; unreadable videos are named; a killed run
re-run gives the file of a clean run; the entry point."""

import os
import subprocess
import sys

import cv2
import h5py
import keras
import numpy as np
import pytest
from interrupted import Interrupted

from actionvlad_tf.data.augment import preprocess_for_eval
from actionvlad_tf.data.sampling import frame_numbers
from actionvlad_tf.export import features, predictor, video_batch
from actionvlad_tf.export.saved_model import export_saved_model, save_keras_atomic
from actionvlad_tf.layers import NetVLADPooling
from actionvlad_tf.models import build_actionvlad, embedding_model, pooling_layers
from actionvlad_tf.prep.extraction import read_video_frames

T, S, K, C = 3, 32, 2, 4
CLASSES = [f"class_{i}" for i in range(C)]


def write_video(path, num_frames, seed, height=40, width=48):
    """Random-texture MJPG .avi (decodable by every OpenCV build)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (width, height))
    rng = np.random.default_rng(seed)
    for _ in range(num_frames):
        writer.write(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    writer.release()
    return str(path)


def write_frame_folder(folder, num_frames, seed, template="image_%05d.jpg"):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for k in range(1, num_frames + 1):
        cv2.imwrite(str(folder / (template % k)), rng.integers(0, 256, (40, 48, 3), dtype=np.uint8))
    return folder


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("features")
    keras.utils.set_random_seed(0)
    model = build_actionvlad(C, frames_per_video=T, image_size=S, num_clusters=K, backbone_width=0.25, weight_decay=0)
    videos = root / "videos"
    (videos / "jump").mkdir(parents=True)
    write_video(videos / "jump" / "a.avi", 9, 1)
    write_video(videos / "jump" / "b.avi", 14, 2)
    write_frame_folder(videos / "run" / "c", 11, 3, template="img_%05d.jpg")  # TSN naming
    (videos / "run" / "broken.avi").write_bytes(b"not a video")
    return {
        "model": model,
        "keras": save_keras_atomic(model, root / "model.keras"),
        "videos": str(videos),
        "root": root,
    }


def _decoded(path):
    if os.path.isdir(path):
        files = sorted(os.listdir(path))
        return np.stack([cv2.cvtColor(cv2.imread(os.path.join(path, f)), cv2.COLOR_BGR2RGB) for f in files])
    return read_video_frames(path)


def _expected(model, path):
    """The Keras model's pooled vector, logits and soft assignments on the release's T frames."""
    frames = _decoded(path)
    batch = preprocess_for_eval(frames[frame_numbers(len(frames), T) - 1], "rgb", 1, S)[None]
    outputs = embedding_model(model, descriptors=True)(batch)
    (pooling,) = pooling_layers(model)
    assert isinstance(pooling, NetVLADPooling)
    return {
        "embedding": outputs["embedding"][0],
        "logits": outputs["logits"][0],
        "assignments": pooling.soft_assignment(outputs["descriptors_0"])[0],
    }


def _read(path):
    with h5py.File(path, "r") as f:
        return {name: f[name][:] for name in f}, dict(f.attrs)


def test_rows_equal_the_keras_pooled_vector(setup, tmp_path):
    jobs = video_batch.find_inputs(setup["videos"])
    assert [job.name for job in jobs] == ["jump/a.avi", "jump/b.avi", "run/broken.avi", "run/c"]
    classifier = predictor.Classifier(setup["keras"], CLASSES, assignments=True)
    output = tmp_path / "features.h5"
    summary = features.extract_features(classifier, jobs, output, progress=False)
    assert (summary.processed, summary.already_done) == (3, 0)
    assert [name for name, _ in summary.failed] == ["run/broken.avi"] and "cannot open" in summary.failed[0][1]
    assert "1 unreadable" in summary.report() and "run/broken.avi" in summary.report()
    rows, attributes = _read(output)
    assert [v.decode() for v in rows["videos"]] == ["jump/a.avi", "jump/b.avi", "run/c"]
    assert rows["embedding"].shape == (3, K * 128) and rows["assignments"].shape == (3, T, 2, 2, K)
    assert attributes["frames_per_video"] == str(T) and attributes["modalities"] == "rgb"
    for i, job in enumerate(j for j in jobs if j.name != "run/broken.avi"):
        expected = _expected(setup["model"], job.source)
        for name, value in expected.items():
            np.testing.assert_allclose(rows[name][i], keras.ops.convert_to_numpy(value), atol=1e-5, err_msg=name)
    np.testing.assert_allclose(np.linalg.norm(rows["embedding"], axis=1), 1.0, atol=1e-5)  # Eq. 2's L2 norm

    again = features.extract_features(classifier, jobs, output, progress=False)
    assert (again.processed, again.already_done, len(again.failed)) == (0, 3, 1)
    with pytest.raises(ValueError, match="written with frames_per_video=3, not 5"):
        features.FeatureFile(output, {"frames_per_video": 5})


def test_a_killed_run_rerun_equals_a_clean_run(setup, tmp_path):
    jobs = video_batch.find_inputs(setup["videos"])
    classifier = predictor.Classifier(setup["keras"], CLASSES)
    clean = tmp_path / "clean.h5"
    features.extract_features(classifier, jobs, clean, progress=False)
    killed = tmp_path / "killed.h5"
    with pytest.raises(KeyboardInterrupt):
        features.extract_features(Interrupted(classifier, 1), jobs, killed, progress=False)
    with h5py.File(killed, "a") as f:  # killed between a row and its name
        assert len(f["videos"]) == 1
        f["embedding"].resize(2, axis=0)
    summary = features.extract_features(classifier, jobs, killed, progress=False)
    assert (summary.processed, summary.already_done) == (2, 1)
    (got, got_attributes), (expected, expected_attributes) = _read(killed), _read(clean)
    assert got.keys() == expected.keys() == {"videos", "embedding", "logits"} and got_attributes == expected_attributes
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


def test_saved_model_gives_no_assignments(setup):
    export_saved_model(setup["model"], setup["root"] / "export", CLASSES, keras_file=False)
    with pytest.raises(ValueError, match="soft assignments need the .keras model"):
        predictor.Classifier(setup["root"] / "export", assignments=True)


def test_entry_point(setup, tmp_path):
    output = tmp_path / "f.h5"
    list_file = tmp_path / "list.txt"
    list_file.write_text(f"{setup['videos']}/jump/b.avi\n{setup['videos']}/run/c\tc\n")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run(
        [
            sys.executable,
            "experiments/extract_features.py",
            f"--model={setup['keras']}",
            f"--videos={list_file}",
            f"--output={output}",
            "--noprogress",
            "--assignments",
        ],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 videos in" in result.stdout and "0 unreadable" in result.stdout
    rows, _ = _read(output)
    assert [v.decode() for v in rows["videos"]] == [f"{setup['videos']}/jump/b.avi", "c"]
    np.testing.assert_allclose(
        rows["embedding"][1],
        keras.ops.convert_to_numpy(_expected(setup["model"], os.path.join(setup["videos"], "run", "c"))["embedding"]),
        atol=1e-5,
    )
