"""The bad-input corpus of docs/reliability.md, written by the tests into their tmp_path (nothing is stored).

A dataset root whose name holds a space and non-ASCII characters, with frame and flow folders
(release layout §3.1, `frame_folders.write_video`) and a list (§3.2) of every kind of video:

| video | on disk | rgb (T=3) | flow (T=3, L=10) |
|---|---|---|---|
| naïve/vidéo_1 | 14 frames, non-ASCII path | read | read |
| good/v2 | 14 frames | read | read |
| short/v | 2 frames (< T) | read, frames repeat (§3.3) | error: < one stack |
| short_flow/v | 12 frames (< T + L) | read | read, stacks repeat (§3.3) |
| corrupt/vidéo | image_00001 is not a JPEG | error | read |
| truncated/v | image_00007 cut in half | error | read (rgb+flow reads frames 1–3) |
| zero/v | image_00013 has zero bytes | error | read |
| missing_flow/v | flow_y_00005 deleted | read | error |
| zero_flow/v | flow_x_00002 has zero bytes | read | error |

With T = 3 and 14 frames the RGB sampler reads frames 1, 7 and 13 and the flow sampler the stacks
1–10, 2–11 and 3–12 (`sampling.frame_numbers`); rgb+flow pairs RGB frames 1, 2 and 3 with those
stacks (§3.3). A damaged file is thus read, or, zero-byte or missing, found by the up-front scan of
every listed file (`validate`, implied by the skip policy); a truncated frame that is never sampled
(truncated/v in rgb+flow) is harmless and is not reported.
"""

import dataclasses

from frame_folders import write_list, write_video

ROOT_NAME = "frames root ü"  # a space and a non-ASCII character in the dataset root's path
T, L, NUM_CLASSES = 3, 10, 4
SMALL = {"image_size": 16, "resize_shape": (20, 24)}


@dataclasses.dataclass(frozen=True)
class Video:
    path: str
    num_frames: int
    damaged_file: str = ""  # the file the damage is done to
    damage: str = ""  # "garbage", "truncate", "empty" or "delete"
    bad_for: tuple = ()  # the modalities of which it cannot be read

    def line(self, label):
        return f"{self.path} {self.num_frames} {label}"


VIDEOS = (
    Video("naïve/vidéo_1", 14),
    Video("good/v2", 14),
    Video("short/v", 2, bad_for=("flow", "rgb+flow")),
    Video("short_flow/v", 12),
    Video("corrupt/vidéo", 14, "image_00001.jpg", "garbage", ("rgb", "rgb+flow")),
    Video("truncated/v", 14, "image_00007.jpg", "truncate", ("rgb",)),
    Video("zero/v", 14, "image_00013.jpg", "empty", ("rgb", "rgb+flow")),
    Video("missing_flow/v", 14, "flow_y_00005.jpg", "delete", ("flow", "rgb+flow")),
    Video("zero_flow/v", 14, "flow_x_00002.jpg", "empty", ("flow", "rgb+flow")),
)


def _damage(path, damage):
    if damage == "garbage":
        path.write_bytes(b"this is not a JPEG")
    elif damage == "truncate":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        path.unlink()


def write_corpus(tmp_path):
    """Writes the corpus; returns (frames root, list file) with the videos in `VIDEOS` order."""
    root = tmp_path / ROOT_NAME
    for video in VIDEOS:
        folder = write_video(root, video.path, video.num_frames)
        if video.damage:
            _damage(folder / video.damaged_file, video.damage)
    lines = [video.line(i % NUM_CLASSES) for i, video in enumerate(VIDEOS)]
    return root, write_list(tmp_path / "corpus list ü.txt", lines)
