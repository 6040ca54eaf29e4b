"""The Apache Beam flags of extract_frames.py and extract_flow.py (docs/data_prep.md, "On a cluster")."""

from absl import app, flags

flags.DEFINE_string(
    "runner",
    "",
    "Empty: the local process pool. A Beam runner (DirectRunner, "
    "DataflowRunner, FlinkRunner, SparkRunner) runs the same per-video work as an "
    "Apache Beam pipeline (pip install 'actionvlad_tf[beam]').",
)
flags.DEFINE_string(
    "beam_pipeline_options",
    "",
    "Beam options as key=value,key=value (e.g. project=p,region=r,temp_location=gs://b/tmp for Dataflow).",
)


def beam_runner(num_workers):
    """The `runner` of `extraction.run_jobs` the flags ask for: None (the local pool) or a
    `BeamRunner`. Apache Beam is imported only here, when a runner is given."""
    if not flags.FLAGS.runner:
        if flags.FLAGS.beam_pipeline_options:
            raise app.UsageError("--beam_pipeline_options needs a --runner")
        return None
    from actionvlad_tf.prep.beam_extraction import BeamRunner  # the optional [beam] extra

    return BeamRunner(flags.FLAGS.runner, flags.FLAGS.beam_pipeline_options, num_workers)
