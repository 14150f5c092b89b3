"""Every Python code block of README.md and docs/*.md runs as written.

Convention for the documents:

- A block fenced with ```python is an example: it must run as it stands, imports
  included, when saved to a file and run with ``python example.py`` in an empty
  directory (so ``__main__`` semantics hold, as for a user who copies it). This test
  does exactly that, each block in its own process with a timeout, and requires exit
  status 0 and nothing on stderr.
- A block fenced with ```python signature is a signature summary (an API at a glance,
  not necessarily valid Python): it is not run. Use it only for such summaries.
- Any other info string after ```python (```python3, ```pycon, ...) fails the test, so
  that no block escapes both rules.

The examples of docs/scale-out.md need joblib, Dask and a local cluster, and are run by
tests/test_dask.py (test_doc_examples_run), which also checks their output and what
they do on the Python versions Dask does not support; here it is only checked that
test_dask.py reads the same blocks.
"""
import os
import re
import subprocess
import sys

import pytest

from conftest import TESTS_DIR, _env

ROOT = os.path.dirname(TESTS_DIR)
DOCS = ["README.md"] + sorted(
    os.path.join("docs", name) for name in os.listdir(os.path.join(ROOT, "docs"))
    if name.endswith(".md")
)
# documents whose examples another test file runs
RUN_ELSEWHERE = {os.path.join("docs", "scale-out.md")}

FENCE = re.compile(r"^```(python\S*)([^\n]*)\n(.*?)^```\s*$", re.S | re.M)

TIMEOUT = 60


def blocks(doc):
    """(line number, info string, code) of every ```python... block of doc."""
    with open(os.path.join(ROOT, doc)) as f:
        text = f.read()
    return [(text.count("\n", 0, m.start()) + 1, (m.group(1) + m.group(2)).strip(),
             m.group(3)) for m in FENCE.finditer(text)]


def examples():
    return [pytest.param(code, id=f"{doc}:{line}")
            for doc in DOCS if doc not in RUN_ELSEWHERE
            for line, info, code in blocks(doc) if info == "python"]


@pytest.mark.parametrize("doc", DOCS)
def test_every_python_block_is_an_example_or_a_signature_summary(doc):
    infos = {info for _, info, _ in blocks(doc)}
    assert infos <= {"python", "python signature"}, (doc, infos)


def test_there_are_examples():
    # the pattern finds the blocks (a broken pattern would make the test below vacuous)
    assert len(examples()) >= 3


@pytest.mark.parametrize("code", examples())
def test_example_runs(code, tmp_path):
    script = tmp_path / "example.py"
    script.write_text(code)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=TIMEOUT, cwd=tmp_path, env=_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr == "", proc.stderr


def test_scale_out_examples_are_the_ones_test_dask_runs():
    import test_dask

    doc = os.path.join("docs", "scale-out.md")
    mine = [code for _, info, code in blocks(doc) if info == "python"]
    assert len(mine) == 3  # joblib, Dask on one machine, Dask on a cluster
    assert test_dask.doc_blocks() == mine
    assert all(info == "python" for _, info, _ in blocks(doc))
