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

import numpy as np
import viz_flags  # noqa: F401  (--model, --frames_per_video, --flow_method)
from absl import app, flags
from keras.saving import load_model

from actionvlad_tf.prep.extraction import read_video_frames
from actionvlad_tf.prep.video_inputs import FlowCache, sample_inputs
from actionvlad_tf.viz import common, tsne

flags.DEFINE_enum("mode", "conv5_vs_fc7", ["conv5_vs_fc7", "rgb_vs_flow"], "Fig. 5 or Fig. 10.")
flags.DEFINE_list("videos", None, "Video files.")
flags.DEFINE_string("output", None, "The PNG to write.")
flags.DEFINE_string(
    "vgg_weights",
    None,
    "conv5_vs_fc7: VGG-16 weights with fc6/fc7 (imagenet or an .h5 path); None is a random network.",
)
flags.DEFINE_string("rgb_model", None, "rgb_vs_flow: instead of --model, the RGB .keras model ...")
flags.DEFINE_string("flow_model", None, "rgb_vs_flow: ... and the flow .keras model.")
flags.DEFINE_integer("descriptors_per_frame", 4, "conv5 positions drawn per frame.")
flags.DEFINE_integer("seed", 0, "Seed of the position draws and of t-SNE.")
flags.mark_flags_as_required(["videos", "output"])
FLAGS = flags.FLAGS


def _sampled(modalities, flow_method=None):
    """Per video of --videos, its frames sampled with the release's step ({stream: frames})."""
    for video in FLAGS.videos:
        decoded = read_video_frames(video)
        flow = FlowCache(decoded, flow_method) if "flow" in modalities else None
        yield sample_inputs(decoded, modalities, FLAGS.frames_per_video, flow, where=video)


def main(argv):
    del argv
    if FLAGS.mode == "rgb_vs_flow" and not (FLAGS.model or (FLAGS.rgb_model and FLAGS.flow_model)):
        raise app.UsageError("rgb_vs_flow needs --model or --rgb_model and --flow_model")
    rng = np.random.default_rng(FLAGS.seed)
    if FLAGS.mode == "conv5_vs_fc7":
        panels = tsne.conv5_vs_fc7_panels(
            (v["rgb"] for v in _sampled(("rgb",))), FLAGS.vgg_weights, FLAGS.descriptors_per_frame, rng
        )
        label_names = [os.path.splitext(os.path.basename(v))[0][:24] for v in FLAGS.videos]
    else:
        joint = load_model(FLAGS.model) if FLAGS.model else None
        models = (
            [common.stream_model(joint, m) for m in ("rgb", "flow")]
            if joint is not None
            else [load_model(path) for path in (FLAGS.rgb_model, FLAGS.flow_model)]
        )
        panels = tsne.rgb_vs_flow_panels(
            *models, _sampled(("rgb", "flow"), FLAGS.flow_method), FLAGS.descriptors_per_frame, rng
        )
        label_names = ["appearance (RGB)", "motion (flow)"]
    tsne.plot_tsne(panels, FLAGS.output, label_names, FLAGS.seed)
    print(f"{FLAGS.output}: " + "; ".join(f"{title}: {len(features)} points" for title, features, _ in panels))


if __name__ == "__main__":
    app.run(main)
