"""predict: a `.keras` model and its SavedModel give the same scores on a video file; flow stacks
follow the release's numbering; sliding windows; the entry point on a written and a real clip."""
import os
import subprocess
import sys

import cv2
import keras
import numpy as np
import pytest

from actionvlad_tf.data import sampling
from actionvlad_tf.export import predictor
from actionvlad_tf.export.saved_model import export_saved_model, save_keras_atomic
from actionvlad_tf.models import build_actionvlad, build_two_stream
from actionvlad_tf.prep import video_inputs
from actionvlad_tf.prep.extraction import compute_flow_images, read_video_frames

S, K, C = 32, 4, 7
CLASSES = [f"action_{i}" for i in range(C)]
NUM_FRAMES = 40


def _write_video(path, num_frames=NUM_FRAMES, height=48, width=64):
    """A square moving right over a gradient, MJPG in .avi (decodable by every OpenCV build)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (width, height))
    assert writer.isOpened()
    background = np.linspace(0, 200, width, dtype=np.uint8)[None, :, None].repeat(height, 0).repeat(3, 2)
    for t in range(num_frames):
        frame = background.copy()
        frame[16:32, t % (width - 16):t % (width - 16) + 16] = (40, 200, 250)
        writer.write(frame)
    writer.release()
    return str(path)


def _spread_classifier(model, seed):
    """Classifier weights large enough that the class ranking is not a tie."""
    for layer in (model, *[l for l in model.layers if isinstance(l, keras.Model)]):
        if "classifier" in [l.name for l in layer.layers]:
            kernel = layer.get_layer("classifier").kernel
            kernel.assign(np.random.default_rng(seed).normal(0, 3.0, kernel.shape))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    keras.utils.set_random_seed(0)
    rgb = build_actionvlad(C, frames_per_video=None, image_size=S, num_clusters=K)
    _spread_classifier(rgb, 0)
    two = build_two_stream(C, frames_per_video=5, image_size=S, num_clusters=K)
    _spread_classifier(two, 1)
    (root / "classes.txt").write_text("".join(f"{c}\n" for c in CLASSES))
    return {
        "video": _write_video(root / "clip.avi"),
        "classes": str(root / "classes.txt"),
        "rgb_keras": save_keras_atomic(rgb, root / "rgb.keras"),
        "rgb_export": str(root / "rgb_export"),
        "two_export": str(root / "two_export"),
        "_": (export_saved_model(rgb, root / "rgb_export", CLASSES, keras_file=False),
              export_saved_model(two, root / "two_export", CLASSES, keras_file=False)),
    }


def test_keras_and_saved_model_agree_on_a_video(models):
    frames = read_video_frames(models["video"])
    assert frames.shape == (NUM_FRAMES, 48, 64, 3)
    from_keras = predictor.classify_video(predictor.Classifier(models["rgb_keras"], CLASSES), frames)
    from_export = predictor.classify_video(predictor.Classifier(models["rgb_export"]), frames)
    np.testing.assert_allclose(from_keras["probabilities"], from_export["probabilities"], atol=1e-6)
    assert from_keras["top5_classes"] == from_export["top5_classes"]
    assert from_keras["top5_classes"][0] == CLASSES[int(np.argmax(from_keras["probabilities"]))]
    unnamed = predictor.Classifier(models["rgb_keras"])
    assert unnamed.modalities == ("rgb",) and unnamed.frames_per_video is None
    assert unnamed(video_inputs.sample_inputs(frames, ("rgb",), 25, None))["top5_classes"][0].isdigit()
    with pytest.raises(ValueError, match="baked in"):
        predictor.Classifier(models["rgb_export"], CLASSES)
    with pytest.raises(FileNotFoundError, match="not a .keras file"):
        predictor.Classifier(os.path.dirname(models["video"]) + "/nothing")


def test_flow_stacks_follow_the_release_numbering():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (30, 24, 32, 3), dtype=np.uint8)
    first = sampling.frame_numbers(30, 4, "flow")  # ⌊(30 − 10)/4⌋ = 5: files 1, 6, 11, 16
    np.testing.assert_array_equal(first, [1, 6, 11, 16])
    stacks = video_inputs.FlowCache(frames, "dis").stacks(first)
    flow_x, flow_y = compute_flow_images(frames, "dis")
    assert stacks.shape == (4, 24, 32, 20) and stacks.dtype == np.uint8
    for i, f in enumerate(first):  # channels x_f, y_f, x_f+1, …: flow file f is frames f → f + 1
        np.testing.assert_array_equal(stacks[i, ..., 0::2], np.moveaxis(flow_x[f - 1:f + 9], 0, -1))
        np.testing.assert_array_equal(stacks[i, ..., 1::2], np.moveaxis(flow_y[f - 1:f + 9], 0, -1))


def test_sliding_windows(models):
    assert predictor.window_starts(40, 25, 5) == [0, 5, 10, 15]
    assert predictor.window_starts(10, 25, 5) == [0]
    with pytest.raises(ValueError, match="stride"):
        predictor.window_starts(40, 25, 0)
    frames = read_video_frames(models["video"])
    classifier = predictor.Classifier(models["rgb_export"])
    windows = list(predictor.classify_windows(classifier, frames, window=25, stride=5, progress=False))
    assert [(s, e) for s, e, _ in windows] == [(0, 25), (5, 30), (10, 35), (15, 40)]
    # A window scores exactly its own 25 frames (step ⌊24/24⌋ = 1).
    np.testing.assert_allclose(windows[1][2]["probabilities"], classifier({"rgb": frames[5:30]})["probabilities"],
                               atol=1e-6)


def _predict(*args):
    result = subprocess.run([sys.executable, "experiments/predict.py", *args], capture_output=True, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_entry_point_two_stream_and_sliding_window(models):
    out = _predict(f"--model={models['two_export']}", f"--video={models['video']}", "--flow_method=dis")
    lines = out.strip().splitlines()
    assert "40 frames 64x48" in lines[0] and "(rgb+flow)" in lines[0]
    assert len(lines) == 6 and all(line.split()[-1] in CLASSES for line in lines[1:])
    probabilities = [float(line.split()[0].rstrip("%")) for line in lines[1:]]
    assert probabilities == sorted(probabilities, reverse=True)

    out = _predict(f"--model={models['rgb_keras']}", f"--class_names={models['classes']}", f"--video={models['video']}",
                   "--sliding_window", "--window=25", "--stride=15")
    timeline = [line for line in out.splitlines() if line.startswith("frames")]
    assert [line.split()[1] for line in timeline] == ["1-", "16-"]
    assert "0.00-   1.00 s" in timeline[0]  # 25 frames at 25 fps


def test_real_clip(models, shared_data):
    clip = shared_data / "clips" / "hmdb51" / "hmdb51_Turnk_r_Pippi_Michel_cartwheel_f_cm_np2_le_med_6.avi"
    out = _predict(f"--model={models['rgb_keras']}", f"--class_names={models['classes']}", f"--video={clip}")
    lines = out.strip().splitlines()
    assert "83 frames 320x240" in lines[0]
    assert [line.split()[-1] for line in lines[1:]] == predictor.classify_video(
        predictor.Classifier(models["rgb_keras"], CLASSES), read_video_frames(str(clip)))["top5_classes"]
