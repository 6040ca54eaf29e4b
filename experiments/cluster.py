r"""k-means centres for ActionVLAD (release §5: `001_*_feats_for_clustering` + `cluster_feats.py`).

  python experiments/cluster.py --flagfile=experiments/configs/hmdb51_rgb_split1_cluster.flags

One random frame (or flow stack) of a shuffled training video at a time, the single test crop, the
frozen backbone's pre-ReLU --conv_endpoint map; every descriptor L2-normalised; k-means with K =
--num_clusters and a fixed --seed; the centres (not re-normalised) to --centers as `.npz`.
"""

import common_flags
import flagfiles
from absl import flags

from actionvlad_tf.training.kmeans import ALGORITHMS, RELEASE_NUM_FRAMES
from actionvlad_tf.training.run import ClusterOptions, cluster_experiment

flags.DEFINE_string("centers", None, "Output .npz of the centres.")
flags.DEFINE_integer("num_frames", RELEASE_NUM_FRAMES, "Frames whose descriptors are clustered (release 5000).")
flags.DEFINE_integer("descriptors_per_frame", None, "Random positions kept per frame (default: all).")
flags.DEFINE_enum("kmeans_algorithm", "kmeans", list(ALGORITHMS), "kmeans (release) or minibatch (large N).")
flags.DEFINE_integer("kmeans_n_init", 10, "k-means restarts (sklearn 0.17's default, as the release).")
flags.DEFINE_integer("kmeans_max_iter", 300, "k-means iterations per restart.")
flags.DEFINE_integer("frames_per_batch", 64, "Frames per forward pass (release: 64).")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    dataset, model, inputs = common_flags.specs()
    options = ClusterOptions(
        centers=FLAGS.centers,
        num_frames=FLAGS.num_frames,
        descriptors_per_frame=FLAGS.descriptors_per_frame,
        kmeans_algorithm=FLAGS.kmeans_algorithm,
        kmeans_n_init=FLAGS.kmeans_n_init,
        kmeans_max_iter=FLAGS.kmeans_max_iter,
        frames_per_batch=FLAGS.frames_per_batch,
        backbone_weights=FLAGS.backbone_weights,
        seed=FLAGS.seed,
        deterministic=FLAGS.deterministic,
        mixed_precision=FLAGS.mixed_precision,
    )
    centers, info = cluster_experiment(dataset, model, inputs, options)
    print(
        f"{centers.shape[0]} centres of dimension {centers.shape[1]} from {info['num_descriptors']} descriptors "
        f"({FLAGS.num_frames} frames), inertia {info['inertia']:.4g}, {info['seconds']:.1f} s → {FLAGS.centers}"
    )


if __name__ == "__main__":
    flags.mark_flags_as_required(["centers"])
    common_flags.require_videos()
    flagfiles.run(main)
