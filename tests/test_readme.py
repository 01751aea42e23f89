"""README.md's examples run as written: every ```python block, and the two commands' shape."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_readme_has_python_examples():
    assert BLOCKS, "README.md lost its ```python examples"


@pytest.mark.parametrize("i", range(len(BLOCKS)))
def test_readme_python_block_runs(i):
    r = subprocess.run([sys.executable, "-c", BLOCKS[i]], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, f"README block {i} failed:\n{BLOCKS[i]}\n{r.stderr[-2000:]}"


def test_readme_test_command_is_the_ci_one():
    ci = (README.parent / ".ci" / "run").read_text()
    assert "python -m pytest -q" in README.read_text()
    assert "python -m pytest -q" in ci
