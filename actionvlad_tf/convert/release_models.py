"""The release's own trained checkpoints (`get_models.sh`), by name: where each is downloaded from,
what it is, and the accuracy it should give; `fetch` (download with a checksum, or a local file)
and `convert` (to a Keras model). `experiments/release_model.py` goes from a name to an evaluated
Keras model.

The release publishes no checksums. `fetch` records the SHA-256 of a first download beside the file
(`<file>.sha256`) and checks every later use against it, and against `sha256` where the caller
pins one.

Expected figures: HMDB51 top-1 of the release's own logits (its README, `data/hmdb51/final_logits`,
25 frames, 5 crops); Charades mAP / wAP of the release README. The release gives no UCF101 figures
(the maintainer reports about 83 % RGB on split 1) and none for the two-stream flow networks.
"""

import dataclasses
import hashlib
import os
import shutil
import tempfile
import urllib.request
from typing import Optional

from actionvlad_tf.atomic import save_keras_atomic
from actionvlad_tf.convert import release_ckpt
from actionvlad_tf.data.datasets import dataset_spec
from actionvlad_tf.evaluation.run import evaluate_experiment
from actionvlad_tf.models import build_actionvlad, build_frame_classifier
from actionvlad_tf.specs import ModelSpec

_BOX = "https://cmu.box.com/shared/static/"
ACTIONVLAD_DIR = "models/PreTrained/ActionVLAD-pretrained"
TWO_STREAM_DIR = "models/PreTrained/2-stream-pretrained"


@dataclasses.dataclass(frozen=True)
class ReleaseModel:
    """One released checkpoint.

    Attributes:
        name: its key here, `<dataset>_<stream>_split<N>` (`twostream_flow`: the frame-level flow
            network the flow ActionVLAD starts from, release §2.5).
        url: `get_models.sh`'s download address.
        path: where `get_models.sh` puts it (relative to the release's root).
        dataset, modality, split: what it was trained on.
        expected: the figure it should give on the test split (None: the release gives none).
        metric: "top1" (percent, 25 frames × 5 crops) or "mAP".
    """

    name: str
    url: str
    path: str
    dataset: str
    modality: str
    split: int
    expected: Optional[float] = None
    metric: str = "top1"

    @property
    def frame_network(self):
        return self.path.startswith(TWO_STREAM_DIR)


def _table():
    hmdb51_top1 = {
        ("rgb", 1): 51.37,
        ("rgb", 2): 49.22,
        ("rgb", 3): 48.63,
        ("flow", 1): 58.95,
        ("flow", 2): 59.74,
        ("flow", 3): 60.59,
    }
    ids = {
        ("hmdb51", "rgb"): (
            "5bxkt0d2q3vfc3z4aa78xeutatjp8emn",
            "udbld672pbw5kugk6uifcjytskp8kxyg",
            "tmdgeia6o87a4zn7vgtewcpg5hn49cp5",
        ),
        ("hmdb51", "flow"): (
            "s2y9jq9q74r3goncqiz5qi5g68vdrgra",
            "u4xqq7mh80a7pgg4m4pl7gxqteq8lf13",
            "rip1usq4skvbf9ldmk1lpkpf02spwuv6",
        ),
        ("ucf101", "rgb"): (
            "1qrq5mmfnk10gh7p6owwos6f24ncsltj",
            "qhf212ufp7otkdn0z3bbvnz5zq1skh8w",
            "fsjawa834ls0yzsgqpq6yxi34jm2a6bv",
        ),
        ("ucf101", "flow"): (
            "cbv9wxkku4qvzxse1n549dl5x6h9anz6",
            "sviba34r77o27rc3nzfcp6osjtncytra",
            "m9su357b4w8xikb7vytwg31gkxvjzspu",
        ),
    }
    table = {}
    for (dataset, modality), splits in ids.items():
        for split, box_id in enumerate(splits, start=1):
            name = f"{dataset}_{modality}_split{split}"
            table[name] = ReleaseModel(
                name,
                f"{_BOX}{box_id}.ckpt",
                f"{ACTIONVLAD_DIR}/{dataset}/{modality}/split{split}.ckpt",
                dataset,
                modality,
                split,
                hmdb51_top1.get((modality, split)) if dataset == "hmdb51" else None,
            )
    for split, box_id in enumerate(
        ("q7dqbis20z5ui27tz3hvug8mqg2w0tvs", "m1lz6tii09kn379ya8gggw0iaa4f7cw2", "brk2z9rev609o2a81p3gyztvmtpwmwke"),
        start=1,
    ):
        name = f"hmdb51_twostream_flow_split{split}"
        table[name] = ReleaseModel(
            name, f"{_BOX}{box_id}.ckpt", f"{TWO_STREAM_DIR}/hmdb51/flow/split{split}.ckpt", "hmdb51", "flow", split
        )
    table["charades_rgb_split1"] = ReleaseModel(
        "charades_rgb_split1",
        f"{_BOX}fej1bd8v72ftqo3aul8ijppgniipne36.data-00000-of-00001",
        f"{ACTIONVLAD_DIR}/charadesV1/model.ckpt-150000.data-00000-of-00001",
        "charades",
        "rgb",
        1,
        17.66,
        "mAP",
    )
    return table


RELEASE_MODELS = _table()


def release_model(name):
    if name not in RELEASE_MODELS:
        raise ValueError(f"unknown release checkpoint {name!r}; known: {', '.join(RELEASE_MODELS)}")
    return RELEASE_MODELS[name]


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_sum(path, sha256):
    """Checks `path` against `sha256` and against its recorded sum; records it the first time."""
    actual = sha256_of(path)
    record = f"{path}.sha256"
    recorded = open(record, encoding="utf-8").read().split()[0] if os.path.isfile(record) else None
    for expected, what in ((sha256, "the given"), (recorded, f"the recorded ({record})")):
        if expected and expected.lower() != actual:
            raise ValueError(f"{path}: SHA-256 {actual} differs from {what} checksum {expected}")
    if recorded is None and os.access(os.path.dirname(os.path.abspath(path)), os.W_OK):
        with open(record, "w", encoding="utf-8") as f:
            f.write(f"{actual}  {os.path.basename(path)}\n")
    return actual


def fetch(name, directory, local_file=None, sha256=None, timeout=60):
    """The path of checkpoint `name`: `local_file` if given, else `<directory>/<its release path>`,
    downloaded first when absent. Returns (path, SHA-256)."""
    entry = release_model(name)
    if local_file is not None:
        if not os.path.isfile(local_file):
            raise FileNotFoundError(f"checkpoint file not found: {local_file}")
        return local_file, _check_sum(local_file, sha256)
    path = os.path.join(directory, entry.path)
    if not os.path.isfile(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        handle, partial = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".part")
        try:
            with os.fdopen(handle, "wb") as out, urllib.request.urlopen(entry.url, timeout=timeout) as response:
                shutil.copyfileobj(response, out)
            os.replace(partial, path)
        except OSError as error:
            raise OSError(
                f"cannot download {name} from {entry.url} ({error}); download it by hand and give "
                "the file (local_file / --checkpoint_file)"
            ) from error
        finally:
            if os.path.exists(partial):
                os.remove(partial)
    return path, _check_sum(path, sha256)


def model_for_checkpoint(values, prefix=None, num_classes=None, num_clusters=64, frames_per_video=None, image_size=224):
    """The single-stream Keras model a release checkpoint's variables describe (modality, K and
    classes read off their shapes): ActionVLAD, or the frame classifier for a checkpoint with fc6-fc8."""
    arch = release_ckpt.release_architecture(values, prefix)
    num_classes = arch["num_classes"] or num_classes
    if num_classes is None:
        raise ValueError("the checkpoint has no classifier: give num_classes")
    if arch["include_top"]:
        return build_frame_classifier(
            num_classes, arch["modality"], frames_per_video=frames_per_video or 25, image_size=image_size
        )
    return build_actionvlad(
        num_classes,
        arch["modality"],
        frames_per_video=frames_per_video,
        image_size=image_size,
        pooling=arch["pooling"] or "netvlad",
        num_clusters=arch["num_clusters"] or num_clusters,
    )


def convert(name, checkpoint, output, image_size=224):
    """Converts the release checkpoint file `checkpoint` of `name` to the Keras model `output`
    (any number of frames). Returns (model, conversion report, `release_architecture`)."""
    entry = release_model(name)
    if entry.dataset == "charades":
        raise ValueError(
            "the Charades release is a bare data shard: convert it with "
            "actionvlad_tf.convert.charades_shard (docs/charades.md)"
        )
    values = release_ckpt.read_checkpoint(checkpoint)
    model = model_for_checkpoint(values, image_size=image_size)
    arch = release_ckpt.release_architecture(values)
    if arch["modality"] != entry.modality:
        raise ValueError(f"{checkpoint}: a {arch['modality']} checkpoint, but {name} is {entry.modality}")
    report = release_ckpt.load_release_checkpoint(model, checkpoint, values=values)
    save_keras_atomic(model, output)
    return model, report, arch


def fetch_convert_evaluate(
    name,
    directory,
    output,
    input_spec=None,
    results_dir=None,
    local_file=None,
    sha256=None,
    image_size=224,
    mixed_precision="auto",
):
    """Name → evaluated Keras model: `fetch`, `convert` to `output`, and with an `input_spec` (where
    the test videos are; its modality and split are set from the checkpoint) evaluate on the test
    split into `results_dir`. Returns a dict: path, sha256, model (the .keras path), report (the
    conversion's) and, when evaluated, results (`evaluate_experiment`'s) and expected."""
    entry = release_model(name)
    path, digest = fetch(name, directory, local_file, sha256)
    model, report, arch = convert(name, path, output, input_spec.image_size if input_spec else image_size)
    done = {"path": path, "sha256": digest, "model": output, "report": report, "expected": entry.expected}
    if input_spec is None:
        return done
    dataset = dataset_spec(entry.dataset)
    num_classes = int(model.output.shape[-1])
    if num_classes != dataset.num_classes:
        raise ValueError(f"{path}: {num_classes} classes, {entry.dataset} has {dataset.num_classes}")
    inputs = input_spec.replace(modality=entry.modality, split_id=entry.split)
    spec = ModelSpec(
        num_classes,
        modality=entry.modality,
        pooling=arch["pooling"] or "avg",
        conv_endpoint="fc8" if arch["include_top"] else "conv5",
        num_clusters=arch["num_clusters"] or 64,
        image_size=inputs.image_size,
        frames_per_video=inputs.frames_per_video,
        num_crops=inputs.num_crops,
    )
    done["results"] = evaluate_experiment(dataset, spec, inputs, output, results_dir, mixed_precision=mixed_precision)
    return done
