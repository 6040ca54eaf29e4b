"""List files of the release (§3.2) and class-name files.

A list file has one video per line, space separated:

* 3 columns, `video_path num_frames label` (HMDB51, UCF101, Charades whole-video test list);
* 4 columns, `video_path start_frame num_frames label` (Charades per-clip lists, §7): the clip is
  the frames `start_frame + 1 … start_frame + num_frames` of the video folder (start is 0-based).

`video_path` is relative to the frame (and flow) root. `label` is 0-based; −1 marks an unlabelled
video (Charades test list). Every malformed line is a `ValueError` naming the file and line number:
nothing is skipped silently.
"""

import dataclasses
import os

UNLABELLED = -1


@dataclasses.dataclass(frozen=True)
class VideoEntry:
    """One line of a list file.

    Attributes:
        path: video folder relative to the frame root (e.g. `brush_hair/1`, `Class/v_x.avi`).
        num_frames: number of RGB frames of the video (or clip) the sampler may use.
        label: 0-based class index, or −1 for an unlabelled video.
        start_frame: 0-based offset of the clip in the video folder (4-column lists), else 0.
        line: 1-based line number in `list_file` (0 for entries made in code).
        list_file: the list file the entry comes from ("" for entries made in code).
    """

    path: str
    num_frames: int
    label: int
    start_frame: int = 0
    line: int = 0
    list_file: str = ""

    @property
    def where(self):
        """`file:line` of the entry, for error messages."""
        return f"{self.list_file}:{self.line}" if self.list_file else "<entry made in code>"


def _relative_video_path(raw, dataset_root, where):
    """The video path normalised relative to the root; an error if it leaves the root."""
    if os.path.isabs(raw):
        if dataset_root is None:
            raise ValueError(
                f"{where}: absolute video path {raw!r}; list paths are relative to "
                "the frame root (pass dataset_root to accept absolute paths inside it)"
            )
        raw = os.path.relpath(raw, dataset_root)
    path = os.path.normpath(raw)
    if path == ".." or path.startswith(".." + os.sep) or path == ".":
        root = dataset_root if dataset_root is not None else "the frame root"
        raise ValueError(f"{where}: video path {raw!r} is not a folder inside {root}")
    return path


def _int_field(text, name, where):
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{where}: {name} {text!r} is not an integer") from None


def parse_list_line(text, where, num_columns, num_classes=None, dataset_root=None):
    """One list line → (path, start_frame, num_frames, label); `where` names it in errors."""
    fields = text.split()
    if len(fields) != num_columns:
        hint = (
            "; video paths cannot contain spaces, the list is space separated (release §3.2)"
            if len(fields) > num_columns
            else ""
        )
        raise ValueError(
            f"{where}: expected {num_columns} columns "
            f"('video [start_frame] num_frames label'), got {len(fields)}{hint}: "
            f"{text.strip()!r}"
        )
    path = _relative_video_path(fields[0], dataset_root, where)
    start = _int_field(fields[1], "start_frame", where) if num_columns == 4 else 0
    num_frames = _int_field(fields[-2], "num_frames", where)
    label = _int_field(fields[-1], "label", where)
    if start < 0:
        raise ValueError(f"{where}: negative start_frame {start}")
    if num_frames < 1:
        raise ValueError(f"{where}: num_frames {num_frames} < 1 (an empty or missing video)")
    if label < UNLABELLED:
        raise ValueError(f"{where}: label {label} < -1 (labels are 0-based; -1 = unlabelled)")
    if num_classes is not None and label >= num_classes:
        raise ValueError(f"{where}: label {label} >= num_classes {num_classes}")
    return path, start, num_frames, label


def read_list(path, num_classes=None, dataset_root=None):
    """Reads a 3- or 4-column list file into `VideoEntry`s, in file order.

    Args:
        path: the list file.
        num_classes: if given, a label ≥ num_classes is an error.
        dataset_root: if given, absolute video paths inside it are accepted (stored relative).

    The column count is set by the first non-blank line; every line must have it. Blank lines are
    not videos and are passed over. A duplicate is the same video (3 columns) or the same
    clip, i.e. the same whole line (4 columns: Charades lists hold several clips per video).

    Raises:
        ValueError naming the file and line of the first malformed line: wrong column count,
        non-integer field, negative start, num_frames < 1, label < −1 or ≥ num_classes, duplicate,
        a path that leaves the root.
    """
    entries, seen, num_columns = [], {}, None
    with open(path, encoding="utf-8") as f:
        for line_number, text in enumerate(f, start=1):
            if not text.strip():
                continue
            where = f"{path}:{line_number}"
            if num_columns is None:
                num_columns = len(text.split())
                if num_columns not in (3, 4):  # the column-count error, with the space hint
                    parse_list_line(text, where, 3 if num_columns < 3 else 4)
            video, start, num_frames, label = parse_list_line(text, where, num_columns, num_classes, dataset_root)
            key = video if num_columns == 3 else (video, start, num_frames, label)
            if key in seen:
                raise ValueError(f"{where}: duplicate of line {seen[key]} ({video})")
            seen[key] = line_number
            entries.append(VideoEntry(video, num_frames, label, start, line_number, str(path)))
    return entries


def read_class_names(path):
    """Class names in label order from `actions.txt` (one name per line) or `classInd.txt`.

    `classInd.txt` (UCF101) lines are `index name` with 1-based indices; the file is recognised by
    its first line, and its indices must be exactly 1 … C. Blank lines are passed over. A
    duplicate name or a bad index is a `ValueError` naming file and line.
    """
    with open(path, encoding="utf-8") as f:
        lines = [(n, t.strip()) for n, t in enumerate(f, start=1) if t.strip()]
    if not lines:
        raise ValueError(f"{path}: no class names")
    first = lines[0][1].split()
    indexed = len(first) == 2 and first[0].isdigit()
    names, seen = [], {}
    for expected, (line_number, text) in enumerate(lines, start=1):
        where = f"{path}:{line_number}"
        name = text
        if indexed:
            fields = text.split()
            if len(fields) != 2:
                raise ValueError(f"{where}: expected 'index name' (classInd.txt), got {text!r}")
            index = _int_field(fields[0], "class index", where)
            if index != expected:
                raise ValueError(f"{where}: class index {index}, expected {expected} (1-based, in order)")
            name = fields[1]
        if name in seen:
            raise ValueError(f"{where}: duplicate class name {name!r} (line {seen[name]})")
        seen[name] = line_number
        names.append(name)
    return names
