"""The `tf.data.Options` every pipeline of the package ends with (`finish`).

Autotuning's model thread is off. With it on (TF 2.21), ending an iterator (its last element in a
one-pass evaluation, or its destruction when training stops) sometimes waits for the thread's next
optimisation round, whose period doubles from 10 ms up to 60 s: the end lands on 10.2, 20.5, 41
or 82 s after the iterator started. Measured on a 2-core AMD EPYC (AVX2): 3 of 14 one-pass
evaluations of the demo's test list ended 4.4 s late and none of 8 without the thread; in the
demo, a third of the evaluations ended 4–9 s late and some training steps 38–57 s after saving
their model (`py-spy dump`: `RootDataset::Iterator::~Iterator` joining the thread).

Without the model thread a `num_parallel_calls=AUTOTUNE` map runs at TF's default parallelism
(the CPU count, at most 16) and `prefetch(AUTOTUNE)` sizes its buffer with the legacy prefetch
autotuner: a CPU-bound map on those 2 cores took 4.2 s with it off, 5.1 s on, 8.2 s serial. To
turn autotuning back on for a pipeline, apply `tf.data.Options()` with
`autotune.enabled = True` after this (`dataset.with_options`; later options win).
"""

import tensorflow as tf


def finish(dataset):
    """`dataset` with the package's options (module docstring)."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)
