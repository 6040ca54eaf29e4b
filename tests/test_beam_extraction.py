"""Data preparation on Apache Beam: the DirectRunner in multi-process mode writes byte for byte the
files of the local process pool on real clips, skips finished videos on a re-run, and counts and
names failures; pipeline options in TFDS's key=value form."""

import filecmp
import os
import time

import cv2
import numpy as np
import pytest

beam_extraction = pytest.importorskip("actionvlad_tf.prep.beam_extraction")
from actionvlad_tf.prep import extraction  # noqa: E402

CLIPS = (
    "ucf101/v_ApplyEyeMakeup_g01_c01.avi",
    "ucf101/v_Basketball_g01_c01.avi",
    "hmdb51/TrumanShow_wave_f_nm_np1_fr_med_26.avi",
)


def test_pipeline_options_in_tfds_form():
    assert beam_extraction.parse_pipeline_options("") == []
    assert beam_extraction.parse_pipeline_options("project=p, region=r,save_main_session") == [
        "--project=p",
        "--region=r",
        "--save_main_session",
    ]
    with pytest.raises(ValueError, match="without leading dashes"):
        beam_extraction.parse_pipeline_options("--project=p")
    options = beam_extraction.pipeline_options("DirectRunner", "", num_workers=2).get_all_options()
    assert options["direct_num_workers"] == 2 and options["direct_running_mode"] == "multi_processing"
    options = beam_extraction.pipeline_options("DirectRunner", ["--direct_num_workers=3"]).get_all_options()
    assert options["direct_num_workers"] == 3 and options["direct_running_mode"] == "in_memory"
    with pytest.raises(ValueError, match="without leading dashes"):
        beam_extraction.BeamRunner("DirectRunner", "--direct_num_workers=2")


def _same_tree(left, right):
    """Every file of two folders, compared byte for byte; returns the number of files."""
    names = []
    for root, folders, files in os.walk(left):
        folders.sort()
        names += [os.path.relpath(os.path.join(root, f), left) for f in files]
    right_names = [os.path.relpath(os.path.join(r, f), right) for r, _, fs in os.walk(right) for f in fs]
    assert sorted(names) == sorted(right_names)
    match, mismatch, errors = filecmp.cmpfiles(left, right, names, shallow=False)
    assert not mismatch and not errors, (mismatch[:5], errors[:5])
    return len(match)


def test_in_memory_direct_runner_writes_the_pools_files(tmp_path):
    """The quick check (no worker processes): two written videos and a broken one."""
    videos = tmp_path / "videos"
    videos.mkdir()
    rng = np.random.default_rng(0)
    for k in range(2):
        writer = cv2.VideoWriter(str(videos / f"v{k}.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (64, 48))
        for _ in range(6):
            writer.write(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
        writer.release()
    (videos / "broken.avi").write_bytes(b"not a video")
    jobs, _ = extraction.find_videos(str(videos))
    pool = extraction.extract_frames(jobs, str(tmp_path / "pool"), progress=False)
    in_memory = beam_extraction.BeamRunner("DirectRunner")
    beam = extraction.extract_frames(jobs, str(tmp_path / "beam"), progress=False, runner=in_memory)
    assert sorted(beam.done) == sorted(pool.done) == ["v0.avi", "v1.avi"]
    assert beam.failed == pool.failed and [n for n, _ in beam.failed] == ["broken.avi"]
    assert _same_tree(str(tmp_path / "pool"), str(tmp_path / "beam")) == 12
    again = extraction.extract_frames(jobs, str(tmp_path / "beam"), progress=False, runner=in_memory)
    assert sorted(again.skipped) == ["v0.avi", "v1.avi"] and len(again.failed) == 1


@pytest.mark.slow  # the DirectRunner's worker processes each import Beam and OpenCV
def test_direct_runner_is_byte_identical_to_the_pool_on_real_clips(shared_data, tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    for clip in CLIPS:
        (videos / os.path.basename(clip)).symlink_to(shared_data / "clips" / clip)
    (videos / "broken.avi").write_bytes(b"not a video at all")
    jobs, _ = extraction.find_videos(str(videos))
    times, summaries = {}, {}
    beam_runner = beam_extraction.BeamRunner("DirectRunner", num_workers=2)
    for name, beam in (("pool", {}), ("beam", {"runner": beam_runner})):
        started = time.perf_counter()
        summaries[name] = extraction.extract_frames(
            jobs, str(tmp_path / name / "frames"), num_workers=2, progress=False, **beam
        )
        times[name, "frames"] = time.perf_counter() - started
        frame_jobs = extraction.find_frame_folders(str(tmp_path / name / "frames"))
        started = time.perf_counter()
        flow = extraction.extract_flow(
            frame_jobs, str(tmp_path / name / "flow"), "frames", method="dis", num_workers=2, progress=False, **beam
        )
        times[name, "flow"] = time.perf_counter() - started
        assert flow.ok and len(flow.done) == len(CLIPS)
    for name, summary in summaries.items():
        assert sorted(summary.done) == sorted(os.path.basename(c) for c in CLIPS)
        assert [n for n, _ in summary.failed] == ["broken.avi"]
        assert "broken.avi" in summary.failed[0][1] and "cannot open" in summary.failed[0][1]
    assert summaries["pool"].failed == summaries["beam"].failed
    files = {
        kind: _same_tree(str(tmp_path / "pool" / kind), str(tmp_path / "beam" / kind)) for kind in ("frames", "flow")
    }
    print("files identical", files, "wall s", {f"{n} {k}": round(t, 1) for (n, k), t in times.items()})
    assert files["frames"] > 300 and files["flow"] > 600

    again = extraction.extract_frames(
        jobs, str(tmp_path / "beam" / "frames"), num_workers=2, progress=False, runner=beam_runner
    )
    assert sorted(again.skipped) == sorted(os.path.basename(c) for c in CLIPS) and not again.done
    assert [n for n, _ in again.failed] == ["broken.avi"]
    assert not [p for p in os.listdir(tmp_path / "beam" / "frames") if p.startswith(".")]  # no results left
