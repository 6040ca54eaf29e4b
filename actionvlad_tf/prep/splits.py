"""Release list files from the official split files and the extracted frame folders.

The release trains and tests from lists `video num_frames label` (release §3.2), or for Charades
`video start_frame num_frames label` per annotated clip (§7). `num_frames` is the number of RGB
frames in `<frames_dir>/<video>/` (`image_00001.jpg` …), so lists are made after frame extraction.

* UCF101 (`classInd.txt`, `trainlist0N.txt` with 1-based labels, `testlist0N.txt` without
  labels): video paths kept as `Class/v_x.avi` (the `.avi` is part of the folder name, §3.1),
  labels 0-based, lines in the official files' order.
* HMDB51 (`<class>_test_splitN.txt`, one per class, `name.avi flag` with 1 = train, 2 = test,
  0 = unused): videos renamed `<class>/<id>`, id the 1-based line of the video in `AllVideos.txt`,
  the list of all 6766 videos in `ls` order under an en_US locale (§3.1). `hmdb51_collation_key`
  reproduces that order from the names alone (tested against the release's file), so the ids come
  out the same without the release's file. Classes in alphabetical order (`actions.txt`); in each
  list, videos sorted by class, then by original name (byte order), as the release lists.
* Charades (`Charades_v1_train.csv` / `Charades_v1_test.csv`, `actions` = `cXXX start end;…` in
  seconds): video paths `<first character of id>/<id>.mp4`; one 4-column line per action,
  start_frame = ⌊start·fps⌋, num_frames = min(⌊(end − start)·fps⌋, n − start_frame) in floating
  point as written, label XXX, in csv order; the whole-video test list has label −1. This rule
  reproduces 14506 of the 16691 lines of the release's `test_split1_perClip.txt` exactly and all
  but 7 within one frame, with one frame rate fitted per video (where the fit is 30 fps: 4579 of
  4592 exactly). The frame rate is the video's own: 30 for most, also 24, 25, 15, 6, … and
  variable rates such as 16.6, not a fixed 24; so fps = n / `length` (the duration column of the
  official csv files) by default.
"""

import collections
import csv
import dataclasses
import math
import os
import re

import cv2

from actionvlad_tf.atomic import atomic_output
from actionvlad_tf.data.frames import RGB_TEMPLATE
from actionvlad_tf.data.lists import UNLABELLED, read_class_names, read_list
from actionvlad_tf.prep.extraction import VideoReadError, count_frames
from actionvlad_tf.registration import Registry

HMDB51_FLAGS = {"1": "train", "2": "test", "0": None}
# ISO 14651 (glibc) order of ASCII punctuation, which the en_US locale compares only on ties.
_PUNCTUATION_ORDER = " _-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$"


@dataclasses.dataclass
class ListSet:
    """Lists made for a dataset: file name → rows (tuples, one per line), class names, and the
    (video, reason) pairs skipped under a skip policy."""

    lists: dict = dataclasses.field(default_factory=dict)
    class_names: list = dataclasses.field(default_factory=list)
    skipped: list = dataclasses.field(default_factory=list)

    def report(self):
        lines = [f"{name}: {len(rows)} lines" for name, rows in self.lists.items()]
        lines.append(f"skipped {len(self.skipped)}")
        lines += [f"skipped {video}: {reason}" for video, reason in self.skipped]
        return "\n".join(lines)


def write_list(path, rows, separator=" "):
    """Writes rows as lines of separator-joined fields, atomically."""
    with atomic_output(path) as temporary, open(temporary, "w", encoding="utf-8") as f:
        f.writelines(separator.join(str(v) for v in row) + "\n" for row in rows)


def write_list_set(list_set, output_dir):
    """Writes every list and `actions.txt` (class names in label order) into output_dir."""
    for name, rows in list_set.lists.items():
        write_list(os.path.join(output_dir, name), rows)
    if list_set.class_names:
        write_list(os.path.join(output_dir, "actions.txt"), [(n,) for n in list_set.class_names])


def _read_lines(path):
    """(line number, stripped text) of the non-blank lines; CRLF files (UCF101's) are fine."""
    with open(path, encoding="utf-8") as f:
        return [(n, t.strip()) for n, t in enumerate(f, start=1) if t.strip()]


class _FrameCounter:
    """Counts frames per video once; missing or empty folders raise, or are recorded if skipping."""

    def __init__(self, frames_dir, template, skip_missing):
        self.frames_dir, self.template, self.skip_missing = frames_dir, template, skip_missing
        self.counts, self.skipped = {}, []

    def __call__(self, video):
        if video not in self.counts:
            folder = os.path.join(self.frames_dir, video)
            try:
                count = count_frames(folder, self.template)
                if count == 0:
                    raise VideoReadError(f"{folder}: no frame named like {self.template % 1}")
            except VideoReadError as error:
                if not self.skip_missing:
                    raise
                self.skipped.append((video, str(error)))
                count = None
            self.counts[video] = count
        return self.counts[video]

    def rows(self, videos_and_labels):
        """(video, label) pairs → (video, num_frames, label) rows, skipped videos left out."""
        return [(v, n, label) for v, label in videos_and_labels if (n := self(v)) is not None]


# ----------------------------------------------------------------------------- UCF101


def read_ucf101_split(split_dir, split):
    """(train, test, class_names) of UCF101 split N; train/test are (video, 0-based label) lists."""
    class_names = read_class_names(os.path.join(split_dir, "classInd.txt"))
    labels = {name: label for label, name in enumerate(class_names)}
    parts = {}
    for part, file_name in (("train", f"trainlist{split:02d}.txt"), ("test", f"testlist{split:02d}.txt")):
        path = os.path.join(split_dir, file_name)
        videos = []
        for number, text in _read_lines(path):
            fields, where = text.split(), f"{path}:{number}"
            folder_class = fields[0].split("/")[0]
            if len(fields) not in (1, 2) or folder_class not in labels:
                raise ValueError(
                    f"{where}: expected 'Class/v_x.avi [label]' with a class of classInd.txt, got {text!r}"
                )
            label = labels[folder_class]
            if len(fields) == 2 and fields[1] != str(label + 1):
                raise ValueError(f"{where}: label {fields[1]} but {folder_class} is class {label + 1} in classInd.txt")
            videos.append((fields[0], label))
        parts[part] = videos
    return parts["train"], parts["test"], class_names


# ----------------------------------------------------------------------------- HMDB51


def hmdb51_collation_key(path):
    """Sort key giving the en_US locale order of `ls` that `AllVideos.txt` follows.

    Levels as glibc compares: letters and digits ignoring case and punctuation; then case
    (lowercase first); then every character, punctuation in ISO 14651 order before letters.
    """
    alphanumeric = [c for c in path if c.isalnum()]
    return (
        "".join(alphanumeric).lower(),
        [c.isupper() for c in alphanumeric],
        [(1, c.lower()) if c.isalnum() else (0, _PUNCTUATION_ORDER.find(c)) for c in path],
    )


def _hmdb51_split_files(split_dir, split):
    """{class name: path} of `<class>_test_split<N>.txt` in split_dir, classes sorted."""
    pattern = re.compile(rf"^(.+)_test_split{split}\.txt$")
    found = {m.group(1): os.path.join(split_dir, f) for f in os.listdir(split_dir) if (m := pattern.match(f))}
    if not found:
        raise FileNotFoundError(f"{split_dir}: no HMDB51 split files <class>_test_split{split}.txt")
    return dict(sorted(found.items()))


def _read_hmdb51_split_file(path, class_name):
    """[(class/name.avi, flag)] of one class's split file; a bad line names file and line."""
    rows = []
    for number, text in _read_lines(path):
        fields = text.split()
        if len(fields) != 2 or fields[1] not in HMDB51_FLAGS:
            raise ValueError(f"{path}:{number}: expected 'video.avi 0|1|2', got {text!r}")
        rows.append((f"{class_name}/{fields[0]}", fields[1]))
    return rows


def hmdb51_split_numbers(split_dir):
    """The split numbers N with files `<class>_test_splitN.txt` in split_dir."""
    numbers = {int(m.group(1)) for f in os.listdir(split_dir) if (m := re.match(r"^.+_test_split(\d+)\.txt$", f))}
    return sorted(numbers)


def hmdb51_all_videos(split_dir):
    """Every video named in the split files, `class/name.avi`, in `AllVideos.txt` order."""
    videos = set()
    for split in hmdb51_split_numbers(split_dir):
        for class_name, path in _hmdb51_split_files(split_dir, split).items():
            videos.update(v for v, _ in _read_hmdb51_split_file(path, class_name))
    return sorted(videos, key=hmdb51_collation_key)


def read_all_videos(path):
    """The release's `AllVideos.txt`: `class/name.avi` per line, the id is the line number."""
    return [text for _, text in _read_lines(path)]


def hmdb51_renaming(all_videos):
    """{class/name.avi: class/id}, id the 1-based position in `all_videos` (release §3.1)."""
    return {video: f"{video.split('/')[0]}/{i}" for i, video in enumerate(all_videos, start=1)}


def read_hmdb51_split(split_dir, split, renaming):
    """(train, test, class_names) of HMDB51 split N with videos renamed by `renaming`."""
    files = _hmdb51_split_files(split_dir, split)
    class_names = list(files)
    parts = {"train": [], "test": []}
    for label, (class_name, path) in enumerate(files.items()):
        for video, flag in sorted(_read_hmdb51_split_file(path, class_name)):
            if HMDB51_FLAGS[flag] is None:
                continue
            if video not in renaming:
                raise ValueError(f"{path}: {video} is not in the list of all videos")
            parts[HMDB51_FLAGS[flag]].append((renaming[video], label))
    return parts["train"], parts["test"], class_names


# ----------------------------------------------------------------------------- Charades


@dataclasses.dataclass(frozen=True)
class CharadesVideo:
    """One row of a Charades csv: id, actions [(label, start s, end s)], duration (s) or None."""

    video_id: str
    actions: tuple
    length: float | None

    @property
    def path(self):
        """The release's frame folder, `<first character>/<id>.mp4` (release §7)."""
        return f"{self.video_id[0]}/{self.video_id}.mp4"


def read_charades_csv(path):
    """The videos of `Charades_v1_{train,test}.csv`; a malformed action names file and line."""
    videos = []
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if not {"id", "actions"} <= set(reader.fieldnames or ()):
            raise ValueError(f"{path}: expected the columns 'id' and 'actions' of a Charades csv")
        for row in reader:
            where = f"{path}:{reader.line_num}"
            actions = []
            for action in filter(None, row["actions"].split(";")):
                fields = action.split()
                if len(fields) != 3 or not re.fullmatch(r"c\d{3}", fields[0]):
                    raise ValueError(f"{where}: action {action!r} is not 'cXXX start end'")
                actions.append((int(fields[0][1:]), float(fields[1]), float(fields[2])))
            length = float(row["length"]) if row.get("length") else None
            videos.append(CharadesVideo(row["id"], tuple(actions), length))
    return videos


def charades_clip(start, end, fps, num_frames):
    """(start_frame, clip_frames) of an action [start, end] s at fps in a video of num_frames.

    The length is ⌊(end − start)·fps⌋, not ⌊end·fps⌋ − start_frame: the release's lines say so
    (e.g. 7.7–15.7 s at 30 fps is 239 frames, as (15.7 − 7.7)·30 = 239.99… in floating point).
    """
    first = math.floor(start * fps)
    return first, min(math.floor((end - start) * fps), num_frames - first)


def charades_lists(videos, count, fps, clip_list=True, whole_list=False, video_dir=None):
    """Rows of the per-clip list (4 columns) and/or the whole-video list (label −1).

    Args:
        videos: CharadesVideo rows (`read_charades_csv`).
        count: video path → frame count, or None for a skipped video.
        fps: "length" (n / the csv's duration), "video" (the frame rate in the header of
            `<video_dir>/<id>.mp4`) or a number (e.g. 24 for the official 24 fps frame dumps).
    Returns:
        (clip_rows, whole_rows, skipped): clips with no frame inside the video are skipped and
        named with the reason.
    """
    clips, whole, skipped = [], [], []
    for video in videos:
        num_frames = count(video.path)
        if num_frames is None:
            continue
        if whole_list:
            whole.append((video.path, num_frames, UNLABELLED))
        if not clip_list or not video.actions:
            continue
        rate = _charades_fps(video, fps, num_frames, video_dir)
        for label, start, end in video.actions:
            first, length = charades_clip(start, end, rate, num_frames)
            if length < 1:
                skipped.append(
                    (
                        video.path,
                        f"action c{label:03d} {start}-{end} s has no frame among its {num_frames} at {rate:.3f} fps",
                    )
                )
                continue
            clips.append((video.path, first, length, label))
    return clips, whole, skipped


def _charades_fps(video, fps, num_frames, video_dir):
    if fps == "length":
        if not video.length:
            raise ValueError(
                f"Charades video {video.video_id}: the csv has no 'length' column "
                "(duration); choose fps 'video' with the videos, or a number"
            )
        return num_frames / video.length
    if fps == "video":
        path = os.path.join(video_dir or "", f"{video.video_id}.mp4")
        capture = cv2.VideoCapture(path)
        rate = capture.get(cv2.CAP_PROP_FPS) if capture.isOpened() else 0
        capture.release()
        if not rate > 0:
            raise VideoReadError(f"{path}: cannot read the frame rate of this video")
        return rate
    return float(fps)


def charades_video_list(videos):
    """(`id.mp4`, release folder) pairs: the renaming list for `extract_frames`."""
    return [(f"{v.video_id}.mp4", v.path) for v in videos]


# ----------------------------------------------------------------------------- all datasets


def make_lists(
    dataset,
    split_dir,
    frames_dir,
    splits=None,
    frame_template=RGB_TEMPLATE,
    skip_missing=False,
    all_videos=None,
    charades_fps="length",
    charades_video_dir=None,
):
    """The release's lists for a dataset, frame counts read from `frames_dir`.

    Args:
        dataset: "ucf101", "hmdb51" or "charades".
        split_dir: the official split folder (UCF101 `ucfTrainTestlist`, HMDB51
            `testTrainMulti_7030_splits`, or the folder of the Charades csv files).
        frames_dir: root of the extracted frame folders (`<frames_dir>/<video>/image_%05d.jpg`).
        splits: split numbers (default: all found; Charades has split 1 only).
        skip_missing: False: a video without frames is an error; True: it is left out of the
            lists and named in `ListSet.skipped`.
        all_videos: HMDB51 only: the release's `AllVideos.txt` (default: rebuilt from the splits).
        charades_fps, charades_video_dir: the frame rate of the Charades clips (`charades_lists`).
    Returns:
        A ListSet (file name → rows; class names; skipped).
    """
    make = LIST_MAKERS.lookup(dataset, flag="--dataset")
    counter = _FrameCounter(frames_dir, frame_template, skip_missing)
    result = ListSet()
    make(
        result,
        split_dir,
        counter,
        splits,
        all_videos=all_videos,
        charades_fps=charades_fps,
        charades_video_dir=charades_video_dir,
    )
    result.skipped = counter.skipped + result.skipped
    return result


def _charades_lists(result, split_dir, counter, splits, charades_fps="length", charades_video_dir=None, **_):
    del splits  # Charades has split 1 only
    for part, file_name in (("train", "Charades_v1_train.csv"), ("test", "Charades_v1_test.csv")):
        path = os.path.join(split_dir, file_name)
        if not os.path.isfile(path):
            continue
        clips, whole, skipped = charades_lists(
            read_charades_csv(path),
            counter,
            charades_fps,
            clip_list=True,
            whole_list=part == "test",
            video_dir=charades_video_dir,
        )
        result.skipped += skipped
        if part == "train":
            result.lists["train_split1.txt"] = clips
        else:
            result.lists["test_split1.txt"] = whole
            result.lists["test_split1_perClip.txt"] = clips
    if not result.lists:
        raise FileNotFoundError(f"{split_dir}: no Charades_v1_train.csv or Charades_v1_test.csv")


def _ucf101_lists(result, split_dir, counter, splits, **_):
    found = sorted(int(m.group(1)) for f in os.listdir(split_dir) if (m := re.match(r"^trainlist(\d+)\.txt$", f)))
    for split in splits or found:
        train, test, result.class_names = read_ucf101_split(split_dir, split)
        result.lists[f"train_split{split}.txt"] = counter.rows(train)
        result.lists[f"test_split{split}.txt"] = counter.rows(test)


def _hmdb51_lists(result, split_dir, counter, splits, all_videos=None, **_):
    videos = read_all_videos(all_videos) if all_videos else hmdb51_all_videos(split_dir)
    renaming = hmdb51_renaming(videos)
    for split in splits or hmdb51_split_numbers(split_dir):
        train, test, result.class_names = read_hmdb51_split(split_dir, split, renaming)
        result.lists[f"train_split{split}.txt"] = counter.rows(train)
        result.lists[f"test_split{split}.txt"] = counter.rows(test)


# The list makers of `make_lists` (and `data_prep/make_lists.py --dataset`): dataset name →
# make(result ListSet, split_dir, frame counter, splits, **options) filling result.lists.
LIST_MAKERS = Registry("list maker", {"ucf101": _ucf101_lists, "hmdb51": _hmdb51_lists, "charades": _charades_lists})


def video_renaming_list(dataset, split_dir, all_videos=None):
    """(video file relative to the dataset's video folder, frame folder name) pairs for datasets
    whose release renames videos (HMDB51, Charades); `extract_frames --videos=` reads them."""
    if dataset == "hmdb51":
        videos = read_all_videos(all_videos) if all_videos else hmdb51_all_videos(split_dir)
        return list(hmdb51_renaming(videos).items())
    if dataset == "charades":
        pairs = []
        for file_name in ("Charades_v1_train.csv", "Charades_v1_test.csv"):
            path = os.path.join(split_dir, file_name)
            if os.path.isfile(path):
                pairs += charades_video_list(read_charades_csv(path))
        return pairs
    raise ValueError(f"dataset {dataset!r} keeps its video names: extract from its video folder")


# ----------------------------------------------------------------------------- --check


@dataclasses.dataclass
class ListCheck:
    """Comparison of a generated list with a release list (`check_list`)."""

    generated: str
    release: str
    tolerance: int
    num_generated: int = 0
    num_release: int = 0
    missing: list = dataclasses.field(default_factory=list)  # in the release list only
    extra: list = dataclasses.field(default_factory=list)  # in the generated list only
    label_mismatches: list = dataclasses.field(default_factory=list)
    frame_mismatches: list = dataclasses.field(default_factory=list)  # beyond the tolerance
    frame_differences: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    same_order: bool = True

    @property
    def ok(self):
        return not (self.missing or self.extra or self.label_mismatches or self.frame_mismatches or not self.same_order)

    def report(self, examples=5):
        def some(items):
            return ", ".join(str(i) for i in items[:examples]) + (", …" if len(items) > examples else "")

        differences = ", ".join(f"{d:+d}: {n}" for d, n in sorted(self.frame_differences.items()))
        lines = [
            f"{self.generated} vs release {self.release}: {'OK' if self.ok else 'MISMATCH'}",
            f"  lines: generated {self.num_generated}, release {self.num_release}",
            f"  frame-count differences (generated − release): {differences or 'none'}",
        ]
        for title, items in (
            ("missing (release only)", self.missing),
            ("extra (generated only)", self.extra),
            ("label mismatches", self.label_mismatches),
            (f"frame counts beyond ±{self.tolerance}", self.frame_mismatches),
        ):
            if items:
                lines.append(f"  {title}: {len(items)}: {some(items)}")
        if not self.same_order:
            lines.append("  order differs from the release list (logits rows follow list order)")
        return "\n".join(lines)


def _keyed(entries):
    """{(video, k): entry}, k counting the video's earlier lines (Charades: several clips)."""
    seen, keyed = collections.Counter(), {}
    for entry in entries:
        keyed[(entry.path, seen[entry.path])] = entry
        seen[entry.path] += 1
    return keyed


def check_list(generated, release, tolerance=1):
    """Compares a generated list with a release list: same videos (and clips), same labels, frame
    counts (and clip starts) within ±tolerance, same order. Returns a ListCheck."""
    ours, theirs = _keyed(read_list(generated)), _keyed(read_list(release))
    check = ListCheck(str(generated), str(release), tolerance, len(ours), len(theirs))
    check.missing = [k[0] for k in theirs if k not in ours]
    check.extra = [k[0] for k in ours if k not in theirs]
    for key in (k for k in theirs if k in ours):
        mine, reference = ours[key], theirs[key]
        if mine.label != reference.label:
            check.label_mismatches.append(f"{key[0]} ({mine.label} vs {reference.label})")
        difference = mine.num_frames - reference.num_frames
        check.frame_differences[difference] += 1
        if abs(difference) > tolerance or abs(mine.start_frame - reference.start_frame) > tolerance:
            check.frame_mismatches.append(
                f"{key[0]} (start {mine.start_frame} vs {reference.start_frame}, "
                f"frames {mine.num_frames} vs {reference.num_frames})"
            )
    common = [k for k in theirs if k in ours]
    check.same_order = common == [k for k in ours if k in theirs]
    return check
