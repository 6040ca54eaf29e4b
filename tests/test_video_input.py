"""tf.data pipelines from lists and frame folders: sampling, layout, order, shuffling, bad input."""

import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest
import tensorflow as tf
from frame_folders import frame_value, write_list, write_video

from actionvlad_tf.data.frames import DatasetReport, find_video_problems
from actionvlad_tf.data.lists import read_list
from actionvlad_tf.data.video_input import make_video_dataset

SMALL = {"image_size": 16, "resize_shape": (20, 24)}
BGR_MEANS = np.array([104, 117, 123])


@pytest.fixture
def coded(tmp_path):
    """Three coded videos (10, 30 and 40 frames) with flow, and their list."""
    root = tmp_path / "frames"
    for video, n in (("a/v1", 10), ("b/v2", 30), ("c/v3.avi", 40)):
        write_video(root, video, n)
    return root, write_list(tmp_path / "list.txt", ["a/v1 10 0", "b/v2 30 1", "c/v3.avi 40 2"])


def _batches(dataset):
    return [tf.nest.map_structure(lambda t: t.numpy(), b) for b in dataset]


def test_eval_rgb_frames_order_layout_and_means(coded):
    root, list_file = coded
    dataset = make_video_dataset(list_file, root, frames_per_video=3, batch_size=2, return_metadata=True, **SMALL)
    # No autotuning model thread: its end of iteration may wait for its next round (data/options.py).
    assert dataset.options().autotune.enabled is False
    batches = _batches(dataset)
    assert [b[0].shape for b in batches] == [(2, 3, 16, 16, 3), (1, 3, 16, 16, 3)]
    video = np.concatenate([b[0] for b in batches])
    assert video.dtype == np.float32
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), [0, 1, 2])
    np.testing.assert_array_equal(np.concatenate([b[2]["index"] for b in batches]), [0, 1, 2])
    assert list(np.concatenate([b[2]["path"] for b in batches])) == [b"a/v1", b"b/v2", b"c/v3.avi"]
    # RGB step ⌊(n−1)/2⌋: frames 1, 5, 9 / 1, 15, 29 / 1, 20, 39; channels B, G, R minus means.
    for v, numbers in enumerate(([1, 5, 9], [1, 15, 29], [1, 20, 39])):
        expected = np.array([[200, 100, frame_value(k)] for k in numbers]) - BGR_MEANS
        np.testing.assert_allclose(video[v, :, 8, 8], expected, atol=3)  # JPEG colour rounding


def test_eval_flow_stacks_interleaved(coded):
    root, list_file = coded
    ((video, label),) = _batches(
        make_video_dataset(list_file, root, modality="flow", frames_per_video=3, flow_stack=2, batch_size=3, **SMALL)
    )
    assert video.shape == (3, 3, 16, 16, 4)
    # Flow step ⌊(n−L)/T⌋ = 2, 9, 12; channels x_k, y_k, x_k+1, y_k+1 (x = k + 10, y = k + 150).
    for v, step in enumerate((2, 9, 12)):
        first = 1 + step * np.arange(3)
        expected = np.stack([first + 10, first + 150, first + 11, first + 151], -1) - 128
        np.testing.assert_array_equal(video[v, :, 5, 5], expected)


def test_eval_rgb_plus_flow_shares_frames_and_five_crops(coded):
    root, list_file = coded
    ((video, _),) = _batches(
        make_video_dataset(
            list_file, root, modality="rgb+flow", num_crops=5, frames_per_video=3, flow_stack=2, batch_size=3, **SMALL
        )
    )
    assert video["rgb"].shape == (3, 15, 16, 16, 3) and video["flow"].shape == (3, 15, 16, 16, 4)
    flow_first = video["flow"][:, :, 5, 5, 0] + 128 - 10
    rgb_red = video["rgb"][:, :, 5, 5, 2] + 123
    np.testing.assert_allclose(rgb_red, frame_value(flow_first.astype(int)), atol=3)
    np.testing.assert_array_equal(flow_first[:, :5], np.ones((3, 5)))  # frame-major crops


def test_four_column_clip_offset(tmp_path):
    root = tmp_path / "frames"
    write_video(root, "x/long", 30, flow=False)
    list_file = write_list(tmp_path / "clips.txt", ["x/long 12 10 3", "x/long 0 5 4"])
    ((video, label),) = _batches(make_video_dataset(list_file, root, frames_per_video=3, batch_size=2, **SMALL))
    np.testing.assert_array_equal(label, [3, 4])
    # Clip 1: frames 13, 17, 21 (step ⌊9/2⌋ = 4 from 12 + 1); clip 2: 1, 3, 5.
    red = video[:, :, 8, 8, 2] + 123
    np.testing.assert_allclose(
        red, [[frame_value(k) for k in (13, 17, 21)], [frame_value(k) for k in (1, 3, 5)]], atol=3
    )


def test_entries_instead_of_a_list_file_and_tsn_template(tmp_path):
    root = tmp_path / "frames"
    write_video(root, "v", 5, rgb_template="img_%05d.jpg", flow=False)
    entries = read_list(write_list(tmp_path / "l.txt", ["v 5 0"]))
    ((video, _),) = _batches(
        make_video_dataset(entries, root, frames_per_video=2, rgb_template="img_%05d.jpg", **SMALL)
    )
    np.testing.assert_allclose(video[0, :, 0, 0, 2] + 123, [frame_value(1), frame_value(5)], atol=3)


def _textured(tmp_path, count=6, frames=12):
    root = tmp_path / "textured"
    for i in range(count):
        write_video(root, f"v{i}", frames, textured=True, seed=i)
    return root, write_list(tmp_path / "textured.txt", [f"v{i} {frames} {i % 3}" for i in range(count)])


def test_training_shuffles_every_epoch_repeats_and_is_reproducible(tmp_path):
    root, list_file = _textured(tmp_path)

    def run(seed):
        dataset = make_video_dataset(
            list_file,
            root,
            frames_per_video=2,
            training=True,
            batch_size=3,
            shuffle_seed=seed,
            return_metadata=True,
            **SMALL,
        )
        return _batches(dataset.take(6))  # 3 epochs of 6 videos

    first, again, other = run(1), run(1), run(2)
    assert all(b[0].shape == (3, 2, 16, 16, 3) for b in first)
    orders = [np.concatenate([first[2 * e][2]["index"], first[2 * e + 1][2]["index"]]) for e in range(3)]
    assert all(sorted(o) == list(range(6)) for o in orders)  # each epoch sees every video once
    assert len({tuple(o) for o in orders}) > 1  # reshuffled between epochs
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a[0], b[0])
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(first, other))


def test_training_crops_and_flips_differ_between_epochs(tmp_path):
    root, list_file = _textured(tmp_path, count=1)
    dataset = make_video_dataset(list_file, root, frames_per_video=2, training=True, shuffle_seed=0, **SMALL)
    videos = [b[0] for b in _batches(dataset.take(8))]
    assert len({v.tobytes() for v in videos}) > 1
    assert all(np.isfinite(v).all() for v in videos)


def test_training_random_single_frames_and_jitter(tmp_path):
    root = tmp_path / "frames"
    write_video(root, "v", 40)
    list_file = write_list(tmp_path / "l.txt", ["v 40 0"])
    single = make_video_dataset(list_file, root, frames_per_video=1, training=True, shuffle_seed=3, **SMALL)
    reds = {int(round(b[0][0, 0, 8, 8, 2] + 123)) for b in _batches(single.take(30))}
    assert len(reds) > 5  # T = 1 draws a random frame per visit (§3.3)
    jitter = make_video_dataset(
        list_file, root, frames_per_video=4, training=True, temporal_jitter=True, shuffle_seed=3, **SMALL
    )
    assert len({b[0][0, :, 8, 8, 2].round().tobytes() for b in _batches(jitter.take(10))}) > 1
    fixed = make_video_dataset(
        list_file, root, frames_per_video=4, training=True, shuffle_seed=3, **SMALL
    )  # the release: same frames every epoch
    assert len({b[0][0, :, 8, 8, 2].round().tobytes() for b in _batches(fixed.take(10))}) == 1


def test_argument_errors(coded):
    root, list_file = coded
    with pytest.raises(ValueError, match="modality 'depth'"):
        make_video_dataset(list_file, root, modality="depth")
    with pytest.raises(ValueError, match="needs report=DatasetReport"):
        make_video_dataset(list_file, root, on_error="skip")
    with pytest.raises(ValueError, match="num_crops=1"):
        make_video_dataset(list_file, root, training=True, num_crops=5)
    with pytest.raises(ValueError, match="either list_file"):
        make_video_dataset(list_file, root, packed_files="x*.tfrecord")
    with pytest.raises(ValueError, match="needs the rgb root"):
        make_video_dataset(list_file, modality="rgb")


def test_flow_video_too_short_for_a_stack_names_the_line(coded, tmp_path):
    root, _ = coded
    list_file = write_list(tmp_path / "short.txt", ["b/v2 30 1", "a/v1 10 0"])
    with pytest.raises(ValueError, match=r"short.txt:2: 10 frames give 9 flow images"):
        make_video_dataset(list_file, root, modality="flow", frames_per_video=3, **SMALL)


def _damage(tmp_path):
    """Videos: ok, missing frame, corrupt (garbage) frame, truncated frame, zero-byte frame,
    fewer frames on disk than listed."""
    root = tmp_path / "frames"
    for video in ("ok", "missing", "garbage", "truncated", "empty", "fewer"):
        write_video(root, video, 9, flow=False)
    (root / "missing" / "image_00005.jpg").unlink()
    (root / "garbage" / "image_00001.jpg").write_bytes(b"not a jpeg at all")
    data = (root / "truncated" / "image_00009.jpg").read_bytes()
    (root / "truncated" / "image_00009.jpg").write_bytes(data[: len(data) // 2])
    (root / "empty" / "image_00005.jpg").write_bytes(b"")
    lines = ["ok 9 0", "missing 9 0", "garbage 9 0", "truncated 9 0", "empty 9 0", "fewer 12 0"]
    return root, write_list(tmp_path / "damaged.txt", lines)


@pytest.mark.parametrize(
    "video, line, error, message",
    [
        ("missing", 2, tf.errors.NotFoundError, r"missing/image_00005.jpg"),
        (
            "garbage",
            3,
            tf.errors.InvalidArgumentError,
            r"bad input in video.*garbage.*damaged.txt:3.*corrupt, truncated or empty.*image_00001.jpg",
        ),
        ("truncated", 4, tf.errors.InvalidArgumentError, r"truncated.*damaged.txt:4.*image_00009.jpg"),
        ("empty", 5, tf.errors.InvalidArgumentError, r"empty.*damaged.txt:5.*image_00005.jpg"),
    ],
)
def test_bad_frames_raise_naming_video_line_and_file(tmp_path, video, line, error, message):
    root, list_file = _damage(tmp_path)
    bad_line = list_file.read_text().splitlines()[line - 1]
    assert bad_line.startswith(video)
    # The good video, then the bad one alone at its line (blank lines are not videos).
    single = write_list(tmp_path / "damaged.txt", ["ok 9 0"] + [""] * (line - 2) + [bad_line])
    dataset = make_video_dataset(single, root, frames_per_video=3, **SMALL)
    with pytest.raises(error, match=message):
        _batches(dataset)


def test_validate_reports_every_problem_at_once(tmp_path):
    root, list_file = _damage(tmp_path)
    with pytest.raises(ValueError) as raised:
        make_video_dataset(list_file, root, frames_per_video=3, validate=True, **SMALL)
    message = str(raised.value)
    assert message.startswith("3 video(s) cannot be read")
    assert "missing (" in message and "damaged.txt:2" in message and "image_00005.jpg" in message
    assert "zero-byte rgb files" in message and "damaged.txt:5" in message
    assert "fewer (" in message and "3 of 12 rgb files missing" in message
    assert "the list says 12 frames" in message
    entries = read_list(list_file)
    assert [p for p, _ in find_video_problems(entries, str(root))] == [1, 4, 5]


def test_skip_policy_drops_counts_and_names(tmp_path):
    root, list_file = _damage(tmp_path)
    report = DatasetReport()
    batches = _batches(
        make_video_dataset(
            list_file,
            root,
            frames_per_video=3,
            on_error="skip",
            report=report,
            return_metadata=True,
            batch_size=6,
            **SMALL,
        )
    )
    assert len(batches) == 1 and list(batches[0][2]["path"]) == [b"ok"]
    assert np.isfinite(batches[0][0]).all()
    assert [(s.index, s.path) for s in report.skipped] == [
        (1, "missing"),
        (2, "garbage"),
        (3, "truncated"),
        (4, "empty"),
        (5, "fewer"),
    ]
    assert "image_00001.jpg" in report.skipped[1].reason
    assert report.skipped[3].where.endswith("damaged.txt:5")
    assert report.summary().startswith("5 video(s) skipped")
    assert len(report) == 5


def test_skip_in_training_counts_each_video_once(tmp_path):
    root, list_file = _damage(tmp_path)
    report = DatasetReport()
    dataset = make_video_dataset(
        list_file,
        root,
        frames_per_video=3,
        on_error="skip",
        report=report,
        training=True,
        shuffle_seed=0,
        return_metadata=True,
        **SMALL,
    )
    assert {b[2]["path"][0] for b in _batches(dataset.take(4))} == {b"ok"}
    assert len(report) == 5


def test_nothing_left_is_an_error(tmp_path):
    root, list_file = _damage(tmp_path)
    bad_only = write_list(tmp_path / "bad.txt", list_file.read_text().splitlines()[1:2])
    with pytest.raises(ValueError, match="no readable video left"):
        make_video_dataset(bad_only, root, on_error="skip", report=DatasetReport(), **SMALL)


def test_distribute_datasets_from_function_shards_and_batches_per_replica(coded, tmp_path):
    """Devices are fixed when TF starts, so this runs in a fresh interpreter."""
    root, _ = coded
    for i in range(5):
        write_video(root, f"extra/{i}", 12, flow=False)
    list_file = write_list(
        tmp_path / "eight.txt",
        ["a/v1 10 0", "b/v2 30 1", "c/v3.avi 40 2"] + [f"extra/{i} 12 {i % 3}" for i in range(5)],
    )
    script = textwrap.dedent(f"""
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from actionvlad_tf.data.video_input import make_video_dataset
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        options = tf.distribute.InputOptions(experimental_replication_mode=
                                             tf.distribute.InputReplicationMode.PER_WORKER)
        dataset = strategy.distribute_datasets_from_function(
            lambda context: make_video_dataset({str(list_file)!r}, {str(root)!r}, frames_per_video=2,
                                               batch_size=4, image_size=16, resize_shape=(20, 24),
                                               input_context=context, return_metadata=True), options)
        seen = []
        for video, label, meta in dataset:
            parts = strategy.experimental_local_results(meta["index"])
            shapes = [v.shape for v in strategy.experimental_local_results(video)]
            assert all(s[1:] == (2, 16, 16, 3) for s in shapes), shapes
            seen += [int(i) for part in parts for i in part.numpy()]
        assert sorted(seen) == list(range(8)), seen
        print("OK")
        """)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=str(tmp_path)
    )
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr[-3000:]


def test_training_pipelines_decode_only_their_rows_of_each_global_batch(tmp_path):
    """Two input pipelines (one per worker) each yield their half of every global batch of the
    one-pipeline stream (same videos, frames, crops, flips) and never open the other half's files:
    the other pipeline's videos are corrupted and this one still runs."""
    root, list_file = _textured(tmp_path, count=8, frames=6)
    options = dict(frames_per_video=2, training=True, batch_size=4, shuffle_seed=3, return_metadata=True, **SMALL)

    def pipeline(index):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=index, num_replicas_in_sync=2)
        return make_video_dataset(list_file, root, input_context=context, **options)

    whole = _batches(make_video_dataset(list_file, root, **options).take(4))  # two epochs
    halves = [_batches(pipeline(i).take(4)) for i in (0, 1)]
    decoded = [[list(batch[2]["index"]) for batch in half] for half in halves]
    assert all(len(rows) == 2 for half in decoded for rows in half)  # 2 decodes per worker per step
    for step, batch in enumerate(whole):
        np.testing.assert_array_equal(batch[2]["index"], decoded[0][step] + decoded[1][step])
        np.testing.assert_array_equal(batch[0], np.concatenate([halves[0][step][0], halves[1][step][0]]))
    # Worker 1's videos of the first epoch made unreadable: worker 0 never reads them.
    for index in decoded[1][0] + decoded[1][1]:
        for image in (root / f"v{index}").iterdir():
            image.write_bytes(b"")
    assert len(_batches(pipeline(0).take(2))) == 2
    with pytest.raises(tf.errors.InvalidArgumentError, match="corrupt, truncated or empty"):
        _batches(pipeline(1).take(2))
    with pytest.raises(ValueError, match="needs a shuffle_seed"):
        make_video_dataset(
            list_file, root, input_context=tf.distribute.InputContext(2, 0, 2), **{**options, "shuffle_seed": None}
        )
    with pytest.raises(ValueError, match="cannot be shared by 2"):
        make_video_dataset(
            list_file, root, input_context=tf.distribute.InputContext(2, 0, 2), **{**options, "batch_size": 3}
        )


def test_real_tsn_folder(shared_data, tmp_path):
    """The real TSN-named folder: 10 frames (img_), 5 flow images per direction."""
    root = shared_data / "clips" / "frames"
    list_file = write_list(tmp_path / "tsn.txt", ["v_ApplyEyeMakeup_g01_c01 6 0"])
    dataset = make_video_dataset(
        list_file,
        str(root),
        modality="rgb+flow",
        frames_per_video=2,
        flow_stack=2,
        rgb_template="img_%05d.jpg",
        validate=True,
    )
    ((video, label),) = _batches(dataset)
    assert video["rgb"].shape == (1, 2, 224, 224, 3) and video["flow"].shape == (1, 2, 224, 224, 4)
    folder = root / "v_ApplyEyeMakeup_g01_c01"
    # Shared step ⌊(6 − 2)/2⌋ = 2: RGB frames 1, 3 and flow stacks (1, 2), (3, 4).
    frame3 = cv2.resize(cv2.imread(str(folder / "img_00003.jpg")), (340, 256), interpolation=cv2.INTER_LINEAR)
    assert np.abs(video["rgb"][0, 1] + BGR_MEANS - frame3[16:240, 60:284]).mean() < 2
    flow_y4 = cv2.imread(str(folder / "flow_y_00004.jpg"), cv2.IMREAD_GRAYSCALE)
    flow_y4 = cv2.resize(flow_y4, (340, 256), interpolation=cv2.INTER_LINEAR)
    assert np.abs(video["flow"][0, 1, ..., 3] + 128 - flow_y4[16:240, 60:284]).mean() < 2
    rgb_only = make_video_dataset(
        write_list(tmp_path / "rgb.txt", ["v_ApplyEyeMakeup_g01_c01 10 0"]),
        str(root),
        frames_per_video=3,
        rgb_template="img_%05d.jpg",
        validate=True,
    )
    assert _batches(rgb_only)[0][0].shape == (1, 3, 224, 224, 3)


def test_real_clip_yields_release_shapes(shared_data, tmp_path):
    """Frames and (DIS) flow of a real HMDB51 clip → [25, 224, 224, 3] and [25, 224, 224, 20]."""
    extraction = pytest.importorskip("actionvlad_tf.prep.extraction")
    clip = shared_data / "clips" / "hmdb51" / "TrumanShow_wave_f_nm_np1_fr_med_26.avi"
    folder = tmp_path / "frames" / "wave" / "truman"
    folder.mkdir(parents=True)
    extraction.write_video_frames(str(clip), str(folder))
    extraction.write_flow(str(clip), str(folder), method="dis")
    count = extraction.count_frames(str(folder))
    list_file = write_list(tmp_path / "real.txt", [f"wave/truman {count} 0"])
    dataset = make_video_dataset(list_file, str(tmp_path / "frames"), modality="rgb+flow", validate=True)
    ((video, label),) = _batches(dataset)
    assert video["rgb"].shape == (1, 25, 224, 224, 3)
    assert video["flow"].shape == (1, 25, 224, 224, 20)
    assert np.isfinite(video["rgb"]).all() and np.abs(video["flow"]).max() <= 128
