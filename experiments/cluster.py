r"""k-means centres for ActionVLAD (release §5: `001_*_feats_for_clustering` + `cluster_feats.py`).

  python experiments/cluster.py --flagfile=experiments/configs/hmdb51_rgb_split1_cluster.flags

One random frame (or flow stack) of a shuffled training video at a time, the single test crop, the
frozen backbone's pre-ReLU --conv_endpoint map; every descriptor L2-normalised; k-means with K =
--num_clusters and a fixed --seed; the centres (not re-normalised) to --centers as `.npz`.
"""
from absl import app, flags

import common_flags
from actionvlad_tf.centers import save_centers
from actionvlad_tf.data.lists import read_list
from actionvlad_tf.data.video_input import make_video_dataset
from actionvlad_tf.training import experiment
from actionvlad_tf.training.kmeans import (ALGORITHMS, RELEASE_NUM_FRAMES, fit_centers, sample_descriptors,
                                           sample_frame_entries)

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
    experiment.set_determinism(FLAGS.seed, FLAGS.deterministic)
    experiment.set_precision(FLAGS.mixed_precision)
    num_classes = experiment.num_classes_of(FLAGS.dataset_name, FLAGS.num_classes)
    list_file = experiment.split_list_file(FLAGS.dataset_list_dir, "train", FLAGS.split_id)
    frames = sample_frame_entries(read_list(list_file, num_classes), FLAGS.num_frames, FLAGS.modality,
                                  seed=FLAGS.seed)
    dataset = make_video_dataset(
        frames, FLAGS.dataset_dir, FLAGS.flow_dir, FLAGS.modality, frames_per_video=1, training=False,
        batch_size=FLAGS.frames_per_batch, num_crops=1, image_size=FLAGS.image_size,
        resize_shape=common_flags.resize_shape())
    features = experiment.descriptor_model(FLAGS.modality, FLAGS.conv_endpoint, FLAGS.fusion, FLAGS.image_size,
                                           FLAGS.model_name, FLAGS.backbone_weights,
                                           backbone_width=FLAGS.backbone_width)
    descriptors = sample_descriptors(lambda x: features(x, training=False), dataset, FLAGS.num_frames,
                                     FLAGS.descriptors_per_frame, seed=FLAGS.seed)
    centers, info = fit_centers(descriptors, FLAGS.num_clusters, seed=FLAGS.seed, algorithm=FLAGS.kmeans_algorithm,
                                n_init=FLAGS.kmeans_n_init, max_iter=FLAGS.kmeans_max_iter)
    save_centers(FLAGS.centers, centers, num_frames=FLAGS.num_frames, num_descriptors=len(descriptors),
                 seed=FLAGS.seed, conv_endpoint=FLAGS.conv_endpoint, modality=FLAGS.modality, **info)
    print(f"{centers.shape[0]} centres of dimension {centers.shape[1]} from {len(descriptors)} descriptors "
          f"({FLAGS.num_frames} frames), inertia {info['inertia']:.4g}, {info['seconds']:.1f} s → {FLAGS.centers}")


if __name__ == "__main__":
    flags.mark_flags_as_required(["centers", "dataset_list_dir"])
    app.run(main)
