"""Tests of experiments/configs/*.flags: syntax, flag names, the release recipe, and that the files chain.

Files whose name starts with `_` are partials (shared recipe pieces) included by the others through
`--flagfile=` (relative to the including file); every other file says in its header the command
that runs it. Includes are expanded by the entry points' own `experiments/flagfiles.py`, so the tests
see exactly what the entry point will parse (later values win).
"""

import collections
import importlib.util
import pathlib
import re

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = REPO_ROOT / "experiments" / "configs"
_SPEC = importlib.util.spec_from_file_location("flagfiles", REPO_ROOT / "experiments" / "flagfiles.py")
flagfiles = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(flagfiles)

# Flag names of train.py / eval.py / cluster.py (defined there by the training helper; its own test checks
# that each entry point defines those its flagfiles use).
ENTRY_POINT_FLAGS = frozenset(
    """
    train_dir dataset_name dataset_dir flow_dir dataset_list_dir split_id modality frames_per_video
    batch_size videos_per_update videos_per_micro_batch learning_rate num_steps_per_decay
    learning_rate_decay_factor optimizer opt_epsilon
    clip_gradients weight_decay pooling netvlad_alpha num_clusters conv_endpoint pooled_dropout
    checkpoint_path max_number_of_steps stage centers backbone_weights model_name num_crops logits_file
    results_dir fusion image_size save_every_n_steps seed deterministic mixed_precision log_every_n_steps
""".split()
)
FUSE_FLAGS = frozenset(
    re.findall(r'flags\.DEFINE_\w+\(\s*"(\w+)"', (REPO_ROOT / "experiments" / "fuse.py").read_text())
)
RELEASE_MODEL_FLAGS = frozenset(
    re.findall(r'flags\.DEFINE_\w+\(\s*"(\w+)"', (REPO_ROOT / "experiments" / "release_model.py").read_text())
)
ALLOWED = {
    "train": ENTRY_POINT_FLAGS,
    "eval": ENTRY_POINT_FLAGS,
    "cluster": ENTRY_POINT_FLAGS,
    "fuse": FUSE_FLAGS,
    "release_model": RELEASE_MODEL_FLAGS,
}
LINE = re.compile(r"^--([a-z0-9_]+)=(\S+)$")
RUN = re.compile(r"^#\s+python experiments/(\w+)\.py --flagfile=experiments/configs/([\w.]+\.flags)$")

ALL = sorted(CONFIGS.glob("*.flags"))
RUNNABLE = [path for path in ALL if not path.name.startswith("_")]
PARTIALS = [path for path in ALL if path.name.startswith("_")]


def _entry_point(path):
    runs = [RUN.match(line) for line in path.read_text().splitlines()]
    runs = [match for match in runs if match]
    assert len(runs) == 1, f"{path.name}: the header needs exactly one 'python experiments/X.py' run line"
    assert runs[0].group(2) == path.name, f"{path.name}: its run command names {runs[0].group(2)}"
    return runs[0].group(1)


def _resolve(path):
    """The flags an entry point gets from `path`, includes expanded in place, last value winning."""
    args = flagfiles.expand_flagfiles(["prog", f"--flagfile={path.relative_to(REPO_ROOT)}"])[1:]
    pairs = [LINE.match(arg).groups() for arg in args]
    return dict(pairs)


@pytest.fixture(autouse=True)
def _from_repo_root(monkeypatch):
    monkeypatch.chdir(REPO_ROOT)  # the includes are repository-relative, as the run commands are


def test_there_is_a_flagfile_per_released_experiment_and_ablation():
    names = {path.stem for path in RUNNABLE}
    for split in (1, 2, 3):
        for modality in ("rgb", "flow"):
            for step in ("cluster", "stage1", "stage2", "eval"):
                assert f"hmdb51_{modality}_split{split}_{step}" in names
            assert {
                f"hmdb51_twostream_{modality}_split{split}_train",
                f"hmdb51_twostream_{modality}_split{split}_eval",
            } <= names
        assert f"hmdb51_fuse_split{split}" in names
    for modality in ("rgb", "flow"):
        assert {f"ucf101_{modality}_split1_{step}" for step in ("stage1", "stage2", "eval")} <= names
    for prefix in (
        "table1_nontrained",
        "table1_trained",
        "table2a_conv4",
        "table2a_fc7",
        "table2b_avg",
        "table2b_max",
        "table3a_concat",
        "table3a_early",
        "table3a_late",
        "table6_fuse_1crop",
        "table6_fuse_5crop",
    ):
        assert any(name.startswith(prefix) for name in names), prefix


@pytest.mark.parametrize("path", ALL, ids=lambda path: path.name)
def test_every_line_is_a_comment_or_one_flag(path):
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip() and not line.startswith("#"):
            assert LINE.match(line), f"{path.name}:{number}: {line!r} is not '--name=value'"


@pytest.mark.parametrize("path", RUNNABLE, ids=lambda path: path.name)
def test_flags_are_those_of_the_entry_point(path):
    entry = _entry_point(path)
    assert entry in ALLOWED, f"{path.name}: unknown entry point {entry}"
    unknown = set(_resolve(path)) - ALLOWED[entry]
    assert not unknown, f"{path.name}: flags not defined by {entry}.py: {sorted(unknown)}"


def test_every_partial_is_included_somewhere():
    included = {match for path in ALL for match in re.findall(r"^--flagfile=(\S+)$", path.read_text(), re.M)}
    assert {path.name for path in PARTIALS} <= included
    assert included <= {path.name for path in ALL}, "an include names a missing file"


@pytest.mark.parametrize("split", [1, 2, 3])
@pytest.mark.parametrize("modality", ["rgb", "flow"])
def test_hmdb51_runs_follow_the_release_recipe(split, modality):
    base = f"hmdb51_{modality}_split{split}"
    stage1, stage2, evaluation = (_resolve(CONFIGS / f"{base}_{step}.flags") for step in ("stage1", "stage2", "eval"))
    for resolved in (stage1, stage2, evaluation):
        assert resolved["split_id"] == str(split) and resolved["modality"] == modality
        assert resolved["frames_per_video"] == "25" and resolved["num_clusters"] == "64"
    for resolved, lr, steps in ((stage1, 0.01, 10000), (stage2, 1e-4, 8000)):  # release §2.5
        assert float(resolved["learning_rate"]) == lr and int(resolved["max_number_of_steps"]) == steps
        assert int(resolved["videos_per_update"]) == 16 and "iter_size" not in resolved
        assert (resolved["optimizer"], float(resolved["opt_epsilon"]), float(resolved["clip_gradients"])) == (
            "adam",
            1e-4,
            5.0,
        )
        assert (int(resolved["num_steps_per_decay"]), float(resolved["learning_rate_decay_factor"])) == (5000, 0.1)
        assert float(resolved["weight_decay"]) == 4e-5 and float(resolved["netvlad_alpha"]) == 1000.0
    # each variable's gradient is clipped per micro-batch of the release's: 4 × 2 clones, then 4 × 4,
    # global numbers, so any replica count takes the same (train.py derives the per-replica batch)
    assert (int(stage1["videos_per_micro_batch"]), int(stage2["videos_per_micro_batch"])) == (8, 16)
    assert "batch_size" not in stage1 and "batch_size" not in stage2
    assert all(resolved["mixed_precision"] == "float32" for resolved in (stage1, stage2, evaluation))
    if modality == "flow":  # from the release's per-split two-stream flow network, converted
        start = f"runs/hmdb51/twostream_flow_split{split}/train/model.keras"  # either route writes it
        assert stage1["backbone_weights"] == start
        assert _resolve(CONFIGS / f"hmdb51_twostream_flow_split{split}_release.flags")["output"] == start
        assert (
            _resolve(CONFIGS / f"hmdb51_twostream_flow_split{split}_train.flags")["train_dir"] + "/model.keras" == start
        )
        assert _resolve(CONFIGS / f"hmdb51_twostream_flow_split{split}_eval.flags")["checkpoint_path"] == start
    assert evaluation["num_crops"] == {"rgb": "1", "flow": "5"}[modality]  # README numbers, §8 row 10
    assert stage2["checkpoint_path"] == stage1["train_dir"] and evaluation["checkpoint_path"] == stage2["train_dir"]


def test_every_consumed_file_is_produced_by_another_flagfile():
    """... or by experiments/release_model.py (a released checkpoint, converted to its --output).
    tests/test_recipe.py checks the documented order."""
    produced = set()
    consumed = collections.defaultdict(list)
    for path in RUNNABLE:
        entry, resolved = _entry_point(path), _resolve(path)
        if entry == "cluster":
            produced.add(resolved["centers"])
        elif entry == "train":
            produced.update({resolved["train_dir"], resolved["train_dir"] + "/model.keras"})
            consumed[resolved.get("centers")].append(path.name)
        elif entry == "eval":
            produced.add(resolved["logits_file"])
        elif entry == "release_model":
            produced.add(resolved["output"])
        else:
            consumed[resolved["rgb"]].append(path.name)
            consumed[resolved["flow"]].append(path.name)
        if entry in ("train", "eval"):
            consumed[resolved.get("checkpoint_path")].append(path.name)
        for weights in resolved.get("backbone_weights", "imagenet").split(","):
            consumed[None if weights == "imagenet" else weights].append(path.name)
    consumed.pop(None, None)
    orphans = {item: users for item, users in consumed.items() if item not in produced}
    assert not orphans, f"inputs no flagfile produces: {orphans}"
