"""The documented registration examples run: every ```python block of docs/extending.md, in order,
in one namespace (a block may use what an earlier one defined), so the page fails a test when the
registration code it describes changes."""

import pathlib
import re

DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "extending.md"


def test_every_python_block_of_docs_extending_runs():
    blocks = re.findall(r"^```python\n(.*?)^```$", DOC.read_text(), re.M | re.S)
    assert blocks, "docs/extending.md has no python example"
    namespace = {}
    for number, block in enumerate(blocks, start=1):
        exec(compile(block, f"{DOC}:block{number}", "exec"), namespace)
    model = namespace["model"]  # the backbone example builds a model with its registered backbone
    assert model.output_shape == (None, 5)
    from actionvlad_tf.models.registry import BACKBONES

    assert "tiny" not in BACKBONES  # registered only for the block (BACKBONES.temporarily)
