"""Reliability (docs/reliability.md): the bad-input corpus (`bad_inputs.py`) through the input pipeline under
both error policies, list lines that no policy skips (and a property test of the list parser),
paths with spaces and non-ASCII characters, unwritable and full output folders, safe-mode `.keras`
files and the absence of unpickling. What other test files already show is referenced in
docs/reliability.md, not repeated here."""

import json
import os
import pathlib
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from bad_inputs import NUM_CLASSES, SMALL, VIDEOS, L, T, write_corpus
from frame_folders import write_list
from hypothesis import given, settings
from hypothesis import strategies as st

from actionvlad_tf.data.frames import DatasetReport
from actionvlad_tf.data.lists import VideoEntry, read_list
from actionvlad_tf.data.video_input import make_video_dataset
from actionvlad_tf.export.saved_model import export_saved_model, late_fuse
from actionvlad_tf.models import build_actionvlad, build_two_stream
from actionvlad_tf.prep import extraction
from actionvlad_tf.prep.synthetic import write_video
from actionvlad_tf.training import TrainConfig, make_strategy, train

REPO = pathlib.Path(__file__).resolve().parents[1]
MODALITIES = ("rgb", "flow", "rgb+flow")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus"))


def _dataset(list_file, root, modality, **kwargs):
    return make_video_dataset(
        list_file,
        root,
        modality=modality,
        frames_per_video=T,
        flow_stack=L,
        num_classes=NUM_CLASSES,
        return_metadata=True,
        **SMALL,
        **kwargs,
    )


def _video_arrays(video):
    return list(video.values()) if isinstance(video, dict) else [video]


# ----------------------------------------------------------------------------- skip policy


@pytest.mark.parametrize("modality", MODALITIES)
def test_skip_policy_keeps_the_good_videos_and_names_every_bad_one(corpus, modality):
    root, list_file = corpus
    report = DatasetReport()
    batches = list(_dataset(list_file, root, modality, on_error="skip", report=report))
    kept = [b[2]["path"][0].numpy().decode() for b in batches]
    assert kept == [v.path for v in VIDEOS if modality not in v.bad_for]
    bad = [(i, v) for i, v in enumerate(VIDEOS) if modality in v.bad_for]
    assert [(s.index, s.path) for s in report.skipped] == [(i, v.path) for i, v in bad]
    for skipped, (i, video) in zip(report.skipped, bad):
        assert skipped.where == f"{list_file}:{i + 1}"
        assert (video.damaged_file or "fewer than one stack") in skipped.reason
    summary = report.summary()
    assert summary.startswith(f"{len(bad)} video(s) skipped")
    assert all(v.path in summary for _, v in bad)  # non-ASCII names are printed as they are
    for video, _, _ in batches:
        assert all(np.isfinite(a.numpy()).all() for a in _video_arrays(video))


def test_training_on_the_corpus_never_yields_a_bad_video_or_a_nan(corpus):
    root, list_file = corpus
    report = DatasetReport()
    dataset = _dataset(
        list_file, root, "rgb+flow", on_error="skip", report=report, training=True, shuffle_seed=0, batch_size=2
    )
    good = {v.path.encode() for v in VIDEOS if "rgb+flow" not in v.bad_for}
    for video, _, metadata in dataset.take(6):  # three epochs of the four good videos
        assert set(metadata["path"].numpy()) <= good
        assert all(np.isfinite(a.numpy()).all() for a in _video_arrays(video))
    assert len(report) == sum("rgb+flow" in v.bad_for for v in VIDEOS)


# ----------------------------------------------------------------------------- raise policy

BAD_CASES = [(v, m) for v in VIDEOS for m in ("rgb", "flow") if m in v.bad_for]


@pytest.mark.parametrize("video, modality", BAD_CASES, ids=[f"{v.path}-{m}" for v, m in BAD_CASES])
def test_raise_policy_names_the_video_its_list_line_and_the_file(corpus, tmp_path, video, modality):
    """A good video first, the bad one at line 2: the error comes when the bad one is read (or
    before any read, for a video too short to sample) and names what to fix."""
    root, _ = corpus
    list_file = write_list(tmp_path / "one bad ü.txt", ["good/v2 14 0", video.line(1)])
    if not video.damage:
        expected, pattern = ValueError, rf"{video.path} \({list_file}:2\).*fewer than one stack"
    elif video.damage == "delete":  # without `validate`, TF's NotFoundError names the path
        expected, pattern = tf.errors.NotFoundError, re.escape(str(root / video.path / video.damaged_file))
    else:
        expected = tf.errors.InvalidArgumentError
        pattern = rf"bad input in video\] \[{video.path}\] \[\(\] \[{list_file}:2\].*{video.damaged_file}"
    with pytest.raises(expected, match=pattern):
        for _ in _dataset(list_file, root, modality):
            pass


BAD_LINES = {
    "2 columns": ("good/v2 14", "expected 3 columns .* got 2"),
    "5 columns": ("good/v2 0 14 1 2", "expected 3 columns .* got 5.*cannot contain spaces"),
    "space in the path": ("naïve/vidéo 1 14 0", "expected 3 columns .* got 4.*cannot contain spaces"),
    "non-integer label": ("short/v 2 walk", "label 'walk' is not an integer"),
    "label >= classes": (f"short/v 2 {NUM_CLASSES}", f"label {NUM_CLASSES} >= num_classes {NUM_CLASSES}"),
    "duplicate video": ("naïve/vidéo_1 14 1", "duplicate of line 1 \\(naïve/vidéo_1\\)"),
    "'..' in the path": ("../outside 14 0", "video path '../outside' is not a folder inside"),
    "absolute path": ("/etc/passwd 14 0", "absolute video path '/etc/passwd'"),
}


@pytest.mark.parametrize("case", BAD_LINES)
@pytest.mark.parametrize("on_error", ["raise", "skip"])
def test_malformed_list_lines_are_errors_under_both_policies(corpus, tmp_path, case, on_error):
    """The skip policy skips unreadable videos, never list lines: a list that says something else
    than meant is an error before any work, naming file and line (test_lists.py has the parser's
    own cases)."""
    root, _ = corpus
    line, message = BAD_LINES[case]
    list_file = write_list(tmp_path / "list ü.txt", ["naïve/vidéo_1 14 0", line])
    report = DatasetReport() if on_error == "skip" else None
    with pytest.raises(ValueError, match=rf"{re.escape(str(list_file))}:2: {message}"):
        _dataset(list_file, root, "rgb", on_error=on_error, report=report)


_NAME = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp"), blacklist_characters="/\\\x85"),
    min_size=1,
    max_size=8,
)
_ENTRY = st.tuples(
    st.lists(_NAME.filter(lambda n: n not in (".", "..")), min_size=1, max_size=3),
    st.integers(1, 10**6),
    st.integers(-1, NUM_CLASSES - 1),
)


@settings(max_examples=100, deadline=None)
@given(
    entries=st.lists(_ENTRY, min_size=1, max_size=6, unique_by=lambda e: "/".join(e[0])),
    noise=st.lists(st.text(max_size=30), max_size=3),
)
def test_property_list_parser_round_trips_valid_lines_and_names_the_first_bad_one(tmp_path_factory, entries, noise):
    """Valid lines (any non-space Unicode path) read back exactly; appending arbitrary text
    gives back the same entries or a ValueError that names the list file and a line number."""
    lines = [f"{'/'.join(parts)} {n} {label}" for parts, n, label in entries]
    list_file = tmp_path_factory.mktemp("lists") / "list.txt"
    list_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    expected = [
        VideoEntry("/".join(parts), n, label, 0, i + 1, str(list_file)) for i, (parts, n, label) in enumerate(entries)
    ]
    assert read_list(list_file, NUM_CLASSES) == expected
    with open(list_file, "a", encoding="utf-8", newline="") as f:
        f.write("\n".join(noise))
    try:
        parsed = read_list(list_file, NUM_CLASSES)
    except ValueError as error:
        assert re.match(rf"{re.escape(str(list_file))}:\d+: ", str(error))
    else:
        assert parsed[: len(entries)] == expected
        assert all(1 <= e.num_frames and -1 <= e.label < NUM_CLASSES for e in parsed)


# ----------------------------------------------------------------------------- data preparation


def test_video_files_with_spaces_and_non_ascii_names_extract_and_rename(tmp_path):
    """OpenCV opens UTF-8 paths; a folder name with a space would not fit a list line, so the
    video list renames it (`path<TAB>name`) and the frames are read back by the pipeline."""
    frames = np.random.default_rng(0).integers(0, 256, (5, 24, 32, 3), np.uint8)
    source = tmp_path / "vidéos ü" / "Brush hair" / "clip été 1.avi"
    source.parent.mkdir(parents=True)
    write_video(str(source), frames)
    jobs, _ = extraction.find_videos(str(tmp_path / "vidéos ü"))
    assert [j.name for j in jobs] == ["Brush hair/clip été 1.avi"]
    video_list = tmp_path / "videos.txt"
    video_list.write_text("Brush hair/clip été 1.avi\tbrush_hair/clip_été_1\n", encoding="utf-8")
    jobs = extraction.read_video_list(str(video_list), str(tmp_path / "vidéos ü"))
    out = tmp_path / "frames ü"
    summary = extraction.extract_frames(jobs, out, progress=False)
    assert summary.done == ["brush_hair/clip_été_1"] and summary.ok
    list_file = write_list(tmp_path / "list.txt", ["brush_hair/clip_été_1 5 0"])
    ((video, _, metadata),) = list(
        make_video_dataset(list_file, out, frames_per_video=3, return_metadata=True, **SMALL)
    )
    assert metadata["path"][0].numpy().decode() == "brush_hair/clip_été_1"
    assert video.shape == (1, 3, 16, 16, 3)


def test_video_list_names_cannot_leave_the_output_folder(tmp_path):
    video_list = tmp_path / "videos.txt"
    video_list.write_text("clip.avi\t../escaped\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"clip.avi: output name '../escaped' leaves the output"):
        extraction.find_videos(str(video_list))


# ----------------------------------------------------------------------------- unwritable outputs


def _tiny_classifier(strategy):
    with strategy.scope():
        inputs = keras.Input((3,))
        return keras.Model(inputs, keras.layers.Dense(2)(inputs))


def _extract(output):
    return extraction.extract_frames([extraction.Job("never_opened.avi", "v")], output, progress=False)


def _train(output):
    strategy = make_strategy()
    dataset = tf.data.Dataset.from_tensors((tf.zeros([1, 3]), tf.zeros([1], tf.int32))).repeat()
    return train(
        _tiny_classifier(strategy),
        dataset,
        TrainConfig(train_dir=str(output), max_number_of_steps=1, progress=False),
        strategy=strategy,
    )


def _export(output):
    model = build_actionvlad(NUM_CLASSES, frames_per_video=T, image_size=32, num_clusters=4, weight_decay=0)
    return export_saved_model(model, output, [f"c{i}" for i in range(NUM_CLASSES)])


def _eval_entry_point(output):
    """eval.py checks --results_dir before reading lists or weights (the bogus ones here)."""
    run = subprocess.run(
        [
            sys.executable,
            str(REPO / "experiments" / "eval.py"),
            "--checkpoint_path=nowhere",
            "--dataset_list_dir=nowhere",
            f"--results_dir={output}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=output.parent.parent,
        env={**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert run.returncode != 0
    raise OSError(run.stderr.strip().splitlines()[-1])


WRITERS = {
    "extract_frames": (_extract, "output folder"),
    "train": (_train, "train_dir"),
    "export_saved_model": (_export, "export_dir"),
    "eval.py": (_eval_entry_point, "--results_dir"),
}


def _unwritable(tmp_path, kind):
    if kind == "under a regular file":
        blocker = tmp_path / "a file"
        blocker.write_text("not a folder")
        return blocker / "out"
    if os.geteuid() == 0:
        pytest.skip("running as root: chmod 0o500 does not stop root from writing")
    folder = tmp_path / "read-only"
    folder.mkdir(mode=0o500)
    return folder / "out"


@pytest.mark.parametrize("kind", ["under a regular file", "read-only parent"])
@pytest.mark.parametrize("writer", WRITERS)
def test_unwritable_output_folder_fails_before_any_work(tmp_path, writer, kind):
    output = _unwritable(tmp_path, kind)
    run, what = WRITERS[writer]
    with pytest.raises(OSError, match=rf"{re.escape(what)} {re.escape(str(output))} is not writable"):
        run(output)
    assert sorted(p.name for p in tmp_path.iterdir()) == [output.parent.name]  # nothing written


FULL_DISK = r"""
import json, os, resource, signal, sys
import numpy as np
from actionvlad_tf.atomic import write_json
from actionvlad_tf.evaluation.logits_io import write_logits
from actionvlad_tf.export.saved_model import save_keras_atomic
from actionvlad_tf.models import build_actionvlad
from actionvlad_tf.prep import extraction
from actionvlad_tf.prep.synthetic import write_video
out = sys.argv[1]
model = build_actionvlad(4, frames_per_video=3, image_size=32, num_clusters=4, weight_decay=0)
video = os.path.join(out, "clip.avi")
write_video(video, np.random.default_rng(0).integers(0, 256, (3, 192, 192, 3), np.uint8))
writers = {
    "logits.h5": lambda v: write_logits(
        os.path.join(out, "logits.h5"), v + np.random.rand(200, 1000).astype(np.float32)
    ),
    "results.json": lambda v: write_json(os.path.join(out, "results.json"), {"v": [v] * 20000}),
    "model.keras": lambda v: save_keras_atomic(model, os.path.join(out, "model.keras")),
}
for writer in writers.values():
    writer(0.0)
before = {f: open(os.path.join(out, f), "rb").read() for f in writers}
# The disk fills up: writes past 20 kB fail (EFBIG, as ENOSPC would) instead of killing the process.
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (20000, resource.RLIM_INFINITY))
errors = {}
for name, writer in writers.items():
    try:
        writer(1.0)
    except Exception as error:
        errors[name] = f"{type(error).__name__}: {error}"
summary = extraction.extract_frames([extraction.Job(video, "clip.avi")], os.path.join(out, "frames"), progress=False)
errors["frames"] = summary.report()
print(json.dumps({"errors": errors, "kept": all(open(os.path.join(out, f), "rb").read() == b
                                                for f, b in before.items()),
                  "files": sorted(os.listdir(out)), "frames": os.listdir(os.path.join(out, "frames"))}),
      flush=True)
os._exit(0)  # HDF5 crashes at interpreter exit when it frees the failed file's handles
"""


def test_full_disk_fails_the_write_and_keeps_the_previous_files(tmp_path):
    """A disk that fills during a write (simulated with a file-size limit, in a subprocess):
    every writer raises, the previous logits, results and model stay as they were, and neither
    a temporary file nor a partial frame folder is left to be trusted."""
    run = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    errors = result["errors"]
    assert set(errors) == {"logits.h5", "results.json", "model.keras", "frames"}
    for name in ("logits.h5", "results.json", "model.keras"):  # each error names its file
        assert errors[name].startswith("OSError") and "File too large" in errors[name], errors
        assert str(tmp_path / name) in errors[name], errors
    assert "failed 1" in errors["frames"] and "FAILED clip.avi" in errors["frames"]
    assert "File too large: '" in errors["frames"] and ".partial/image_00001.jpg'" in errors["frames"]
    assert result["kept"]
    assert result["files"] == ["clip.avi", "frames", "logits.h5", "model.keras", "results.json"]
    assert result["frames"] == []


# ----------------------------------------------------------------------------- safety


def _small_models():
    common = dict(frames_per_video=T, image_size=32, num_clusters=4, weight_decay=0)
    rgb = build_actionvlad(NUM_CLASSES, **common)
    flow = build_actionvlad(NUM_CLASSES, modality="flow", name="flow_actionvlad", **common)
    return {
        "rgb ActionVLAD": rgb,
        "two-stream concat": build_two_stream(NUM_CLASSES, fusion="concat", **common),
        "late_fuse export": late_fuse(rgb, flow),
    }


def _inputs(model, rng):
    """Random inputs in the model's input structure (a dict for two streams)."""
    return tf.nest.map_structure(
        lambda t: rng.normal(0, 50, [1 if d is None else d for d in t.shape]).astype(np.float32), model.input
    )


def test_keras_files_of_every_model_kind_load_in_safe_mode(tmp_path):
    """No Lambda layer or pickled Python: `safe_mode=True` (Keras' default) loads them all
    (BN-Inception's frozen-BN model: test_bn_inception.py, loaded with the default safe mode)."""
    rng = np.random.default_rng(0)
    for kind, model in _small_models().items():
        path = tmp_path / f"{kind.replace(' ', '_')}.keras"
        model.save(path)
        reloaded = keras.saving.load_model(path, safe_mode=True)
        inputs = _inputs(model, rng)
        np.testing.assert_allclose(
            reloaded.predict(inputs, verbose=0), model.predict(inputs, verbose=0), rtol=1e-5, atol=1e-5, err_msg=kind
        )


UNPICKLING = re.compile(
    r"allow_pickle\s*=\s*True|pickle\.(load|Unpickler)|\bUnpickler\b|import pickle"
    r"|marshal\.load|safe_mode\s*=\s*False|enable_unsafe_deserialization"
)
# The release's own pickles, each through an explicit call that warns (release §5, TSN weights).
EXPLICIT_UNPICKLERS = {"actionvlad_tf/convert/release_ckpt.py", "actionvlad_tf/models/bn_inception.py"}


def test_nothing_unpickles_outside_the_explicit_release_converters():
    """Every np.load defaults to allow_pickle=False and every Keras load to safe mode; a new
    unpickling call outside the two release converters fails this test (load_centers' refusal
    of a pickled object array is in test_kmeans.py)."""
    found = {}
    for folder in ("actionvlad_tf", "experiments", "data_prep"):
        for path in sorted((REPO / folder).rglob("*.py")):
            hits = UNPICKLING.findall(path.read_text(encoding="utf-8"))
            if hits:
                found[str(path.relative_to(REPO))] = hits
    assert set(found) == EXPLICIT_UNPICKLERS, found
