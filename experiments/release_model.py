r"""A released checkpoint (`get_models.sh`) by name → an evaluated Keras model: download it (or take
a local file), check its SHA-256, convert it, and evaluate it on its test split.

  python experiments/release_model.py --name=hmdb51_rgb_split1 --flagfile=experiments/configs/_hmdb51.flags \
      --num_crops=5 --results_dir=runs/release/hmdb51_rgb_split1
  python experiments/release_model.py --name=hmdb51_twostream_flow_split1 --checkpoint_file=split1.ckpt

The names, the files and the accuracy each should give are in docs/evaluation.md
(`actionvlad_tf.convert.release_models.RELEASE_MODELS`). Without --dataset_list_dir, --packed_files
or --tfds_name the model is converted only. The dataset, modality and split come from the name.
"""

import os

import common_flags
import flagfiles
from absl import flags

from actionvlad_tf.convert import release_models
from actionvlad_tf.viz.report import write_results

flags.DEFINE_enum("name", None, list(release_models.RELEASE_MODELS), "The released checkpoint.")
flags.DEFINE_string("models_dir", ".", "Root of get_models.sh's models/ folder (downloads go there).")
flags.DEFINE_string("checkpoint_file", None, "A local copy of the checkpoint instead of the download.")
flags.DEFINE_string("sha256", None, "Expected SHA-256 of the checkpoint (the first download's is recorded).")
flags.DEFINE_string("output", None, "The .keras file (default runs/release/<name>/model.keras).")
flags.DEFINE_string("results_dir", None, "Evaluation outputs (default: beside --output).")
flags.mark_flags_as_required(["name"])
FLAGS = flags.FLAGS


def main(argv):
    del argv
    output = FLAGS.output or os.path.join("runs", "release", FLAGS.name, "model.keras")
    evaluate = bool(FLAGS.dataset_list_dir or FLAGS.packed_files or FLAGS.tfds_name)
    done = release_models.fetch_convert_evaluate(
        FLAGS.name,
        FLAGS.models_dir,
        output,
        common_flags.input_spec() if evaluate else None,
        FLAGS.results_dir or os.path.dirname(os.path.abspath(output)),
        FLAGS.checkpoint_file,
        FLAGS.sha256,
        FLAGS.image_size,
        FLAGS.mixed_precision,
    )
    print(f"{done['path']}: SHA-256 {done['sha256']}")
    print(done["report"].summary())
    print(f"Keras model: {done['model']}")
    if "results" in done:
        results, expected = done["results"], done["expected"]
        write_results(results, FLAGS.results_dir or os.path.dirname(os.path.abspath(output)))
        figure = f"top-1 {results['top1']:.2f}" if "top1" in results else f"mAP {results['mAP']:.2f}"
        print(
            f"{figure} on {results['num_videos']} videos"
            + (f" (the release: {expected:.2f} at 25 frames × 5 crops)" if expected is not None else "")
        )


if __name__ == "__main__":
    flagfiles.run(main)
