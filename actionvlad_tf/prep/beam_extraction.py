"""Data preparation on Apache Beam: the per-video work of `prep.extraction` as a Beam pipeline.

`extraction.run_jobs(..., runner=BeamRunner("DirectRunner"))` (and `data_prep/extract_frames.py
--runner`, `extract_flow.py --runner`) hands the pending videos to `run_on_beam`, which runs exactly the
function the local process pool runs (`extraction._run_one`: the atomic partial-folder write, the
skip of finished folders, the failure caught and named) once per video in a Beam `ParDo`, so the
files are byte for byte the pool's. Each worker uses one OpenCV thread, as the pool does.

Runners: DirectRunner (this machine; `direct_running_mode=multi_processing` and
`direct_num_workers=N` for processes), DataflowRunner, FlinkRunner, SparkRunner, passed with
`pipeline_options` (TFDS's form: "key=value,key=value"). The workers write the frame folders with
ordinary file operations, so on a cluster `output_dir` (and the videos) must be on a file system
every worker mounts at the same path (NFS, Filestore, a FUSE-mounted bucket). The per-video results
are written as JSON lines into a hidden folder of `output_dir` and read back for the summary.

Apache Beam is an optional extra (`pip install actionvlad_tf[beam]`): `prep.extraction` does not
import this module; the entry points import it only when a runner is asked for.
"""

import glob
import json
import os
import secrets
import shutil

try:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
except ImportError as error:  # pragma: no cover - depends on the installation
    raise ImportError("a Beam runner needs Apache Beam: pip install 'actionvlad_tf[beam]' (or apache-beam)") from error
import cv2

from actionvlad_tf.prep.extraction import Job

RESULTS_PREFIX = ".beam_results"


def parse_pipeline_options(text):
    """ "key=value,key=value" (TFDS's `--beam_pipeline_options`) → ["--key=value", …]; a bare key is
    a flag ("--key"). Commas inside a value are not supported (use one option per key)."""
    if not text:
        return []
    options = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        key = item.split("=", 1)[0].strip()
        if not key or key.startswith("-") or " " in key:
            raise ValueError(
                f"beam pipeline option {item!r}: expected key=value (e.g. direct_num_workers=4), without leading dashes"
            )
        options.append(f"--{item}")
    return options


def pipeline_options(runner, options=(), num_workers=1):
    """`PipelineOptions` for `runner` from "key=value,…" or ["--key=value", …]; the DirectRunner
    runs `num_workers` processes unless the options choose its mode."""
    options = parse_pipeline_options(options) if isinstance(options, str) else list(options)
    if runner == "DirectRunner" and not any(o.startswith("--direct_") for o in options):
        options += [
            f"--direct_num_workers={max(1, num_workers)}",
            "--direct_running_mode=" + ("multi_processing" if num_workers > 1 else "in_memory"),
        ]
    return PipelineOptions(options, runner=runner)


class _RunJob(beam.DoFn):
    """The pool's per-video function on one job; yields its result as a JSON line."""

    def __init__(self, run_one):
        self.run_one = run_one

    def setup(self):
        cv2.setNumThreads(1)  # as the pool's workers: one video per process at a time

    def process(self, job):
        job, status, note = self.run_one(Job(*job))
        yield json.dumps({"source": job.source, "name": job.name, "status": status, "note": note})


def run_on_beam(run_one, jobs, output_dir, runner, options=(), num_workers=1):
    """Runs `run_one(job) → (job, status, note)` for every job on a Beam runner; returns the
    results in job order (what the local pool returns, in any order)."""
    if not jobs:
        return []
    results = os.path.join(output_dir, f"{RESULTS_PREFIX}-{secrets.token_hex(4)}")
    try:
        with beam.Pipeline(options=pipeline_options(runner, options, num_workers)) as pipeline:
            _ = (
                pipeline
                | "videos" >> beam.Create([(job.source, job.name) for job in jobs])
                | "spread" >> beam.Reshuffle()  # one video per work item, not one bundle
                | "extract" >> beam.ParDo(_RunJob(run_one))
                | "results" >> beam.io.WriteToText(os.path.join(results, "part"))
            )
        rows = []
        for path in sorted(glob.glob(os.path.join(results, "part*"))):
            with open(path, encoding="utf-8") as handle:
                rows += [json.loads(line) for line in handle if line.strip()]
    finally:
        shutil.rmtree(results, ignore_errors=True)
    by_name = {row["name"]: row for row in rows}
    missing = [job.name for job in jobs if job.name not in by_name]
    if missing:
        raise RuntimeError(f"the Beam pipeline returned no result for {len(missing)} video(s), first {missing[0]}")
    return [(job, by_name[job.name]["status"], by_name[job.name]["note"]) for job in jobs]


class BeamRunner:
    """The `runner` of `extraction.run_jobs`: runs the per-video function on a Beam runner
    ("DirectRunner", "DataflowRunner", "FlinkRunner", "SparkRunner") with `options` ("key=value,…"
    or ["--key=value", …]); the DirectRunner runs `num_workers` processes unless the options say."""

    def __init__(self, runner, options=(), num_workers=1):
        pipeline_options(runner, options, num_workers)  # bad options fail here, before any video
        self.runner, self.options, self.num_workers = runner, options, num_workers

    def __call__(self, run_one, jobs, output_dir):
        return run_on_beam(run_one, jobs, output_dir, self.runner, self.options, self.num_workers)
