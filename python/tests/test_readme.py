"""The README's Python example runs as written (and trains: the loss goes down)."""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


@pytest.mark.skipif(not README.exists(), reason="README.md is not beside the tests")
def test_readme_training_step_runs():
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    scope = {}
    exec(compile(block, "README.md", "exec"), scope)
    first = scope["loss"].item()
    step = block[block.index("loss = "):]
    exec(compile(step, "README.md", "exec"), scope)
    assert scope["loss"].item() < first
