"""The ActionVLAD vector of many videos in one HDF5 file, for one's own task (the release's issue
14: "how do I extract ActionVLAD features").

Datasets, one row per video, row i of each belonging to `videos[i]`:

| dataset | dtype, shape | |
|---|---|---|
| `videos` | string [N] | the video's name (path below the folder, or as the list gives it) |
| `embedding` | float32 [N, E] | the pooled vector the classifier reads: K·D for ActionVLAD (Eq. 2, normalised) |
| `logits` | float32 [N, C] | the classifier's logits |
| `assignments` (optional) | float32 [N, F, h, w, K] | soft assignment of each conv position to the K clusters (Eq. 1) |

Late fusion: `embedding` is RGB then flow; `assignments_rgb` / `assignments_flow` per stream.

Attributes record the model, T, modalities and the flow method; a re-run with other ones is an error.
Resumable: rows are appended video by video and `videos` is written last, so on opening, rows past
`len(videos)` (a run killed mid-video) are dropped and the named videos are skipped.
"""

import h5py
import numpy as np

from actionvlad_tf.export.predictor import video_inputs
from actionvlad_tf.export.video_batch import DEFAULT_WORKERS, run_videos
from actionvlad_tf.prep.extraction import DEFAULT_FLOW_BOUND
from actionvlad_tf.prep.video_inputs import DEFAULT_FRAMES_PER_VIDEO

SERVING_ONLY = ("probabilities", "top5_indices", "top5_classes")  # not stored: they follow from logits


class FeatureFile:
    """An HDF5 feature file opened for appending (module docstring); a context manager."""

    def __init__(self, path, attributes):
        self.path = str(path)
        self.file = h5py.File(self.path, "a")
        for key, value in attributes.items():
            if key in self.file.attrs and str(self.file.attrs[key]) != str(value):
                written = self.file.attrs[key]
                self.file.close()
                raise ValueError(f"{self.path} was written with {key}={written}, not {value}: write to another file")
            self.file.attrs[key] = str(value)
        if "videos" not in self.file:
            self.file.create_dataset("videos", (0,), maxshape=(None,), dtype=h5py.string_dtype())
        count = len(self.file["videos"])
        for name, dataset in self.file.items():
            if len(dataset) != count:  # a run killed between a row and its name
                dataset.resize(count, axis=0)

    def names(self):
        return [name.decode() if isinstance(name, bytes) else name for name in self.file["videos"][:]]

    def append(self, name, arrays):
        count = len(self.file["videos"])
        for key, value in arrays.items():
            value = np.asarray(value, np.float32)
            if key not in self.file:
                self.file.create_dataset(
                    key,
                    (0, *value.shape),
                    maxshape=(None, *value.shape),
                    dtype=np.float32,
                    chunks=(1, *value.shape),
                    compression="gzip" if value.ndim > 1 else None,
                )
            dataset = self.file[key]
            if dataset.shape[1:] != value.shape:
                raise ValueError(f"{name}: {key} of shape {value.shape}, the file's rows are {dataset.shape[1:]}")
            dataset.resize(count + 1, axis=0)
            dataset[count] = value
        self.file["videos"].resize(count + 1, axis=0)
        self.file["videos"][count] = name
        self.file.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()


def extract_features(
    classifier,
    jobs,
    output,
    frames_per_video=DEFAULT_FRAMES_PER_VIDEO,
    flow_method="tvl1",
    flow_bound=DEFAULT_FLOW_BOUND,
    workers=DEFAULT_WORKERS,
    progress=True,
):
    """Writes the features of `jobs` (`video_batch.find_inputs`) by `classifier` (a
    `predictor.Classifier`, with `assignments=True` for the soft assignments) to the HDF5 file
    `output` (module docstring); returns the `video_batch.RunSummary`."""
    frames = classifier.frames_per_video or frames_per_video
    attributes = {
        "model": classifier.path,
        "frames_per_video": frames,
        "modalities": "+".join(classifier.modalities),
        "flow_method": flow_method if "flow" in classifier.modalities else "",
    }

    def prepare(job):
        return video_inputs(
            job.source, classifier.modalities, frames, flow_method, where=job.source, flow_bound=flow_bound
        )

    with FeatureFile(output, attributes) as features:

        def consume(job, inputs):
            outputs = classifier(inputs)
            if "embedding" not in outputs:
                raise ValueError(f"{classifier.path}: the model has no pooled vector (no layer named classifier)")
            features.append(job.name, {k: v for k, v in outputs.items() if k not in SERVING_ONLY})

        return run_videos(jobs, prepare, consume, features.names(), workers, progress, description="features")
