"""The benchmark's printed table and its targets (docs/performance.md), from the sections' JSON-ready dicts."""

from actionvlad_tf.benchmark.machine import machine_line

MEBI = 2**20


def _ge(value, threshold):
    return value >= threshold


def _le(value, threshold):
    return value <= threshold


def evaluate_targets(results):
    """[{target, value, threshold, holds}] for every performance target the run's sections measured."""
    rows = []

    def add(target, value, threshold, compare):
        rows.append(
            {"target": target, "value": value, "threshold": threshold, "holds": bool(compare(value, threshold))}
        )

    netvlad = results.get("netvlad")
    if netvlad:
        ratios = netvlad["ratios"]
        for kind, label in (("forward", "forward"), ("forward_backward", "forward+backward")):
            add(
                f"NetVLAD {label} speed ≥ 15× the release's loop",
                ratios[f"{kind}_speedup_vs_loop_reference"],
                15.0,
                _ge,
            )
            if f"{kind}_memory_vs_loop_reference" in ratios:
                add(
                    f"NetVLAD {label} extra memory ≤ 1/3 of the loop's",
                    ratios[f"{kind}_memory_vs_loop_reference"],
                    1 / 3,
                    _le,
                )
        add(
            "NetVLAD forward ≥ 50 % of the matmul GFLOP/s",
            netvlad["implementations"]["netvlad_pooling"]["forward"]["fraction_of_matmul"],
            0.5,
            _ge,
        )
    end_to_end = results.get("end_to_end")
    if end_to_end:
        for policy, figures in end_to_end["policies"].items():
            add(
                f"[{policy}] inference from frames ≥ 90 % of the backbone alone",
                figures["inference_vs_backbone"],
                0.9,
                _ge,
            )
            add(
                f"[{policy}] stage 2 with the feature cache ≥ 3× recomputing conv1–conv4",
                figures["cache_speedup"]["stage2"],
                3.0,
                _ge,
            )
        pipeline = results.get("input_pipeline")
        # The hungriest consumer of decoded videos: stage 2 without a cache, fastest precision.
        consumed = max(figures["training"]["stage2"]["videos_per_s"] for figures in end_to_end["policies"].values())
        if pipeline:
            for source, figures in pipeline["pipelines"].items():
                add(
                    f"input pipeline ({source}, RGB train crop) ≥ 2× what stage 2 consumes",
                    figures["rgb_train"]["videos_per_s"] / consumed,
                    2.0,
                    _ge,
                )
    flow = results.get("flow")
    if flow:
        rates = flow["vs_opencv_all_cores"]
        best_cpu = max(v for k, v in rates.items() if k.startswith("tvl1_tf_cpu"))
        add("tvl1_tf on the CPU ≥ OpenCV TV-L1 on all cores (pairs/s ratio)", best_cpu, 1.0, _ge)
        if "tvl1_tf_gpu_xla" in rates:
            add("tvl1_tf on the GPU ≥ 50× OpenCV TV-L1 on all CPU cores", rates["tvl1_tf_gpu_xla"], 50.0, _ge)
        add(
            "tvl1_tf EPE within 10 % of OpenCV's on synthetic flow (worst case ratio)",
            max(row["ratio"] for row in flow["synthetic"]),
            1.1,
            _le,
        )
    for name, figures in (results.get("predict_folder") or {}).items():
        add(
            f"[{name}] predict.py --videos ≥ 90 % of the model alone on decoded frames (videos/s)",
            figures["ratio"],
            0.9,
            _ge,
        )
    return rows


def text_table(header, rows, left=1):
    """Lines of a plain-text table: a header, a rule, the rows; the first `left` columns left-aligned."""
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]

    def line(r):
        return "  ".join(str(c).ljust(w) if i < left else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths)))

    return [line(header), line(["-" * w for w in widths])] + [line(r) for r in rows]


def _mb(value):
    return "n/a" if value is None else f"{value / MEBI:.0f}"


def _matmul_line(section, size):
    return f"matmul reference in the same rounds ({size}² tf.linalg.matmul): " + ", ".join(
        f"{dtype} {rate / 1e9:.0f} GFLOP/s" for dtype, rate in section["matmul_flops"].items()
    )


def format_table(results):
    """The human-readable table, one section after another, then the targets."""
    out = []
    machine = results["machine"]
    out.append(f"machine: {machine_line(machine)}")
    out.append(
        f"device {machine['device']}, {machine['cpu_count']} CPUs, TensorFlow "
        f"{machine['tensorflow']}, load average {machine['load_before']} before / "
        f"{machine['load_after']} after the run, {results['wall_s']:.0f} s in all"
    )

    netvlad = results.get("netvlad")
    if netvlad:
        s = netvlad["shape"]
        out += [
            "",
            f"1. NetVLAD, {s['videos']} videos × {s['frames']} × {s['height']} × "
            f"{s['width']} × {s['depth']}, K = {s['num_clusters']} "
            f"({netvlad['gflop_forward']:.2f} GFLOP forward, ×3 forward+backward)",
            _matmul_line(netvlad, results["matmul_size"]),
        ]
        rows = []
        for name, kinds in netvlad["implementations"].items():
            f, b = kinds["forward"], kinds["forward_backward"]
            rows.append(
                [
                    name,
                    f"{f['median_s'] * 1e3:.1f}",
                    f"{f['videos_per_s']:.1f}",
                    f"{100 * f['fraction_of_matmul']:.0f}",
                    _mb(f["extra_memory_bytes"]),
                    f"{b['median_s'] * 1e3:.1f}",
                    f"{b['videos_per_s']:.1f}",
                    f"{100 * b['fraction_of_matmul']:.0f}",
                    _mb(b["extra_memory_bytes"]),
                ]
            )
        out += text_table(
            ["implementation", "fwd ms", "videos/s", "% matmul", "MiB", "fwd+bwd ms", "videos/s", "% matmul", "MiB"],
            rows,
        )
        out.append("ratios: " + ", ".join(f"{k} {v:.3g}" for k, v in netvlad["ratios"].items()))

    backbone = results.get("backbone")
    if backbone:
        out += [
            "",
            f"2. Backbone VGG16 conv1_1–conv5_3, {backbone['frames']} frames of "
            f"{backbone['image_size']}² ({backbone['gflop_per_frame']:.2f} GFLOP/frame, "
            "from the layer shapes)",
            _matmul_line(backbone, results["matmul_size"]),
        ]
        rows = [
            [
                name,
                f"{c['median_s'] * 1e3:.0f}",
                f"{c['frames_per_s']:.1f}",
                f"{c['gflops']:.0f}",
                f"{100 * c['fraction_of_matmul']:.0f}",
                f"{100 * c['fraction_of_float32_matmul']:.0f}",
            ]
            for name, c in backbone["configurations"].items()
        ]
        out += text_table(
            ["configuration", "ms/video", "frames/s", "GFLOP/s", "% matmul (same dtype)", "% float32 matmul"], rows
        )
        out.append(f"mixed precision speed-up (graph mode): {backbone['mixed_speedup']:.2f}×")

    pipeline = results.get("input_pipeline")
    if pipeline:
        out += [
            "",
            f"3. Input pipeline, videos/s ({pipeline['frames_per_video']} frames or flow "
            f"stacks at {pipeline['image_size']}², from "
            f"{pipeline['frame_size'][1]}×{pipeline['frame_size'][0]} JPEGs)",
        ]
        names = list(next(iter(pipeline["pipelines"].values())))
        rows = [
            [source] + [f"{figures[n]['videos_per_s']:.1f}" for n in names]
            for source, figures in pipeline["pipelines"].items()
        ]
        out += text_table(["source"] + names, rows)

    end_to_end = results.get("end_to_end")
    if end_to_end:
        out += [
            "",
            f"4. End to end ({end_to_end['frames_per_video']} frames at "
            f"{end_to_end['image_size']}², K = {end_to_end['num_clusters']}; training "
            f"{end_to_end['batch_videos']} video(s)/step, cache of "
            f"{end_to_end['cache_views']} view(s)/video)",
        ]
        rows = []
        for policy, figures in end_to_end["policies"].items():
            for section in ("inference", "training"):
                for name, t in figures[section].items():
                    rows.append([policy, section, name, f"{t['median_s'] * 1e3:.0f}", f"{t['videos_per_s']:.2f}"])
        out += text_table(["policy", "kind", "what", "ms/step", "videos/s"], rows)
        for policy, figures in end_to_end["policies"].items():
            out.append(
                f"[{policy}] inference from frames / backbone alone "
                f"{figures['inference_vs_backbone']:.3f}; cache speed-up "
                + ", ".join(f"{s} {v:.1f}×" for s, v in figures["cache_speedup"].items())
            )
            for stage, cache in figures["caches"].items():
                out.append(
                    f"[{policy}] {stage} cache: {cache['views']} views built in "
                    f"{cache['build_s']:.1f} s, {cache['bytes_per_view'] / MEBI:.2f} MiB "
                    f"per view, features {cache['feature_shape']}"
                )

    flow = results.get("flow")
    if flow:
        shape = flow["shape"]
        out += [
            "",
            f"5. Optical flow, Dual TV-L1 with OpenCV's defaults: {shape['pairs']} pairs of "
            f"{shape['width']}×{shape['height']} (synthetic smooth motion), tvl1_tf "
            f"{shape['batch']} pairs per call (GPU {shape['gpu_batch']})",
        ]
        out += text_table(
            ["implementation", "pairs/s", "× OpenCV on all cores"],
            [
                [name, f"{rate:.2f}", f"{flow['vs_opencv_all_cores'][name]:.2f}"]
                for name, rate in flow["pairs_per_s"].items()
            ],
        )
        out += ["", "endpoint error on synthetic pairs (px; 8 px border left out)"]
        out += text_table(
            ["motion", "size", "OpenCV", "tvl1_tf", "ratio", "tvl1_tf vs OpenCV"],
            [
                [
                    r["kind"],
                    f"{r['magnitude']:g}",
                    f"{r['epe_opencv']:.4f}",
                    f"{r['epe_tf']:.4f}",
                    f"{r['ratio']:.3f}",
                    f"{r['epe_tf_vs_opencv']:.4f}",
                ]
                for r in flow["synthetic"]
            ],
        )
        if flow.get("clips"):
            out += ["", "real clips, tvl1_tf against OpenCV (first frames of each clip)"]
            rows = [
                [
                    name,
                    f"{c['width']}×{c['height']}",
                    c["pairs"],
                    f"{c['epe']:.3f}",
                    f"{c['mean_motion_opencv']:.2f}",
                    f"{100 * c['quantized_equal']:.1f}",
                    f"{100 * c['quantized_within_1']:.1f}",
                    f"{100 * c['quantized_within_2']:.2f}",
                ]
                for name, c in flow["clips"].items()
            ]
            overall = flow["clips_overall"]
            rows.append(
                [
                    "all (pixel-weighted)",
                    "",
                    sum(c["pairs"] for c in flow["clips"].values()),
                    f"{overall['epe']:.3f}",
                    "",
                    f"{100 * overall['quantized_equal']:.1f}",
                    f"{100 * overall['quantized_within_1']:.1f}",
                    f"{100 * overall['quantized_within_2']:.2f}",
                ]
            )
            out += text_table(["clip", "size", "pairs", "EPE px", "mean |flow|", "% equal", "% ±1", "% ±2"], rows)

    folder = results.get("predict_folder")
    if folder:
        out += [
            "",
            "7. Classifying a folder of videos (predict.py --videos into a .csv) against the model "
            "alone on the same videos' sampled frames, decoded beforehand; one .keras model per shape",
        ]
        rows = [
            [
                name,
                f"{s['num_videos']} × {s['num_frames']} frames {s['width']}×{s['height']}",
                f"T = {s['frames_per_video']}, {s['image_size']}², K = {s['num_clusters']}, "
                f"width {s['backbone_width']:g}",
                s["workers"],
                f"{f['folder_videos_per_s']:.2f}",
                f"{f['model_alone_videos_per_s']:.2f}",
                f"{f['ratio']:.3f}",
            ]
            for name, f in folder.items()
            for s in [f["shape"]]
        ]
        out += text_table(
            ["shape", "videos", "model", "workers", "folder videos/s", "model alone videos/s", "ratio"], rows
        )

    peak = results.get("peak") or {}
    for name, update in (results.get("updates") or {}).items():
        s = update["shape"]
        policy = s.get("policy", "float32")
        out += [
            "",
            f"6. Training updates, {name}: {s['videos']} videos × {s['frames']} frames of "
            f"{s['image_size']}², VGG-16 width {s.get('width', 1.0):g}, conv5 on {s['map_size']}² maps, "
            f"K = {s['num_clusters']}, {s['num_classes']} classes, {policy}; the stage-2 update on the "
            f"feature cache is {update['flop'] / 1e9:.1f} GFLOP ({s['variables']} variables)",
        ]
        theory_key = "theoretical_peak_bfloat16_flops" if "bfloat16" in policy else "theoretical_peak_float32_flops"
        peaks = {
            "measured": peak.get("measured_peak_flops"),
            "theoretical": (results.get("machine") or {}).get(theory_key) or peak.get("theoretical_peak_flops"),
        }
        rows = []
        for variant, figures in update["variants"].items():
            flop = figures.get("flop", update["flop"])
            rows.append(
                [variant, f"{figures['median_s'] * 1e3:.0f}", f"{flop / 1e9:.1f}", f"{figures['gflops']:.0f}"]
                + [
                    f"{100 * figures['gflops'] * 1e9 / peaks[key]:.0f}" if peaks[key] else "n/a"
                    for key in ("measured", "theoretical")
                ]
                + [f"{figures['median_s'] / (flop / peaks['measured']):.1f}" if peaks["measured"] else "n/a"]
            )
        out += text_table(["what", "ms", "GFLOP", "GFLOP/s", "% best GEMM", "% theoretical", "× FLOP bound"], rows)
        out.append(
            "FLOP bound: the update's FLOP at the best float32 GEMM rate of the run; % theoretical "
            f"against the {'bfloat16' if 'bfloat16' in policy else 'float32'} peak"
        )
    if peak:
        gemms = ", ".join(f"{k} {v / 1e9:.0f}" for k, v in peak["gemm_flops"].items())
        theory = peak.get("theoretical_peak_flops")
        out += [
            "",
            f"machine peak (float32): best GEMM of the run {gemms} GFLOP/s; theoretical "
            + (
                f"{theory / 1e9:.0f} GFLOP/s (cores × clock × vector FLOP/cycle)"
                if theory
                else "n/a (no clock reported)"
            ),
        ]

    targets = results.get("targets")
    if targets:
        out += ["", "Targets"]
        out += text_table(
            ["target", "value", "threshold", "holds"],
            [
                [t["target"], f"{t['value']:.3g}", f"{t['threshold']:.3g}", "yes" if t["holds"] else "NO"]
                for t in targets
            ],
        )
    return "\n".join(out)
