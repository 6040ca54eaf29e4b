r"""t-SNE of local features (paper Fig. 5 and appendix Fig. 10).

  # Fig. 5: conv5_3 (pre-ReLU) vs fc7 (pre-ReLU) of the same frames of a VGG-16, coloured by video
  python experiments/viz_tsne.py --mode=conv5_vs_fc7 --vgg_weights=imagenet \
      --videos=a.avi,b.avi,c.avi,d.avi --output=figures/tsne_conv5_fc7.png
  # Fig. 10: L2-normalised conv5 of corresponding RGB and flow frames, coloured by stream
  python experiments/viz_tsne.py --mode=rgb_vs_flow --rgb_model=runs/rgb/model.keras \
      --flow_model=runs/flow/model.keras --videos=a.avi,b.avi --output=figures/tsne_rgb_flow.png

Frames are sampled with the release's step (rgb+flow pairing for Fig. 10) and cropped as in
evaluation; `--descriptors_per_frame` conv5 positions are drawn per frame (the same ones for both
streams), all descriptors L2-normalised as NetVLAD sees them.
"""
import os

import keras
import numpy as np
from absl import app, flags

import viz_flags  # noqa: F401  (--model, --frames_per_video, --flow_method)
from actionvlad_tf.data.augment import preprocess_for_eval
from actionvlad_tf.models.vgg16 import build_vgg16
from actionvlad_tf.prep.extraction import read_video_frames
from actionvlad_tf.prep.video_inputs import FlowCache, sample_inputs
from actionvlad_tf.viz import common, tsne

flags.DEFINE_enum("mode", "conv5_vs_fc7", ["conv5_vs_fc7", "rgb_vs_flow"], "Fig. 5 or Fig. 10.")
flags.DEFINE_list("videos", None, "Video files.")
flags.DEFINE_string("output", None, "The PNG to write.")
flags.DEFINE_string("vgg_weights", None, "conv5_vs_fc7: VGG-16 weights with fc6/fc7 (imagenet or an .h5 path); "
                    "None is a random network.")
flags.DEFINE_string("rgb_model", None, "rgb_vs_flow: instead of --model, the RGB .keras model ...")
flags.DEFINE_string("flow_model", None, "rgb_vs_flow: ... and the flow .keras model.")
flags.DEFINE_integer("descriptors_per_frame", 4, "conv5 positions drawn per frame.")
flags.DEFINE_integer("seed", 0, "Seed of the position draws and of t-SNE.")
flags.mark_flags_as_required(["videos", "output"])
FLAGS = flags.FLAGS


def conv5_vs_fc7(rng):
    """Fig. 5 panels: conv5_3 descriptors and fc7 vectors of the same frames, labelled by video."""
    vgg = build_vgg16(conv_endpoint="fc7", input_shape=(224, 224), weights=FLAGS.vgg_weights)
    taps = keras.Model(vgg.input, [vgg.get_layer("block5_conv3").output, vgg.output])
    conv, fc, conv_labels, fc_labels = [], [], [], []
    for index, video in enumerate(FLAGS.videos):
        decoded = read_video_frames(video)
        frames = sample_inputs(decoded, ("rgb",), FLAGS.frames_per_video, None, where=video)["rgb"]
        conv5, fc7 = (keras.ops.convert_to_numpy(t) for t in taps(preprocess_for_eval(frames, "rgb")))
        positions = tsne.sample_positions(len(conv5), conv5.shape[1], conv5.shape[2], FLAGS.descriptors_per_frame, rng)
        conv.append(tsne.take_descriptors(conv5, positions))
        fc.append(tsne.take_descriptors(fc7, np.arange(len(fc7))))
        conv_labels += [index] * len(positions)
        fc_labels += [index] * len(fc7)
    return [("conv5_3 (pre-ReLU)", np.concatenate(conv), conv_labels),
            ("fc7 (pre-ReLU)", np.concatenate(fc), fc_labels)], None


def rgb_vs_flow(rng):
    """Fig. 10 panel: conv5 descriptors of corresponding RGB and flow frames, labelled by stream."""
    if FLAGS.model:
        joint = keras.saving.load_model(FLAGS.model)
        models = [common.stream_model(joint, m) for m in ("rgb", "flow")]
    else:
        models = [keras.saving.load_model(path) for path in (FLAGS.rgb_model, FLAGS.flow_model)]
    features = [[], []]
    for video in FLAGS.videos:
        decoded = read_video_frames(video)
        inputs = sample_inputs(decoded, ("rgb", "flow"), FLAGS.frames_per_video, FlowCache(decoded, FLAGS.flow_method),
                               where=video)
        maps = [common.vlad_internals(model, preprocess_for_eval(inputs[m], m, 1, model.input.shape[2]).numpy())[
            "descriptors"] for model, m in zip(models, ("rgb", "flow"))]
        positions = tsne.sample_positions(len(maps[0]), maps[0].shape[1], maps[0].shape[2],
                                          FLAGS.descriptors_per_frame, rng)
        for stream, conv5 in enumerate(maps):
            features[stream].append(tsne.take_descriptors(conv5, positions))
    rgb, flow = (np.concatenate(f) for f in features)
    return [("conv5 of corresponding frames", np.concatenate([rgb, flow]), [0] * len(rgb) + [1] * len(flow))], [
        "appearance (RGB)", "motion (flow)"]


def main(argv):
    del argv
    if FLAGS.mode == "rgb_vs_flow" and not (FLAGS.model or (FLAGS.rgb_model and FLAGS.flow_model)):
        raise app.UsageError("rgb_vs_flow needs --model or --rgb_model and --flow_model")
    rng = np.random.default_rng(FLAGS.seed)
    panels, label_names = conv5_vs_fc7(rng) if FLAGS.mode == "conv5_vs_fc7" else rgb_vs_flow(rng)
    if label_names is None:
        label_names = [os.path.splitext(os.path.basename(v))[0][:24] for v in FLAGS.videos]
    tsne.plot_tsne(panels, FLAGS.output, label_names, FLAGS.seed)
    print(f"{FLAGS.output}: " + "; ".join(f"{title}: {len(features)} points" for title, features, _ in panels))


if __name__ == "__main__":
    app.run(main)
