"""One benchmark run: the selected sections in order, at the paper's shapes or tiny (`quick`)."""

import logging
import os
import platform
import tempfile
import time

import tensorflow as tf

from actionvlad_tf import hardware
from actionvlad_tf.benchmark import flow, folder_predict, kernels, machine, pipelines, table, updates
from actionvlad_tf.benchmark.timing import interleaved_times, matmul_pass

log = logging.getLogger(__name__)

SECTIONS = ("netvlad", "backbone", "input_pipeline", "end_to_end", "flow", "updates", "predict_folder")
# flow, updates and predict_folder on request (--sections=flow,updates,predict_folder): minutes of
# TV-L1, the paper's shape, and video files written and classified at two shapes.
DEFAULT_SECTIONS = SECTIONS[:4]
CLIPS_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "clips")
# Shapes and repeats. Full: the paper's (release §2.5: T = 25, 224² crops of 340×256 frames,
# K = 64, conv5_3 maps of 14 × 14 × 512); repeats chosen so the whole run stays under 10 minutes
# on 2 CPU cores. Quick: tiny shapes for tests and smoke runs.
SIZES = {
    "full": dict(
        matmul_size=4096,
        netvlad=dict(videos=2, frames=25, height=14, width=14, depth=512, num_clusters=64),
        backbone=dict(frames=25, image_size=224),
        frames=dict(num_videos=6, num_frames=60, height=256, width=340),
        pipeline=dict(frames_per_video=25, image_size=224, resize_shape=(256, 340), videos_per_sample=3),
        end_to_end=dict(num_clusters=64, batch_videos=1, cache_videos=1, cache_views=1),
        flow=dict(height=256, width=340, pairs=16, batch=16, accuracy_shape=(96, 128), clip_frames=6),
        # The main job's update (experiments/demo.py: T = 10, 96² crops, K = 64, 6 classes,
        # 4 micro-batches of 4 videos, the width-¼ stand-in) and the paper's (T = 25, 224², K = 64,
        # 51 classes, full width; the update with clipping, forward+backward and the uncached
        # updates, timed once after a warm-up: a paper-shape update without the cache is a minute).
        updates=dict(
            main_job=dict(
                frames=10, image_size=96, num_clusters=64, num_classes=6, videos=16, micro_batch=4, width=0.25
            ),
            paper=dict(
                frames=25,
                image_size=224,
                num_clusters=64,
                num_classes=51,
                videos=16,
                micro_batch=4,
                repeats=1,
                variants=("update (4×4", "forward+backward", "stage-2 update without", "stage-1 update without"),
            ),
        ),
        # predict.py --videos: the demo's shape (T = 10, 96² crops of 128×96 videos of 36 frames,
        # K = 64, the width-¼ stand-in) and the paper's (T = 25, 224² crops of 320×240 videos of 90
        # frames, HMDB51's size and a typical length; K = 64, full width).
        predict_folder=dict(
            demo=dict(
                num_videos=8,
                num_frames=36,
                height=96,
                width=128,
                frames_per_video=10,
                image_size=96,
                num_clusters=64,
                backbone_width=0.25,
            ),
            paper=dict(
                num_videos=4, num_frames=90, height=240, width=320, frames_per_video=25, image_size=224, num_clusters=64
            ),
        ),
        repeats=dict(netvlad=3, backbone=3, input_pipeline=3, end_to_end=3, flow=2, updates=2, predict_folder=2),
    ),
    "quick": dict(
        matmul_size=256,
        netvlad=dict(videos=2, frames=3, height=4, width=4, depth=32, num_clusters=4),
        backbone=dict(frames=3, image_size=32),
        frames=dict(num_videos=3, num_frames=14, height=40, width=48),
        pipeline=dict(frames_per_video=3, image_size=32, resize_shape=(40, 48), videos_per_sample=2),
        end_to_end=dict(num_clusters=4, batch_videos=1, cache_videos=2, cache_views=2),
        flow=dict(height=40, width=48, pairs=4, batch=2, accuracy_shape=(40, 48), clip_frames=2),
        updates=dict(main_job=dict(frames=2, image_size=32, num_clusters=4, num_classes=3, videos=4, micro_batch=2)),
        predict_folder=dict(
            quick=dict(
                num_videos=3,
                num_frames=12,
                height=40,
                width=48,
                frames_per_video=3,
                image_size=32,
                num_clusters=4,
                backbone_width=0.25,
            )
        ),
        repeats=dict(netvlad=2, backbone=2, input_pipeline=2, end_to_end=2, flow=1, updates=1, predict_folder=1),
    ),
}


def _load():
    return [round(x, 2) for x in os.getloadavg()]


def _peak(results, size):
    """The machine's peak: the best GEMM of the run (TensorFlow's matmul, from the sections or
    timed here, and NumPy's in a child process) and the theoretical rate."""
    rates = [
        section["matmul_flops"]["float32"] for section in (results.get("netvlad"), results.get("backbone")) if section
    ]
    if not rates:
        product, flop = matmul_pass(size)
        rates = [flop / interleaved_times({"matmul": product}, repeats=3)["matmul"].median]
    return machine.peak_summary(max(rates), machine.numpy_gemm_flops(size), results["machine"])


def run_benchmark(
    sections=DEFAULT_SECTIONS,
    quick=False,
    repeats=None,
    warmup=1,
    memory=True,
    xla=True,
    mixed=True,
    workdir=None,
    clips_dir=CLIPS_DIR,
):
    """Runs `sections` (a subset of SECTIONS, run in SECTIONS order) and returns the results dict
    (JSON-ready; `format_table` prints it).

    Args:
        quick: tiny shapes instead of the paper's.
        repeats: timed repeats of every figure (default: per section, `SIZES[...]["repeats"]`).
        warmup: untimed rounds before them.
        memory: measure NetVLAD's peak memory.
        xla: add XLA-compiled backbone rows.
        mixed: add end-to-end rows under the mixed-precision policy.
        workdir: where generated frames, packed shards and feature caches go (default: a
            temporary folder, deleted at the end).
        clips_dir: real clips for the flow section's agreement with OpenCV (skipped if absent).
    """
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise ValueError(f"unknown sections {sorted(unknown)}; choose from {SECTIONS}")
    sizes = SIZES["quick" if quick else "full"]
    rounds = {s: repeats or sizes["repeats"][s] for s in SECTIONS}
    started = time.perf_counter()
    results = {
        "quick": quick,
        "sections": [s for s in SECTIONS if s in sections],
        "machine": {
            "device": kernels.compute_device(),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "tensorflow": tf.__version__,
            "load_before": _load(),
            **machine.describe_machine(),
        },
        "matmul_size": sizes["matmul_size"],
    }
    if "netvlad" in sections:
        log.info("section 1: NetVLAD")
        results["netvlad"] = kernels.bench_netvlad(
            **sizes["netvlad"],
            matmul_size=sizes["matmul_size"],
            repeats=rounds["netvlad"],
            warmup=warmup,
            memory=memory,
        )
    if "backbone" in sections:
        log.info("section 2: backbone")
        results["backbone"] = kernels.bench_backbone(
            **sizes["backbone"], matmul_size=sizes["matmul_size"], repeats=rounds["backbone"], warmup=warmup, xla=xla
        )
    if {"input_pipeline", "end_to_end"} & set(sections):
        with tempfile.TemporaryDirectory(dir=workdir, prefix="actionvlad_bench_") as root:
            log.info("writing benchmark frames to %s", root)
            list_file = pipelines.write_benchmark_frames(root, **sizes["frames"])
            if "input_pipeline" in sections:
                log.info("section 3: input pipeline")
                results["input_pipeline"] = pipelines.bench_input_pipeline(
                    root, list_file, **sizes["pipeline"], repeats=rounds["input_pipeline"], warmup=warmup
                )
            if "end_to_end" in sections:
                log.info("section 4: end to end")
                policies = ("float32", kernels.mixed_policy()) if mixed else ("float32",)
                shape = {k: sizes["pipeline"][k] for k in ("frames_per_video", "image_size", "resize_shape")}
                results["end_to_end"] = pipelines.bench_end_to_end(
                    root,
                    list_file,
                    **shape,
                    **sizes["end_to_end"],
                    policies=policies,
                    repeats=rounds["end_to_end"],
                    warmup=warmup,
                )
    if "flow" in sections:
        log.info("section 5: optical flow")
        results["flow"] = flow.bench_flow(
            **sizes["flow"], repeats=rounds["flow"], warmup=warmup, xla=xla, clips_dir=None if quick else clips_dir
        )
    if "updates" in sections:
        log.info("section 6: training updates")
        shapes = dict(sizes["updates"])
        auto_policy, _ = hardware.choose_precision("auto")
        if mixed and auto_policy != "float32":  # the main job as --mixed_precision=auto runs it here
            shapes[f"main_job_{auto_policy}"] = dict(shapes["main_job"], policy=auto_policy)
        results["updates"] = {}
        for name, shape in shapes.items():
            shape = dict(shape)
            repeat = shape.pop("repeats", None) or rounds["updates"]
            results["updates"][name] = updates.bench_updates(**shape, repeats=repeat, warmup=warmup)
    if "predict_folder" in sections:
        log.info("section 7: classifying a folder of videos")
        with tempfile.TemporaryDirectory(dir=workdir, prefix="actionvlad_bench_") as root:
            results["predict_folder"] = {
                name: folder_predict.bench_folder_predict(
                    root, name, **shape, repeats=rounds["predict_folder"], warmup=warmup
                )
                for name, shape in sizes["predict_folder"].items()
            }
    results["peak"] = _peak(results, sizes["matmul_size"])
    results["machine"]["load_after"] = _load()
    results["wall_s"] = time.perf_counter() - started
    results["targets"] = table.evaluate_targets(results)
    return results
