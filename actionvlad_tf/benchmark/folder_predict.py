"""Section 7: classifying a folder of videos (`predict.py --videos`) against the model alone.

Per shape, one model (`export.predictor.Classifier` on a `.keras` file, as predict.py loads it) is
timed two ways, interleaved round by round: the folder mode (`export.predictions.predict_videos`:
counting and decoding the video files, sampling, in worker threads while the model runs, and
writing the `.csv`), and the same Classifier on the same videos' sampled frames already decoded in
memory (the model alone, eval preprocessing in the graph included). The ratio of their videos/s is
what decoding costs once it overlaps the model: 1.0 is all of it hidden.
"""

import os

import cv2
import keras
import numpy as np

from actionvlad_tf.atomic import save_keras_atomic
from actionvlad_tf.benchmark.timing import interleaved_times
from actionvlad_tf.export import predictions, predictor, video_batch
from actionvlad_tf.models import build_actionvlad


def write_benchmark_videos(root, num_videos, num_frames, height, width, seed=0):
    """`num_videos` MJPG .avi files of a smooth scene drifting a pixel per frame plus sensor noise
    (so the JPEGs cost what real frames cost to decode); returns the folder."""
    folder = os.path.join(root, "videos")
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    for video in range(num_videos):
        scene = cv2.resize(
            rng.integers(0, 256, (height // 16, (width + num_frames) // 16, 3), dtype=np.uint8),
            (width + num_frames, height),
            interpolation=cv2.INTER_CUBIC,
        )
        writer = cv2.VideoWriter(
            os.path.join(folder, f"video{video:03d}.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (width, height)
        )
        for t in range(num_frames):
            writer.write(
                np.clip(scene[:, t : t + width] + rng.normal(0, 4, (height, width, 3)), 0, 255).astype(np.uint8)
            )
        writer.release()
    return folder


def bench_folder_predict(
    root,
    name,
    num_videos,
    num_frames,
    height,
    width,
    frames_per_video,
    image_size,
    num_clusters,
    backbone_width=1.0,
    num_classes=6,
    workers=video_batch.DEFAULT_WORKERS,
    repeats=2,
    warmup=1,
    seed=0,
):
    """{shape, folder_videos_per_s, model_alone_videos_per_s, ratio, samples} for one shape."""
    workdir = os.path.join(root, name)
    folder = write_benchmark_videos(workdir, num_videos, num_frames, height, width, seed)
    keras.utils.set_random_seed(seed)
    model = build_actionvlad(
        num_classes,
        frames_per_video=frames_per_video,
        image_size=image_size,
        num_clusters=num_clusters,
        backbone_width=backbone_width,
    )
    classifier = predictor.Classifier(save_keras_atomic(model, os.path.join(workdir, "model.keras")))
    jobs = video_batch.find_inputs(folder)
    decoded = [predictor.video_inputs(job.source, classifier.modalities, frames_per_video) for job in jobs]
    rounds = iter(range(10**6))

    def folder_mode():
        output = os.path.join(workdir, f"predictions_{next(rounds)}.csv")
        summary = predictions.predict_videos(
            classifier, jobs, output, frames_per_video=frames_per_video, workers=workers, progress=False
        )
        assert summary.processed == num_videos and not summary.failed, summary.report()

    def model_alone():
        return [classifier(inputs) for inputs in decoded]

    times = interleaved_times({"folder": folder_mode, "model_alone": model_alone}, repeats=repeats, warmup=warmup)
    rates = {k: num_videos / t.median for k, t in times.items()}
    return {
        "shape": dict(
            num_videos=num_videos,
            num_frames=num_frames,
            height=height,
            width=width,
            frames_per_video=frames_per_video,
            image_size=image_size,
            num_clusters=num_clusters,
            backbone_width=backbone_width,
            workers=workers,
        ),
        "folder_videos_per_s": rates["folder"],
        "model_alone_videos_per_s": rates["model_alone"],
        "ratio": rates["folder"] / rates["model_alone"],
        "samples_s": {k: t.samples for k, t in times.items()},
    }
