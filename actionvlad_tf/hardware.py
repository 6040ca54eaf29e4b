"""What machine this is, and the numeric precision that fits it.

Machines of the same nominal size differ: a 2-core Intel Xeon with AMX runs VGG-16 in bfloat16 about
7× faster than in float32, while a 2-core AMD EPYC with AVX2 only runs bfloat16 no faster forward and
about 4× slower for training (its bfloat16 is emulated). So the precision is chosen per machine
(`choose_precision("auto")`) and every benchmark figure carries `machine_summary()`.

Bottom layer: imports nothing of the project, and TensorFlow only inside the functions that ask it
about GPUs.
"""

import functools
import os
import platform

# CPU flags (as /proc/cpuinfo and lscpu spell them) that give native bfloat16 matrix math.
NATIVE_BFLOAT16_FLAGS = ("amx_bf16", "avx512_bf16")
VECTOR_FLAGS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "asimd",
    "sve",
    "bf16",
)
# ONEDNN_MAX_CPU_ISA values at or below which oneDNN uses no native bfloat16 instructions.
_ONEDNN_ISAS_WITHOUT_BF16 = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI")
PRECISION_CHOICES = ("auto", "float32", "bfloat16", "float16")
_TRUE = ("true", "t", "1", "yes", "y", "on")
_FALSE = ("false", "f", "0", "no", "n", "off", "none")


@functools.lru_cache(maxsize=1)
def cpu_info():
    """{"model": str, "cores": int, "flags": set of lower-case CPU flags} of this machine (Linux
    /proc/cpuinfo; elsewhere the platform's processor name and no flags)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                if key == "model name" and model in ("", platform.machine(), platform.processor()):
                    model = value.strip()
                elif key in ("flags", "features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return {"model": model, "cores": os.cpu_count() or 1, "flags": frozenset(flags)}


def vector_extensions():
    """The vector extensions that matter for speed, in a fixed order (e.g. ["avx2", "fma", "avx512f"])."""
    flags = cpu_info()["flags"]
    return [name for name in VECTOR_FLAGS if name in flags]


def native_bfloat16_cpu():
    """(bool, reason): whether this CPU does bfloat16 math natively (AMX-BF16 or AVX512-BF16), as
    oneDNN, which TensorFlow's CPU kernels use, will run it (ONEDNN_MAX_CPU_ISA can cap that)."""
    flags = cpu_info()["flags"]
    native = [name for name in NATIVE_BFLOAT16_FLAGS if name in flags]
    if not native:
        return False, "the CPU has no native bfloat16 (no AMX-BF16 / AVX512-BF16; bfloat16 would be emulated)"
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    if cap in _ONEDNN_ISAS_WITHOUT_BF16:
        return False, f"ONEDNN_MAX_CPU_ISA={cap} keeps oneDNN off the CPU's {'/'.join(native)}"
    return True, f"the CPU has native bfloat16 ({', '.join(native)})"


def gpu_names():
    """Names of the visible GPUs (TensorFlow's view), [] without one."""
    import tensorflow as tf

    names = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        names.append(details.get("device_name", device.name))
    return names


def _gpu_compute_capability():
    import tensorflow as tf

    capabilities = [
        tf.config.experimental.get_device_details(d).get("compute_capability")
        for d in tf.config.list_physical_devices("GPU")
    ]
    capabilities = [c for c in capabilities if c]
    return min(capabilities) if capabilities else None


def parse_precision(value):
    """A precision flag's value → one of PRECISION_CHOICES. Booleans keep their old meaning:
    true = the device's mixed precision (bfloat16 on CPU, float16 on GPU), false = float32."""
    if isinstance(value, bool) or value is None:
        return "mixed" if value else "float32"
    text = str(value).strip().lower()
    aliases = {
        "mixed_bfloat16": "bfloat16",
        "bf16": "bfloat16",
        "mixed_float16": "float16",
        "fp16": "float16",
        "fp32": "float32",
    }
    text = aliases.get(text, text)
    if text in _TRUE:
        return "mixed"
    if text in _FALSE:
        return "float32"
    if text not in PRECISION_CHOICES:
        raise ValueError(f"precision {value!r}: expected one of {', '.join(PRECISION_CHOICES)} (or true/false)")
    return text


def choose_precision(value="auto"):
    """(Keras dtype policy name, reason) for a precision flag value (`parse_precision`).

    auto: on a GPU, mixed_bfloat16 where the GPU has bfloat16 tensor cores (compute capability ≥ 8.0),
    else mixed_float16 (with loss scaling in the trainer); on a CPU, mixed_bfloat16 only where the CPU
    does bfloat16 natively, else float32."""
    request = parse_precision(value)
    if request == "float32":
        return "float32", "float32 requested"
    has_gpu = bool(gpu_names())
    if request == "mixed":
        return (
            ("mixed_float16", "mixed precision requested: float16 on the GPU")
            if has_gpu
            else ("mixed_bfloat16", "mixed precision requested: bfloat16 on the CPU")
        )
    if request in ("bfloat16", "float16"):
        return f"mixed_{request}", f"{request} requested"
    if has_gpu:
        capability = _gpu_compute_capability()
        if capability is not None and tuple(capability) >= (8, 0):
            return "mixed_bfloat16", f"auto: GPU compute capability {capability[0]}.{capability[1]} has bfloat16"
        return "mixed_float16", "auto: GPU without bfloat16 tensor cores, float16 with loss scaling"
    native, reason = native_bfloat16_cpu()
    return ("mixed_bfloat16" if native else "float32"), f"auto: {reason}"


def machine_summary():
    """A JSON-ready description of this machine for benchmark records: CPU model, cores, vector
    extensions, native bfloat16 and the GPUs."""
    native, reason = native_bfloat16_cpu()
    info = cpu_info()
    try:
        gpus = gpu_names()
    except ImportError:
        gpus = []
    return {
        "cpu_model": info["model"],
        "cpu_cores": info["cores"],
        "vector_extensions": vector_extensions(),
        "native_bfloat16": native,
        "bfloat16_reason": reason,
        "gpus": gpus,
        "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA"),
    }


def machine_line():
    """One line for a printed table: CPU model, cores, vector extensions, GPUs."""
    summary = machine_summary()
    gpus = ", ".join(summary["gpus"]) or "no GPU"
    cap = f", ONEDNN_MAX_CPU_ISA={summary['onednn_max_cpu_isa']}" if summary["onednn_max_cpu_isa"] else ""
    return (
        f"{summary['cpu_model']} ({summary['cpu_cores']} cores; {' '.join(summary['vector_extensions']) or 'no AVX'}"
        f"{cap}); {gpus}"
    )
