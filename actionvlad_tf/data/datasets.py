"""The dataset registry: name → `DatasetSpec` (classes, class names, list reader, metric).

    from actionvlad_tf.data.datasets import DATASETS, register_dataset
    register_dataset(DatasetSpec(name="toy", num_classes=4, class_names=("a", "b", "c", "d")))

`--dataset_name` accepts any registered name (or another name with `--num_classes`). A dataset
with official split files also registers a list maker in `actionvlad_tf.prep.splits.LIST_MAKERS`
so `data_prep/make_lists.py` can write its list files (docs/extending.md).
"""

import dataclasses
import os

from actionvlad_tf.data.lists import read_class_names, read_list
from actionvlad_tf.registration import Registry
from actionvlad_tf.specs import CHARADES_NUM_CLASSES, DatasetSpec

CLASS_NAME_FILES = ("actions.txt", "classInd.txt")  # looked for in the list folder of a custom dataset
# The release's actions.txt (label order: alphabetical).
HMDB51_CLASSES = (
    "brush_hair",
    "cartwheel",
    "catch",
    "chew",
    "clap",
    "climb",
    "climb_stairs",
    "dive",
    "draw_sword",
    "dribble",
    "drink",
    "eat",
    "fall_floor",
    "fencing",
    "flic_flac",
    "golf",
    "handstand",
    "hit",
    "hug",
    "jump",
    "kick",
    "kick_ball",
    "kiss",
    "laugh",
    "pick",
    "pour",
    "pullup",
    "punch",
    "push",
    "pushup",
    "ride_bike",
    "ride_horse",
    "run",
    "shake_hands",
    "shoot_ball",
    "shoot_bow",
    "shoot_gun",
    "sit",
    "situp",
    "smile",
    "smoke",
    "somersault",
    "stand",
    "swing_baseball",
    "sword",
    "sword_exercise",
    "talk",
    "throw",
    "turn",
    "walk",
    "wave",
)
# UCF101's classInd.txt (label order: alphabetical, case-insensitive).
UCF101_CLASSES = (
    "ApplyEyeMakeup",
    "ApplyLipstick",
    "Archery",
    "BabyCrawling",
    "BalanceBeam",
    "BandMarching",
    "BaseballPitch",
    "Basketball",
    "BasketballDunk",
    "BenchPress",
    "Biking",
    "Billiards",
    "BlowDryHair",
    "BlowingCandles",
    "BodyWeightSquats",
    "Bowling",
    "BoxingPunchingBag",
    "BoxingSpeedBag",
    "BreastStroke",
    "BrushingTeeth",
    "CleanAndJerk",
    "CliffDiving",
    "CricketBowling",
    "CricketShot",
    "CuttingInKitchen",
    "Diving",
    "Drumming",
    "Fencing",
    "FieldHockeyPenalty",
    "FloorGymnastics",
    "FrisbeeCatch",
    "FrontCrawl",
    "GolfSwing",
    "Haircut",
    "Hammering",
    "HammerThrow",
    "HandstandPushups",
    "HandstandWalking",
    "HeadMassage",
    "HighJump",
    "HorseRace",
    "HorseRiding",
    "HulaHoop",
    "IceDancing",
    "JavelinThrow",
    "JugglingBalls",
    "JumpingJack",
    "JumpRope",
    "Kayaking",
    "Knitting",
    "LongJump",
    "Lunges",
    "MilitaryParade",
    "Mixing",
    "MoppingFloor",
    "Nunchucks",
    "ParallelBars",
    "PizzaTossing",
    "PlayingCello",
    "PlayingDaf",
    "PlayingDhol",
    "PlayingFlute",
    "PlayingGuitar",
    "PlayingPiano",
    "PlayingSitar",
    "PlayingTabla",
    "PlayingViolin",
    "PoleVault",
    "PommelHorse",
    "PullUps",
    "Punch",
    "PushUps",
    "Rafting",
    "RockClimbingIndoor",
    "RopeClimbing",
    "Rowing",
    "SalsaSpin",
    "ShavingBeard",
    "Shotput",
    "SkateBoarding",
    "Skiing",
    "Skijet",
    "SkyDiving",
    "SoccerJuggling",
    "SoccerPenalty",
    "StillRings",
    "SumoWrestling",
    "Surfing",
    "Swing",
    "TableTennisShot",
    "TaiChi",
    "TennisSwing",
    "ThrowDiscus",
    "TrampolineJumping",
    "Typing",
    "UnevenBars",
    "VolleyballSpiking",
    "WalkingWithDog",
    "WallPushups",
    "WritingOnBoard",
    "YoYo",
)

DATASETS = Registry(
    "dataset",
    {
        "hmdb51": DatasetSpec("hmdb51", 51, HMDB51_CLASSES, class_names_file="actions.txt"),
        "ucf101": DatasetSpec("ucf101", 101, UCF101_CLASSES, class_names_file="classInd.txt"),
        "charades": DatasetSpec("charades", CHARADES_NUM_CLASSES, multi_label=True, metric="charades_map"),
    },
)


def register_dataset(spec):
    """Adds `spec` to `DATASETS` under `spec.name` (a second registration of a name is an error)."""
    return DATASETS.register(spec.name, spec)


def dataset_spec(name, num_classes=None):
    """The registered spec of `name` (its class count replaced by `num_classes` if given), or for an
    unregistered name a single-label spec of `num_classes` classes."""
    if name in DATASETS:
        spec = DATASETS[name]
        return spec if not num_classes else _replace(spec, num_classes=int(num_classes))
    if not num_classes:
        raise ValueError(f"unknown dataset_name {name!r} (registered: {sorted(DATASETS)}); give num_classes")
    return DatasetSpec(name, int(num_classes))


def _replace(spec, **changes):
    if "num_classes" in changes and spec.class_names is not None and changes["num_classes"] != spec.num_classes:
        changes["class_names"] = None
    return dataclasses.replace(spec, **changes)


def split_list_file(list_dir, split_name, split_id):
    """`<list_dir>/{train,test}_split{N}.txt` (release §3.2), which must exist."""
    path = os.path.join(list_dir, f"{split_name}_split{split_id}.txt")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"list file not found: {path}")
    return path


def read_entries(spec, list_file, check_labels=None):
    """The `VideoEntry`s of a list of dataset `spec`, labels checked against its class count unless
    `check_labels` is False (default: single-label datasets; a multi-label test list carries −1)."""
    reader = spec.list_reader or read_list
    check = not spec.multi_label if check_labels is None else check_labels
    return reader(list_file, spec.num_classes if check else None)


def class_names(spec, list_dir=None):
    """Class names in label order: the spec's, else its names file (or `actions.txt` /
    `classInd.txt`) in `list_dir`; None when there is none."""
    if spec.class_names is not None:
        return list(spec.class_names)
    if list_dir is None:
        return None
    for name in dict.fromkeys(
        (spec.class_names_file,) + CLASS_NAME_FILES if spec.class_names_file else CLASS_NAME_FILES
    ):
        path = os.path.join(list_dir, name)
        if os.path.isfile(path):
            return read_class_names(path)
    return None
