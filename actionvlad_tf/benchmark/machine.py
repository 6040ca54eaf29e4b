"""The machine's peak FLOP rate beside every figure (the machine itself: `actionvlad_tf.hardware`).

Two peaks, because "% of a 4096² tf.linalg.matmul" says little on a CPU where TensorFlow's GEMM
is weak (on a 2-core AVX2 EPYC VGG-16's convolutions ran at 154 % of it):

* measured: the best GEMM rate of the run, TensorFlow's and NumPy's (OpenBLAS, run in a child
  process with the environment's thread-count overrides unset, so it may use every core);
* theoretical: cores × clock × FLOP per cycle per core, from the widest vector unit the CPU
  reports (2 FMA units assumed: AVX-512 64, AVX2 32, SSE 16 float32 FLOP per cycle; AMX-BF16
  2048 bfloat16 FLOP per cycle). The clock is the highest the kernel reports (a turbo clock
  is higher, so the true peak may be above this figure).
"""

import json
import os
import re
import subprocess
import sys

from actionvlad_tf import hardware

# Environment variables that cap BLAS / OpenMP threads; unset for the NumPy GEMM probe.
THREAD_OVERRIDES = (
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "OPENBLAS_CORETYPE",
    "OPENBLAS_VERBOSE",
)
FLOPS_PER_CYCLE = (("avx512f", 64), ("avx2", 32), ("sse2", 16))  # float32, 2 FMA units
AMX_BF16_FLOPS_PER_CYCLE = 2048  # 1024 bfloat16 multiply-adds per cycle per core
# Dense peaks of one GPU (FLOP/s, NVIDIA's data sheets, without sparsity) by a pattern of the name
# TensorFlow reports; first match wins. tf32: the tensor cores that TensorFlow gives float32 matmuls
# and convolutions by default on compute capability ≥ 8.0; float32: the CUDA cores.
GPU_PEAKS = (
    (r"\bH200\b", dict(float32=66.9e12, tf32=494.7e12, bfloat16=989.4e12)),
    (r"\bH100\b.*\bPCIe\b", dict(float32=51.2e12, tf32=378e12, bfloat16=756e12)),
    (r"\bH100\b", dict(float32=66.9e12, tf32=494.7e12, bfloat16=989.4e12)),  # SXM
    (r"\bA100\b", dict(float32=19.5e12, tf32=156e12, bfloat16=312e12)),
    (r"\bL40S\b", dict(float32=91.6e12, tf32=183e12, bfloat16=362e12)),
    (r"\bL4\b", dict(float32=30.3e12, tf32=60e12, bfloat16=121e12)),
    (r"\bA10G?\b", dict(float32=31.2e12, tf32=62.5e12, bfloat16=125e12)),
    (r"\bV100\b", dict(float32=15.7e12)),
    (r"\bT4\b", dict(float32=8.1e12)),
)


def _max_mhz():
    """The highest clock the kernel reports, in MHz (cpufreq's maximum, else /proc/cpuinfo)."""
    candidates = []
    try:
        with open("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", encoding="utf-8") as f:
            candidates.append(int(f.read()) / 1000.0)
    except (OSError, ValueError):
        pass
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "cpu MHz":
                    candidates.append(float(value))
    except (OSError, ValueError):
        pass
    return max(candidates) if candidates else None


def describe_machine():
    """`hardware.machine_summary()` plus the clock and the theoretical float32 / bfloat16 peaks."""
    summary = hardware.machine_summary()
    flags = hardware.cpu_info()["flags"]
    cores, mhz = summary["cpu_cores"], _max_mhz()
    per_cycle = next((n for flag, n in FLOPS_PER_CYCLE if flag in flags), 8)
    peak = lambda per: None if mhz is None else cores * mhz * 1e6 * per  # noqa: E731
    bfloat16 = AMX_BF16_FLOPS_PER_CYCLE if "amx_bf16" in flags else 2 * per_cycle if "avx512_bf16" in flags else None
    return {
        **summary,
        "cpu_count": cores,
        "cpu_mhz": mhz,
        "theoretical_peak_float32_flops": peak(per_cycle),
        "theoretical_peak_bfloat16_flops": peak(bfloat16) if bfloat16 else None,
    }


def gpu_peak_flops(name, kind):
    """The dense peak FLOP/s of the GPU called `name` for `kind` (float32, tf32, bfloat16); None
    where the GPU is not in GPU_PEAKS or has no such unit."""
    for pattern, peaks in GPU_PEAKS:
        if re.search(pattern, name):
            return peaks.get(kind)
    return None


def machine_line(machine):
    """One line naming the machine: CPU model, cores, clock, vector extensions, GPU."""
    clock = f" at {machine['cpu_mhz'] / 1000:.2f} GHz" if machine.get("cpu_mhz") else ""
    isa = machine.get("onednn_max_cpu_isa")
    gpus = ", ".join(machine.get("gpus") or []) or "no GPU"
    return (
        f"{machine['cpu_model']}, {machine['cpu_cores']} CPUs{clock}, "
        f"{' '.join(machine['vector_extensions']) or 'no AVX'}"
        f"{f' (ONEDNN_MAX_CPU_ISA={isa})' if isa else ''}; {gpus}"
    )


_NUMPY_GEMM = """
import json, time, numpy as np
a = np.random.default_rng(0).standard_normal((N, N), dtype=np.float32)
b = np.random.default_rng(1).standard_normal((N, N), dtype=np.float32)
a @ b
times = []
for _ in range(REPEATS):
    start = time.perf_counter(); a @ b; times.append(time.perf_counter() - start)
print(json.dumps(2.0 * N ** 3 / min(times)))
"""


def numpy_gemm_flops(size=4096, repeats=3):
    """Best float32 GEMM rate of NumPy (OpenBLAS) in a child process whose environment has the
    thread-count overrides unset; None if the probe fails."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_OVERRIDES}
    code = _NUMPY_GEMM.replace("REPEATS", str(repeats)).replace("N", str(size))
    try:
        result = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600, check=True
        )
        return float(json.loads(result.stdout.strip().splitlines()[-1]))
    except (subprocess.SubprocessError, ValueError, IndexError):
        return None


def peak_summary(tensorflow_matmul_flops, numpy_flops, machine):
    """{measured_peak_flops, source, theoretical_peak_flops}: the best GEMM of the run."""
    measured = {"tensorflow": tensorflow_matmul_flops, "numpy_openblas": numpy_flops}
    measured = {k: v for k, v in measured.items() if v}
    source = max(measured, key=measured.get) if measured else None
    return {
        "measured_peak_flops": measured.get(source),
        "measured_peak_source": source,
        "gemm_flops": measured,
        "theoretical_peak_flops": machine.get("theoretical_peak_float32_flops"),
    }
