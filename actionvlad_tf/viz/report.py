"""Writes an evaluation's figures to a results folder: `results.json`, `confusion.npy`, `confusion.png`."""

import pathlib

import numpy as np

from actionvlad_tf.atomic import atomic_output, write_json
from actionvlad_tf.viz.confusion import plot_confusion


def write_results(results, out_dir):
    """Writes `metrics.evaluate_logits`' dict to `out_dir`, each file atomically.

    - `results.json`: every entry but the confusion matrix;
    - `confusion.npy`: the [C, C] counts (rows = true class);
    - `confusion.png`: the row-normalised matrix, class names on the axes for up to 60 classes.
    Multi-label results (Charades mAP / wAP, no confusion matrix) give `results.json` only.

    Returns:
        dict of the written paths.
    """
    out_dir = pathlib.Path(out_dir)
    if "confusion" not in results:
        write_json(out_dir / "results.json", results)
        return {"results.json": out_dir / "results.json"}
    confusion = np.asarray(results["confusion"])
    paths = {name: out_dir / name for name in ("results.json", "confusion.npy", "confusion.png")}
    write_json(paths["results.json"], {key: value for key, value in results.items() if key != "confusion"})
    with atomic_output(paths["confusion.npy"]) as temporary:
        with open(temporary, "wb") as handle:
            np.save(handle, confusion)
    plot_confusion(
        confusion,
        results.get("class_names"),
        paths["confusion.png"],
        title=f"top-1 {results['top1']:.2f}%" if "top1" in results else None,
    )
    return paths
