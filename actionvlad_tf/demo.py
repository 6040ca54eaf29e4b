"""The main job on the built-in demo data, as a plan of entry-point runs (`experiments/demo.py`,
`actionvlad demo`, is its command line; its docstring says what runs and why).

`build_steps(config, ...)` lists the steps (`actionvlad_tf.workflow.Step`) of one seed: dataset,
frames, flow, lists; per stream the two-stream frame network, k-means, avg / max / ActionVLAD in two
stages and their evaluation; export, predict on held-out videos and the action-word maps.
`run_demo` runs them and writes `results.json`; `seeds_table` summarises several seeds.
The step keys (`actionvlad_tf.workflow`) make a re-run repeat exactly the steps whose flags, code or
inputs changed. Each step runs its entry point by command name through the launcher
(`python -m actionvlad_tf.commands <command>`), so the plan needs no checkout: the code that runs, and
that the keys hash, is the package this module was imported from with its scripts (installed, or the
source tree).
"""

import csv
import json
import os
import sys
import time

import numpy as np

from actionvlad_tf import commands, hardware, zoo
from actionvlad_tf.atomic import atomic_output, write_json
from actionvlad_tf.data.lists import read_list
from actionvlad_tf.evaluation import late_fusion, read_logits, search_flow_weight, top_k_accuracy
from actionvlad_tf.forkserver import ForkServers
from actionvlad_tf.models.registry import POOLINGS
from actionvlad_tf.models.vgg16 import write_random_vgg16
from actionvlad_tf.prep import synthetic
from actionvlad_tf.specs import STREAMS
from actionvlad_tf.workflow import Step, Workflow, code_version

ROWS = (
    ("two_stream", "Two-stream (frame logits averaged)"),
    ("avg", "Avg pooling, conv5 (stage 2)"),
    ("max", "Max pooling, conv5 (stage 2)"),
    ("netvlad_stage1", "ActionVLAD, non-trained (stage 1)"),
    ("netvlad", "ActionVLAD (stage 2)"),
)
CONFIG_KEYS = (
    "backbone_weights",
    "flow_backbone_weights",
    "backbone_width",
    "num_classes",
    "train_per_class",
    "val_per_class",
    "test_per_class",
    "evaluate_on",
    "frames_per_video",
    "image_size",
    "num_clusters",
    "flow_method",
    "flow_bound",
    "baseline_steps",
    "baseline_learning_rate",
    "stage1_steps",
    "stage1_learning_rate",
    "stage2_steps",
    "stage2_learning_rate",
    "flow_weight",
    "batch_size",
    "seed",
    "mixed_precision",
    "predict_videos",
)


# Rough seconds of each kind of step on one core (a 2-core AMD EPYC, AVX2, float32, the default
# sizes): only their order matters, for which of the steps ready at one time starts first
# (`workflow.Workflow.priorities`: the flow chain, the longest, is not left waiting).
COSTS = dict(
    dataset=30,
    frames=15,
    flow=240,
    lists=1,
    two_stream=25,
    eval=18,
    cluster=30,
    stage1_building_cache=90,
    stage1=15,
    stage2=60,
    export=15,
    predict=25,
    action_words=20,
)


PREDICT_LIST = "predict_videos.txt"
PREDICTIONS_FILE = "predictions.csv"

# A shipped stand-in's modality → (the card's accuracies quoted, what it was pretrained on, what it stands in for).
STANDIN_CAPTIONS = {
    "rgb": (("shape", "colour", "shape_colour"), "generated stills", "the stand-in for ImageNet"),
    "flow": (("shape", "motion", "shape_motion"), "generated flow stacks", "the stand-in for the flow network"),
}


def flow_backbone_name(config):
    """The flow stream's starting weights: config["flow_backbone_weights"], where "auto" (the default)
    means the shipped flow stand-in when the RGB backbone is the shipped RGB stand-in, and else the
    RGB backbone itself (its first layer made cross-modal, release §4)."""
    name = config.get("flow_backbone_weights") or "auto"
    if name != "auto":
        return name
    return "demo_standin_flow" if config["backbone_weights"] == "demo_standin" else config["backbone_weights"]


def resolve_backbone(config, runs, name=None):
    """(weights file or "imagenet", width, image size, caption) of `name` (default
    config["backbone_weights"]): a name of the package's zoo (the offline stand-ins for ImageNet and
    for the flow network), imagenet, random, or a file."""
    name = name or config["backbone_weights"]
    if name == "imagenet":
        return "imagenet", config.get("backbone_width") or 1.0, config.get("image_size") or 224, "ImageNet VGG-16"
    if name == "random":
        width = config.get("backbone_width") or 1.0
        size = config.get("image_size") or 64
        path = os.path.join(runs, f"backbone_random_w{width:g}_{size}_seed{config['seed']}.weights.h5")
        write_random_vgg16(path, size, config["seed"], width)
        return path, width, size, f"a seeded random VGG-16 (width {width:g}), no pretraining"
    if name in zoo.names():
        card = zoo.card(name)
        heads, what, standin = STANDIN_CAPTIONS[card.get("modality", "rgb")]
        accuracy = ", ".join(
            f"{head.replace('_', '×')} {100 * card['val_accuracy'][head]:.0f} %"
            for head in heads
            if head in card["val_accuracy"]
        )
        return (
            zoo.resolve(name),
            card["width"],
            config.get("image_size") or card["image_size"],
            (
                f"VGG-16 at width {card['width']:g} pretrained offline on {what} ({name}, {standin}; "
                f"validation accuracy {accuracy})"
            ),
        )
    if not os.path.isfile(name):
        raise ValueError(
            f"backbone weights {name!r}: not a shipped name ({', '.join(zoo.names())}), imagenet, random, nor a file"
        )
    return os.path.abspath(name), config.get("backbone_width") or 1.0, config.get("image_size") or 64, name


def resolve_backbones(config, runs):
    """({stream: weights}, width, image size, caption) of the RGB backbone and the flow stream's
    starting weights (`flow_backbone_name`); both must have one width."""
    backbone, width, image_size, caption = resolve_backbone(config, runs)
    flow_name = flow_backbone_name(config)
    if flow_name == config["backbone_weights"]:
        return {"rgb": backbone, "flow": backbone}, width, image_size, caption
    flow, flow_width, _, flow_caption = resolve_backbone(config, runs, flow_name)
    if flow_width != width:
        raise ValueError(
            f"the flow backbone {flow_name!r} has width {flow_width:g}, the RGB backbone "
            f"{config['backbone_weights']!r} {width:g}: pass --flow_backbone_weights of width {width:g}"
        )
    return {"rgb": backbone, "flow": flow}, width, image_size, f"RGB {caption}; flow {flow_caption}"


def build_steps(config, out, backbones, width, image_size, precision):
    """The demo's steps (`actionvlad_tf.workflow.Step`) for one seed under `out` (where it writes
    the predict step's list of videos); `backbones` maps each stream to its starting weights
    (`resolve_backbones`)."""
    data, runs, results = (os.path.join(out, d) for d in ("data", "runs", "results"))
    lists = os.path.join(data, "lists")
    split_id = 2 if config["evaluate_on"] == "val" else 1
    steps = [
        Step(
            "dataset",
            "make-demo-dataset",
            dict(
                output_dir=data,
                num_classes=config["num_classes"],
                train_per_class=config["train_per_class"],
                val_per_class=config["val_per_class"],
                test_per_class=config["test_per_class"],
                seed=config["seed"],
                num_workers=2,
            ),
            outputs=(os.path.join(data, "manifest.json"), os.path.join(data, "videos"), os.path.join(data, "splits")),
            cost=COSTS["dataset"],
        ),
        Step(
            "frames",
            "extract-frames",
            dict(videos=os.path.join(data, "videos"), output_dir=os.path.join(data, "frames"), num_workers=2),
            deps=("dataset",),
            outputs=(os.path.join(data, "frames"),),
            cost=COSTS["frames"],
        ),
        Step(
            "flow",
            "extract-flow",
            dict(
                frames=os.path.join(data, "frames"),
                output_dir=os.path.join(data, "flow"),
                method=config["flow_method"],
                bound=config["flow_bound"],
                num_workers=2,
            ),
            deps=("frames",),
            outputs=(os.path.join(data, "flow"),),
            cost=COSTS["flow"],
        ),
        Step(
            "lists",
            "make-lists",
            dict(
                dataset="ucf101",
                split_dir=os.path.join(data, "splits"),
                frames_dir=os.path.join(data, "frames"),
                output_dir=lists,
            ),
            deps=("frames",),
            outputs=(lists,),
            cost=COSTS["lists"],
        ),
    ]
    common = dict(
        dataset_name="demo",
        num_classes=config["num_classes"],
        dataset_dir=os.path.join(data, "frames"),
        flow_dir=os.path.join(data, "flow"),
        dataset_list_dir=lists,
        split_id=split_id,
        image_size=image_size,
        seed=config["seed"],
        mixed_precision=precision,
    )
    if width != 1.0:
        common["backbone_width"] = width
    video = dict(frames_per_video=config["frames_per_video"], num_clusters=config["num_clusters"])
    train = dict(
        videos_per_micro_batch=config["batch_size"],
        videos_per_update=16,
        save_every_n_steps=10**6,
        log_every_n_steps=10,
    )

    first_cached_eval = {}

    def evaluate(stream, key, train_step, model_flags):
        """The evaluation of one model; the poolings' (avg, max, ActionVLAD at both stages: the
        same frozen conv1_1 … pool4) share the stream's evaluation feature cache, which the first
        of them builds and the others wait for."""
        data_deps = ("lists", "frames") + (("flow",) if stream == "flow" else ())
        result_dir = os.path.join(results, f"{stream}_{key}")
        name, after, cache = f"{stream}_{key}_eval", (), {}
        if key != "two_stream":
            cache = dict(feature_cache_dir=os.path.join(runs, f"{stream}_eval_cache"))
            first = first_cached_eval.setdefault(stream, name)
            after = (first,) if first != name else ()
        steps.append(
            Step(
                name,
                "eval",
                dict(
                    modality=stream,
                    checkpoint_path=os.path.join(runs, train_step, "model.keras"),
                    results_dir=result_dir,
                    batch_size=5,
                    **common,
                    **video,
                    **model_flags,
                    **cache,
                ),
                deps=(train_step,) + data_deps,
                after=after,
                outputs=(result_dir,),
                cost=COSTS["eval"],
            )
        )

    for stream in STREAMS["rgb+flow"]:
        data_deps = ("lists", "frames") + (("flow",) if stream == "flow" else ())
        backbone = backbones[stream]
        backbone_inputs = (backbone,) if os.path.isfile(backbone) else ()
        # The two-stream frame network (release 005): fc6-fc8 trained on single random frames over
        # the stream's pretrained backbone (flow: the flow stand-in, or an RGB backbone's cross-modality
        # first layer), tested on the mean of T frames' logits. Training every layer of the flow
        # network from the RGB stand-in (as the authors trained theirs from ImageNet) stayed near
        # chance on the validation split (16.7 % after 300 updates, 25 % after 1000: docs/demo.md).
        # Its frames are single frames of the stream's cache of pool4 maps (`--cache_frames_per_video`:
        # one of the T frames of one of the 2 views per visit), which the first stage 1 builds.
        cache = os.path.join(runs, f"{stream}_feature_cache")
        builder = f"{stream}_{sorted(POOLINGS)[0]}_stage1"  # the stage 1 that builds the cache
        two_stream = f"{stream}_two_stream"
        steps.append(
            Step(
                two_stream,
                "train",
                dict(
                    modality=stream,
                    conv_endpoint="fc8",
                    stage=1,
                    frames_per_video=1,
                    videos_per_micro_batch=16,
                    videos_per_update=16,
                    optimizer="adam",
                    learning_rate=config["baseline_learning_rate"],
                    opt_epsilon=1e-4,
                    clip_gradients=5,
                    backbone_weights=backbone,
                    train_dir=os.path.join(runs, two_stream),
                    max_number_of_steps=config["baseline_steps"],
                    save_every_n_steps=10**6,
                    feature_cache_dir=cache,
                    cache_views=2,
                    cache_frames_per_video=config["frames_per_video"],
                    **common,
                ),
                deps=data_deps,
                after=(builder,),
                inputs=backbone_inputs,
                outputs=(os.path.join(runs, two_stream),),
                cost=COSTS["two_stream"],
            )
        )
        evaluate(stream, "two_stream", two_stream, dict(conv_endpoint="fc8"))

        # ActionVLAD's starting point: the stream's conv layers, as the release's flow ActionVLAD starts
        # from its flow network. The frame network above trains only fc6-fc8, so its conv layers are
        # the backbone's own: both streams start from their backbone, and flow need not wait for it.
        centers = os.path.join(runs, f"{stream}_centers.npz")
        steps.append(
            Step(
                f"{stream}_cluster",
                "cluster",
                dict(
                    modality=stream,
                    backbone_weights=backbone,
                    centers=centers,
                    num_frames=300,
                    num_clusters=config["num_clusters"],
                    **common,
                ),
                deps=data_deps,
                inputs=backbone_inputs,
                outputs=(centers,),
                cost=COSTS["cluster"],
            )
        )
        for pooling in sorted(POOLINGS):
            stage1, stage2 = f"{stream}_{pooling}_stage1", f"{stream}_{pooling}_stage2"
            cluster = {"centers": centers} if pooling == "netvlad" else {}
            # The stream's first stage 1 builds the cache of pool4 maps that every stage of every
            # pooling then reads (`--cache_via_stage2`); the others wait for it, not for each other.
            steps.append(
                Step(
                    stage1,
                    "train",
                    dict(
                        modality=stream,
                        pooling=pooling,
                        stage=1,
                        train_dir=os.path.join(runs, stage1),
                        backbone_weights=backbone,
                        max_number_of_steps=config["stage1_steps"],
                        learning_rate=config["stage1_learning_rate"],
                        feature_cache_dir=cache,
                        cache_views=2,
                        cache_via_stage2=True,
                        **cluster,
                        **common,
                        **video,
                        **train,
                    ),
                    deps=data_deps + ((f"{stream}_cluster",) if cluster else ()),
                    after=(builder,) if stage1 != builder else (),
                    inputs=backbone_inputs,
                    outputs=(os.path.join(runs, stage1),),
                    cost=COSTS["stage1" if stage1 != builder else "stage1_building_cache"],
                )
            )
            steps.append(
                Step(
                    stage2,
                    "train",
                    dict(
                        modality=stream,
                        pooling=pooling,
                        stage=2,
                        train_dir=os.path.join(runs, stage2),
                        checkpoint_path=os.path.join(runs, stage1, "model.keras"),
                        max_number_of_steps=config["stage2_steps"],
                        learning_rate=config["stage2_learning_rate"],
                        feature_cache_dir=cache,
                        cache_views=2,
                        **common,
                        **video,
                        **train,
                    ),
                    deps=data_deps + (stage1,),
                    outputs=(os.path.join(runs, stage2),),
                    cost=COSTS["stage2"],
                )
            )
            if pooling == "netvlad":
                evaluate(stream, "netvlad_stage1", stage1, dict(pooling=pooling))
            evaluate(stream, pooling, stage2, dict(pooling=pooling))

    export = os.path.join(out, "export")
    steps.append(
        Step(
            "export",
            "export",
            dict(
                rgb_model=os.path.join(runs, "rgb_netvlad_stage2", "model.keras"),
                flow_model=os.path.join(runs, "flow_netvlad_stage2", "model.keras"),
                class_names=os.path.join(lists, "actions.txt"),
                flow_weight=config["flow_weight"],
                export_dir=export,
            ),
            deps=("rgb_netvlad_stage2", "flow_netvlad_stage2", "lists"),
            outputs=(export,),
            cost=COSTS["export"],
        )
    )
    videos = held_out_videos(config, data)
    if config["predict_videos"]:
        # One run over the held-out videos' list (written here): the SavedModel loaded once, the
        # next videos' frames and flow prepared in a thread while the model runs.
        write_predict_list(config, out)
        predictions = os.path.join(out, PREDICTIONS_FILE)
        steps.append(
            Step(
                "predict",
                "predict",
                dict(
                    model=export,
                    videos=os.path.join(out, PREDICT_LIST),
                    output=predictions,
                    frames_per_video=config["frames_per_video"],
                    top_k=3,
                    flow_method=config["flow_method"],
                    flow_bound=config["flow_bound"],
                ),
                deps=("export",),
                inputs=(os.path.join(out, PREDICT_LIST),),
                outputs=(predictions,),
                cost=COSTS["predict"],
            )
        )
    words = os.path.join(out, "action_words")
    steps.append(
        Step(
            "action_words",
            "viz-action-words",
            dict(
                model=os.path.join(runs, "rgb_netvlad_stage2", "model.keras"),
                videos=",".join(videos[:4]),
                output_dir=words,
                frames_per_video=config["frames_per_video"],
                num_words=3,
                rank="contribution",
            ),
            deps=("rgb_netvlad_stage2",),
            outputs=(words,),
            cost=COSTS["action_words"],
        )
    )
    return steps


def write_predict_list(config, out):
    """`<out>/predict_videos.txt`: the first `predict_videos` held-out videos, one per line (path, a
    tab, its name: the path below `out`), the list the predict step reads."""
    os.makedirs(out, exist_ok=True)
    lines = [
        f"{path}\t{os.path.relpath(path, out)}\n"
        for path in held_out_videos(config, os.path.join(out, "data"))[: config["predict_videos"]]
    ]
    with atomic_output(os.path.join(out, PREDICT_LIST)) as temporary, open(temporary, "w", encoding="utf-8") as f:
        f.writelines(lines)


def read_predictions(out):
    """{video name: [(class, probability)]} of the predict step's `.csv` (the layout of
    `export.predictions.format_rows`; the demo, a plan of runs, does not import `export`)."""
    with open(os.path.join(out, PREDICTIONS_FILE), encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))[1:]
    return {row[0]: [(row[i], float(row[i + 1])) for i in range(3, len(row) - 1, 2)] for row in rows}


def held_out_videos(config, data):
    """Paths of held-out videos that no model trained on, one per class in turn: the test videos,
    or with evaluate_on "val" the validation videos."""
    classes = synthetic.demo_classes(config["num_classes"])
    first, count = config["train_per_class"] + 1, config["test_per_class"]
    if config["evaluate_on"] == "val":
        first, count = config["train_per_class"] - config["val_per_class"] + 1, config["val_per_class"]
    return [
        os.path.join(data, "videos", synthetic.video_name(demo_class, group))
        for group in range(first, first + count)
        for demo_class in classes
    ]


def fuse_all(results_dir, list_file, flow_weight):
    """Late fusion ((1 − w)·RGB + w·flow on raw logits, release §6.3) of every method's two streams,
    and for ActionVLAD (stage 2) the top-1 accuracy at every flow weight 0, 0.1, …, 1 (the sweep by
    which the demo's weight was chosen on the validation split)."""
    labels = np.array([entry.label for entry in read_list(list_file)])
    table, logits_of = {}, {}
    for key, _ in ROWS:
        row, logits = {}, logits_of.setdefault(key, {})
        for stream in STREAMS["rgb+flow"]:
            logits[stream] = read_logits(
                os.path.join(results_dir, f"{stream}_{key}", "logits.h5"), expected_rows=len(labels)
            )
            row[stream] = top_k_accuracy(logits[stream], labels, 1)
        row["fused"] = top_k_accuracy(late_fusion(logits["rgb"], logits["flow"], flow_weight), labels, 1)
        table[key] = {name: float(value) for name, value in row.items()}
    netvlad = logits_of["netvlad"]
    _, grid, accuracies = search_flow_weight(netvlad["rgb"], netvlad["flow"], labels, np.linspace(0, 1, 11))
    return table, {f"{w:.1f}": float(a) for w, a in zip(grid, accuracies)}


def format_table(table, num_classes, num_videos, caption, flow_weight):
    lines = [
        f"Demo results: top-1 accuracy (%) on {num_videos} held-out videos, {num_classes} classes "
        f"(chance {100 / num_classes:.1f}); late fusion {1 - flow_weight:.3g}·RGB + {flow_weight:.3g}·flow "
        f"(raw logits); backbone: {caption}",
        f"{'Method':<40}{'RGB':>8}{'Flow':>8}{'Late fuse':>11}",
    ]
    for key, label in ROWS:
        row = table[key]
        lines.append(f"{label:<40}{row['rgb']:>8.1f}{row['flow']:>8.1f}{row['fused']:>11.1f}")
    return "\n".join(lines)


def step_environment():
    """What the steps' environment adds so that they import this very package: a source tree's root
    goes first on PYTHONPATH (`python -m` would otherwise import whichever actionvlad_tf the
    installation offers); an installed package needs nothing."""
    root = commands.source_root()
    if root is None:
        return {}
    return {"PYTHONPATH": os.pathsep.join(filter(None, (root, os.environ.get("PYTHONPATH"))))}


def make_workflow(steps, out, jobs, execute=None):
    """The `Workflow` that runs demo steps as the demo does: each through the `actionvlad` launcher
    in `out`, keyed by the code that runs, `jobs` at a time, progress lines printed; by default each
    step in a process forked from a server that has imported TensorFlow (`forkserver`)."""
    program = [sys.executable, "-m", commands.MODULE]
    if execute is None and hasattr(os, "fork"):
        execute = ForkServers(jobs, program, cwd=out, environment=step_environment())
    return Workflow(
        steps,
        program,
        os.path.join(out, "steps"),
        os.path.join(out, "logs"),
        version=code_version(*commands.source_folders()),
        jobs=jobs,
        echo=lambda line: print(line, flush=True),
        environment=step_environment(),
        shown="actionvlad",
        cwd=out,
        execute=execute,
    )


def run_demo(config, out, precision, reason):
    """The whole demo for one configuration (`CONFIG_KEYS` and "jobs") under `out`, with the Keras
    precision `precision` (float32 / bfloat16 / float16) chosen for `reason`; prints progress, the
    table and the predictions, writes `results.json` and returns its content."""
    start = time.time()
    runs = os.path.join(out, "runs")
    os.makedirs(runs, exist_ok=True)
    backbones, width, image_size, caption = resolve_backbones(config, runs)
    steps = build_steps(config, out, backbones, width, image_size, precision)
    workflow = make_workflow(steps, out, config["jobs"])
    print(
        f"{len(steps)} steps, {len(workflow.pending())} to run; precision {precision} ({reason}); "
        f"{hardware.machine_line()}",
        flush=True,
    )
    ran = workflow.run()

    split_id = 2 if config["evaluate_on"] == "val" else 1
    list_file = os.path.join(out, "data", "lists", f"test_split{split_id}.txt")
    table, sweep = fuse_all(os.path.join(out, "results"), list_file, config["flow_weight"])
    with open(list_file, encoding="utf-8") as f:
        num_videos = sum(1 for line in f if line.strip())
    text = format_table(table, config["num_classes"], num_videos, caption, config["flow_weight"])
    print("\n" + text)
    print("ActionVLAD late fusion by flow weight: " + ", ".join(f"{w} → {a:.1f}" for w, a in sweep.items()))
    predictions = read_predictions(out) if config["predict_videos"] else {}
    if predictions:
        print(f"\npredict.py on the held-out videos (--videos={PREDICT_LIST} --output={PREDICTIONS_FILE}):")
    for video, top in predictions.items():
        print(
            f"{video} (true class {os.path.basename(os.path.dirname(video))}):\n"
            + "\n".join(f"  {probability:7.2%}  {name}" for name, probability in top)
        )
    seconds = workflow.recorded_seconds()
    summary = {
        "top1": table,
        "rows": dict(ROWS),
        "table": text,
        "num_test_videos": num_videos,
        "netvlad_fusion_by_flow_weight": sweep,
        "config": dict(
            config,
            backbone_file=backbones["rgb"],
            flow_backbone_file=backbones["flow"],
            backbone_width=width,
            image_size=image_size,
        ),
        "backbone": caption,
        "precision": {"policy": precision, "reason": reason},
        "machine": hardware.machine_summary(),
        "steps_run": ran,
        "seconds": {"total": round(time.time() - start, 1), **seconds},
        "action_words": os.path.join(out, "action_words"),
    }
    write_json(os.path.join(out, "results.json"), summary)
    print(
        f"\nwall time {summary['seconds']['total']:.0f} s ({len(ran)} steps run); everything under {out}: "
        f"results.json, results/*/confusion.png, export/1/, action_words/*.png",
        flush=True,
    )
    return summary


def seeds_table(summaries, caption):
    """Markdown: mean ± standard deviation over seeds of every row and column."""
    seeds = [s["config"]["seed"] for s in summaries]
    flow_weight = summaries[0]["config"]["flow_weight"]
    lines = [
        f"Demo top-1 accuracy (%), mean ± standard deviation over seeds {', '.join(map(str, seeds))} "
        f"({summaries[0]['num_test_videos']} test videos per seed, chance "
        f"{100 / summaries[0]['config']['num_classes']:.1f}); late fusion {1 - flow_weight:.3g}·RGB + "
        f"{flow_weight:.3g}·flow (raw logits); backbone: {caption}",
        "",
        "| Method | RGB | Flow | Late fuse |",
        "|---|---|---|---|",
    ]
    for key, label in ROWS:
        cells = []
        for column in ("rgb", "flow", "fused"):
            values = np.array([s["top1"][key][column] for s in summaries])
            cells.append(f"{values.mean():.1f} ± {values.std(ddof=1) if len(values) > 1 else 0.0:.1f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    totals = [s["seconds"]["total"] for s in summaries]
    lines += [
        "",
        f"Wall time per seed: {', '.join(f'{t:.0f} s' for t in totals)}; "
        f"{summaries[0]['machine']['cpu_model']}, precision {summaries[0]['precision']['policy']}.",
    ]
    return "\n".join(lines) + "\n"


def run_seeds(config, out, seeds, precision, reason, table_files=()):
    """`run_demo` once per seed in `<out>/seed_N`; writes the mean ± std table (`seeds_table`) to
    `<out>/seeds.md` and each of `table_files`, and `<out>/seeds.json`; returns the table."""
    summaries = []
    for seed in seeds:
        print(f"\n=== seed {seed} ===", flush=True)
        summaries.append(run_demo(dict(config, seed=int(seed)), os.path.join(out, f"seed_{seed}"), precision, reason))
    text = seeds_table(summaries, summaries[0]["backbone"])
    print("\n" + text)
    for path in (os.path.join(out, "seeds.md"),) + tuple(table_files):
        with atomic_output(path) as temporary, open(temporary, "w", encoding="utf-8") as f:
            f.write(text)
    with atomic_output(os.path.join(out, "seeds.json")) as temporary, open(temporary, "w", encoding="utf-8") as f:
        json.dump(
            [{"seed": s["config"]["seed"], "top1": s["top1"], "seconds": s["seconds"]["total"]} for s in summaries],
            f,
            indent=1,
        )
    return text
