"""The Apache Beam flags of extract_frames.py and extract_flow.py (docs/data_prep.md, "On a cluster")."""
from absl import flags

flags.DEFINE_string("runner", "", "Empty: the local process pool. A Beam runner (DirectRunner, "
                    "DataflowRunner, FlinkRunner, SparkRunner) runs the same per-video work as an "
                    "Apache Beam pipeline (pip install 'actionvlad_tf[beam]').")
flags.DEFINE_string("beam_pipeline_options", "", "Beam options as key=value,key=value (e.g. "
                    "project=p,region=r,temp_location=gs://b/tmp for Dataflow).")
