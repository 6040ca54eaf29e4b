"""The videos of one split of an experiment, from wherever an `InputSpec` says they are: a list
file with frame folders (`<list_dir>/{split}_split{N}.txt`), packed shards
(`data_prep/build_tfrecords.py`, `InputSpec.packed_files`) or a TFDS builder (`tfds build`,
`InputSpec.tfds_name`). All three give the same batches (`actionvlad_tf.data.packed`).
"""

from actionvlad_tf.data import datasets
from actionvlad_tf.data.video_input import make_dataset


def split_entries(dataset_spec, input_spec, split_name):
    """The `VideoEntry`s of the split's list file, or None when the videos come from records and
    no list folder is given (then the records carry path, label and list position)."""
    if input_spec.from_records and not input_spec.list_dir:
        return None
    if not input_spec.list_dir:
        raise ValueError("give the list folder (dataset_list_dir) or packed shards / a TFDS name")
    list_file = datasets.split_list_file(input_spec.list_dir, split_name, input_spec.split_id)
    return datasets.read_entries(dataset_spec, list_file, check_labels=split_name == "train" or None)


def records(input_spec, split_name):
    """The packed shard pattern of `split_name`, or the TFDS builder's split as parsed records."""
    if input_spec.packed_files:
        return input_spec.packed_pattern(split_name)
    import tensorflow_datasets as tfds  # optional dependency: only a TFDS run needs it

    # `actionvlad_tf.prep.tfds_builder` registers action_vlad_frames (the entry points import it
    # for --tfds_name; prep sits above data).
    builder = tfds.builder(input_spec.tfds_name, data_dir=input_spec.tfds_data_dir)
    return builder.as_dataset(
        split=split_name, shuffle_files=False, decoders={s: tfds.decode.SkipDecoding() for s in input_spec.streams}
    )


def split_dataset(dataset_spec, input_spec, split_name, entries=None, report=None, input_context=None):
    """`(dataset, entries)`: the tf.data pipeline of `input_spec` over the split `split_name`
    ("train" / "test") and the list's entries (None for records without a list folder).
    `entries`: use these instead of the split's list (e.g. the frames k-means samples)."""
    if input_spec.num_classes is None and not dataset_spec.multi_label:
        input_spec = input_spec.replace(num_classes=dataset_spec.num_classes)
    if input_spec.from_records:
        if entries is not None:
            raise ValueError("records hold whole videos: sample them with the list (frame folders)")
        return make_dataset(
            input_spec, packed_files=records(input_spec, split_name), report=report, input_context=input_context
        ), split_entries(dataset_spec, input_spec, split_name)
    if entries is None:
        entries = split_entries(dataset_spec, input_spec, split_name)
    return make_dataset(input_spec, list_file=entries, report=report, input_context=input_context), entries
