"""predict: a `.keras` model and its SavedModel give the same scores on a video file; flow stacks
follow the release's numbering; sliding windows; the entry point on a written and a real clip."""

import json
import os
import subprocess
import sys

import cv2
import keras
import numpy as np
import pytest
from interrupted import Interrupted

from actionvlad_tf.data import sampling
from actionvlad_tf.export import predictions, predictor, video_batch
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
        frame[16:32, t % (width - 16) : t % (width - 16) + 16] = (40, 200, 250)
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
        "_": (
            export_saved_model(rgb, root / "rgb_export", CLASSES, keras_file=False),
            export_saved_model(two, root / "two_export", CLASSES, keras_file=False),
        ),
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
        np.testing.assert_array_equal(stacks[i, ..., 0::2], np.moveaxis(flow_x[f - 1 : f + 9], 0, -1))
        np.testing.assert_array_equal(stacks[i, ..., 1::2], np.moveaxis(flow_y[f - 1 : f + 9], 0, -1))


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
    np.testing.assert_allclose(
        windows[1][2]["probabilities"], classifier({"rgb": frames[5:30]})["probabilities"], atol=1e-6
    )


def test_streamed_prediction_equals_the_decoded_array(models, tmp_path):
    """A video file is streamed (only the sampled frames kept) with the scores of its decoded array,
    for RGB and for two streams (frames kept for the flow stacks)."""
    classifier = predictor.Classifier(models["rgb_keras"], CLASSES)
    short = _write_video(tmp_path / "short.avi", 300)
    np.testing.assert_allclose(
        predictor.classify_video(classifier, short)["probabilities"],
        predictor.classify_video(classifier, read_video_frames(short))["probabilities"],
        atol=1e-6,
    )
    two = predictor.Classifier(models["two_export"])
    np.testing.assert_allclose(
        predictor.classify_video(two, models["video"], flow_method="dis")["probabilities"],
        predictor.classify_video(two, read_video_frames(models["video"]), flow_method="dis")["probabilities"],
        atol=1e-6,
    )
    with pytest.raises(IndexError, match=r"frame\(s\) \[2\] \(1-based\) are not kept"):
        predictor.read_sampled_frames(short, [1, 3], 300)[[0, 1]]


@pytest.mark.parametrize("header", ["right", "wrong", "absent"])
def test_one_pass_where_the_header_count_holds(models, tmp_path, monkeypatch, header):
    """The container's frame count saves the counting pass; a wrong or absent one still gives the
    frames of the true count (two passes), for RGB and for flow stacks."""
    path = _write_video(tmp_path / "clip.avi", 61)
    decoded = read_video_frames(path)
    passes = []
    for name in ("iter_video_frames", "count_video_frames"):  # the decoding passes over the file
        original = getattr(predictor, name)
        monkeypatch.setattr(predictor, name, lambda p, original=original: passes.append(p) or original(p))
    if header != "right":
        monkeypatch.setattr(predictor, "header_frame_count", lambda p: 67 if header == "wrong" else None)
    for modalities in (("rgb",), ("rgb", "flow")):
        passes.clear()
        got = predictor.video_inputs(path, modalities, 4, "dis")
        expected = predictor.video_inputs(decoded, modalities, 4, "dis")
        for m in modalities:
            np.testing.assert_array_equal(got[m], expected[m])
        assert len(passes) == {"right": 1, "wrong": 3, "absent": 2}[header], (modalities, passes)


@pytest.mark.slow
def test_streamed_prediction_keeps_memory_bounded(models, tmp_path):
    """Peak memory of prediction (Python and numpy allocations, tracemalloc) on a 3000-frame video
    (165 MiB of decoded 160×120 frames) equals that on a 300-frame one, whole-video and windows."""
    import tracemalloc

    classifier = predictor.Classifier(models["rgb_keras"], CLASSES)
    peaks = {}
    for name, num_frames in (("short", 300), ("long", 3000)):
        path = _write_video(tmp_path / f"{name}.avi", num_frames, 120, 160)
        for mode in ("video", "windows"):
            tracemalloc.start()
            if mode == "video":
                predictor.classify_video(classifier, path)
            else:
                windows = list(predictor.classify_windows(classifier, path, window=25, stride=250, progress=False))
                assert len(windows) == len(predictor.window_starts(num_frames, 25, 250))
            peaks[name, mode] = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
    print("peak MiB", {f"{n} {m}": round(v, 1) for (n, m), v in peaks.items()})
    for mode in ("video", "windows"):
        assert peaks["long", mode] < 0.25 * 3000 * 120 * 160 * 3 / 2**20  # all frames: 165 MiB
        assert peaks["long", mode] < 1.2 * peaks["short", mode] + 1


def _predict(*args):
    result = subprocess.run(
        [sys.executable, "experiments/predict.py", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_entry_point_two_stream_and_sliding_window(models):
    out = _predict(f"--model={models['two_export']}", f"--video={models['video']}", "--flow_method=dis")
    lines = out.strip().splitlines()
    assert "40 frames 64x48" in lines[0] and "(rgb+flow)" in lines[0]
    assert len(lines) == 6 and all(line.split()[-1] in CLASSES for line in lines[1:])
    probabilities = [float(line.split()[0].rstrip("%")) for line in lines[1:]]
    assert probabilities == sorted(probabilities, reverse=True)

    png = os.path.join(os.path.dirname(models["video"]), "timeline.png")
    out = _predict(
        f"--model={models['rgb_keras']}",
        f"--class_names={models['classes']}",
        f"--video={models['video']}",
        "--sliding_window",
        "--window=25",
        "--stride=15",
        f"--timeline_png={png}",
    )
    timeline = [line for line in out.splitlines() if line.startswith("frames")]
    assert [line.split()[1] for line in timeline] == ["1-", "16-"]
    assert "0.00-   1.00 s" in timeline[0]  # 25 frames at 25 fps
    image = cv2.imread(png)
    assert image is not None and image.shape[2] == 3 and f"timeline: {png}" in out


def test_real_clip(models, shared_data):
    clip = shared_data / "clips" / "hmdb51" / "hmdb51_Turnk_r_Pippi_Michel_cartwheel_f_cm_np2_le_med_6.avi"
    out = _predict(f"--model={models['rgb_keras']}", f"--class_names={models['classes']}", f"--video={clip}")
    lines = out.strip().splitlines()
    assert "83 frames 320x240" in lines[0]
    assert [line.split()[-1] for line in lines[1:]] == predictor.classify_video(
        predictor.Classifier(models["rgb_keras"], CLASSES), read_video_frames(str(clip))
    )["top5_classes"]


@pytest.fixture(scope="module")
def folder(models, tmp_path_factory):
    root = tmp_path_factory.mktemp("many")
    for name, length in (("a.avi", 30), ("b.avi", 41), ("sub/c.avi", 26)):
        (root / name).parent.mkdir(exist_ok=True)
        _write_video(root / name, length)
    (root / "sub" / "broken.mp4").write_bytes(b"\0" * 100)
    return root


def test_many_videos_into_csv_and_jsonl(models, folder, tmp_path):
    """Each row is the video's top-k as `classify_video` gives it; the broken video is named and
    skipped; a killed run (a partial line left behind) re-run gives the clean run's file."""
    classifier = predictor.Classifier(models["rgb_keras"], CLASSES)
    jobs = video_batch.find_inputs(str(folder))
    assert [job.name for job in jobs] == ["a.avi", "b.avi", "sub/broken.mp4", "sub/c.avi"]
    clean = tmp_path / "clean.csv"
    summary = predictions.predict_videos(classifier, jobs, clean, top_k=3, progress=False)
    assert summary.processed == 3 and [name for name, _ in summary.failed] == ["sub/broken.mp4"]
    lines = clean.read_text().splitlines()
    assert lines[0] == "video,start,end,top1,p1,top2,p2,top3,p3" and len(lines) == 4
    for line, job in zip(lines[1:], [j for j in jobs if j.name != "sub/broken.mp4"]):
        scores = predictor.classify_video(classifier, job.source)
        fields = line.split(",")
        assert fields[:3] == [job.name, "", ""] and fields[3::2] == scores["top5_classes"][:3]
        np.testing.assert_allclose(
            [float(p) for p in fields[4::2]], scores["probabilities"][scores["top5_indices"][:3]], atol=1e-6
        )

    killed = tmp_path / "killed.csv"
    with pytest.raises(KeyboardInterrupt):
        predictions.predict_videos(Interrupted(classifier, 2), jobs, killed, top_k=3, progress=False)
    with open(killed, "a", encoding="utf-8") as handle:
        handle.write("sub/c.avi,,,acti")  # the kill came mid-row
    again = predictions.predict_videos(classifier, jobs, killed, top_k=3, progress=False)
    assert (again.processed, again.already_done) == (1, 2)
    assert killed.read_text() == clean.read_text()

    jsonl = tmp_path / "preds.jsonl"
    predictions.predict_videos(classifier, jobs[:2], jsonl, progress=False)
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [r["video"] for r in records] == ["a.avi", "b.avi"] and len(records[0]["top_classes"]) == 5
    assert records[0]["top_classes"] == predictor.classify_video(classifier, jobs[0].source)["top5_classes"]
    with pytest.raises(ValueError, match="preds.txt: predictions go to a .csv or .jsonl file"):
        predictions.predict_videos(classifier, jobs, tmp_path / "preds.txt", progress=False)


def test_many_videos_with_windows(models, folder, tmp_path):
    classifier = predictor.Classifier(models["rgb_export"])
    jobs = [job for job in video_batch.find_inputs(str(folder)) if job.name in ("a.avi", "b.avi")]
    output = tmp_path / "windows.jsonl"
    predictions.predict_videos(classifier, jobs, output, window=25, stride=10, progress=False)
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert [[(w["start"], w["end"]) for w in r["windows"]] for r in records] == [[(0, 25)], [(0, 25), (10, 35)]]
    expected = list(predictor.classify_windows(classifier, jobs[1].source, 25, 10, progress=False))
    assert [w["top_classes"] for w in records[1]["windows"]] == [s["top5_classes"] for _, _, s in expected]
    csv_rows = tmp_path / "windows.csv"
    predictions.predict_videos(classifier, jobs, csv_rows, top_k=1, window=25, stride=10, progress=False)
    assert [line.split(",")[:3] for line in csv_rows.read_text().splitlines()[1:]] == [
        ["a.avi", "0", "25"],
        ["b.avi", "0", "25"],
        ["b.avi", "10", "35"],
    ]


def test_entry_point_many_videos(models, folder, tmp_path):
    output = tmp_path / "preds.jsonl"
    output.write_text('{"video": "a.avi", "top_classes": [], "top_probabilities": []}\n{"video": "b.a')  # killed
    out = _predict(f"--model={models['rgb_export']}", f"--videos={folder}", f"--output={output}", "--noprogress")
    assert "2 videos in" in out and "videos/s" in out and "1 already in the output" in out
    assert "1 unreadable" in out and "sub/broken.mp4" in out
    assert [json.loads(line)["video"] for line in output.read_text().splitlines()] == ["a.avi", "b.avi", "sub/c.avi"]
