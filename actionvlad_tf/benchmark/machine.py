"""The machine beside every figure: CPU model, vector extensions, GPU, and its peak FLOP rate.

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
import subprocess
import sys

import tensorflow as tf

# Environment variables that cap BLAS / OpenMP threads; unset for the NumPy GEMM probe.
THREAD_OVERRIDES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                    "BLIS_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_VERBOSE")
VECTOR_FLAGS = {"avx2": "AVX2", "fma": "FMA", "avx512f": "AVX-512", "avx512_bf16": "AVX512-BF16",
                "amx_tile": "AMX", "amx_bf16": "AMX-BF16", "avx512_fp16": "AVX512-FP16"}
FLOPS_PER_CYCLE = (("avx512f", 64), ("avx2", 32), ("sse2", 16))  # float32, 2 FMA units
AMX_BF16_FLOPS_PER_CYCLE = 2048  # 1024 bfloat16 multiply-adds per cycle per core


def _cpuinfo(path="/proc/cpuinfo"):
    fields = {}
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), []).append(value.strip())
    except OSError:
        pass
    return fields


def _max_mhz(info):
    candidates = []
    try:
        with open("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", encoding="utf-8") as f:
            candidates.append(int(f.read()) / 1000.0)
    except (OSError, ValueError):
        pass
    for value in info.get("cpu MHz", []):
        try:
            candidates.append(float(value))
        except ValueError:
            pass
    return max(candidates) if candidates else None


def describe_machine():
    """{cpu_model, cpu_count, vector_extensions, cpu_mhz, onednn_max_cpu_isa, gpus, peak_*}."""
    info = _cpuinfo()
    flags = set((info.get("flags") or [""])[0].split())
    model = (info.get("model name") or ["unknown CPU"])[0]
    cores = os.cpu_count() or 1
    mhz = _max_mhz(info)
    per_cycle = next((n for flag, n in FLOPS_PER_CYCLE if flag in flags), 8)
    gpus = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        gpus.append(details.get("device_name", device.name))
    peak = lambda per: None if mhz is None else cores * mhz * 1e6 * per  # noqa: E731
    return {
        "cpu_model": model, "cpu_count": cores,
        "vector_extensions": [name for flag, name in VECTOR_FLAGS.items() if flag in flags],
        "cpu_mhz": mhz, "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA"),
        "gpus": gpus,
        "theoretical_peak_float32_flops": peak(per_cycle),
        "theoretical_peak_bfloat16_flops": peak(AMX_BF16_FLOPS_PER_CYCLE)
        if "amx_bf16" in flags else (peak(2 * per_cycle) if "avx512_bf16" in flags else None),
    }


def machine_line(machine):
    """One line naming the machine: CPU model, cores, clock, vector extensions, GPU."""
    clock = f" at {machine['cpu_mhz'] / 1000:.2f} GHz" if machine.get("cpu_mhz") else ""
    isa = machine.get("onednn_max_cpu_isa")
    gpus = ", ".join(machine.get("gpus") or []) or "no GPU"
    return (f"{machine['cpu_model']}, {machine['cpu_count']} CPUs{clock}, "
            f"{' '.join(machine['vector_extensions']) or 'no AVX'}"
            f"{f' (ONEDNN_MAX_CPU_ISA={isa})' if isa else ''}; {gpus}")


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
        result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                                text=True, timeout=600, check=True)
        return float(json.loads(result.stdout.strip().splitlines()[-1]))
    except (subprocess.SubprocessError, ValueError, IndexError):
        return None


def peak_summary(tensorflow_matmul_flops, numpy_flops, machine):
    """{measured_peak_flops, source, theoretical_peak_flops}: the best GEMM of the run."""
    measured = {"tensorflow": tensorflow_matmul_flops, "numpy_openblas": numpy_flops}
    measured = {k: v for k, v in measured.items() if v}
    source = max(measured, key=measured.get) if measured else None
    return {"measured_peak_flops": measured.get(source), "measured_peak_source": source,
            "gemm_flops": measured,
            "theoretical_peak_flops": machine.get("theoretical_peak_float32_flops")}
