"""Benchmark library behind `experiments/bench.py` (docs/performance.md): timing, FLOP and memory accounting,
the release's NetVLAD and a broadcast-residual NetVLAD as references, the four table sections and
the table itself."""

from actionvlad_tf.benchmark.reference_netvlad import netvlad_broadcast_reference, netvlad_loop_reference
from actionvlad_tf.benchmark.timing import conv_flops, interleaved_times, matmul_pass, netvlad_flops, peak_memory_bytes

__all__ = [
    "conv_flops",
    "interleaved_times",
    "matmul_pass",
    "netvlad_broadcast_reference",
    "netvlad_flops",
    "netvlad_loop_reference",
    "peak_memory_bytes",
]
