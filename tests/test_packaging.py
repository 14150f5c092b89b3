"""The package as users get it: `python -m build` makes an sdist holding every source and,
from that sdist alone, a wheel; the wheel installs into a fresh venv where no compiler is
on PATH, imports, and runs a call in an interpreter."""
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile

import pytest

from conftest import TESTS_DIR

ROOT = os.path.dirname(TESTS_DIR)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("gcc") is None and shutil.which("cc") is None,
                       reason="building the wheel needs a C compiler"),
]

# What a source tree holds that is not a source of the package.
NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", ".hypothesis",
    ".pytest_cache", "*.so", "*.o", "bench-venvs", "bench-out")


def sources():
    """The files an sdist must hold, relative to the root: the C core, the package, and
    the files that describe and build it."""
    found = {"setup.py", "pyproject.toml", "README.md"}
    for top, suffixes in [("csrc", (".c", ".h")),
                          (os.path.join("src", "extrainterpreters"), (".py", ".pyi", ".typed"))]:
        for name in os.listdir(os.path.join(ROOT, top)):
            if name.endswith(suffixes):
                found.add(os.path.join(top, name))
    return found


def run(cmd, **kwargs):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kwargs)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def dists(tmp_path_factory):
    tree = tmp_path_factory.mktemp("tree") / "extrainterpreters"
    shutil.copytree(ROOT, tree, ignore=NOT_SOURCES)
    out = tmp_path_factory.mktemp("dist")
    # --no-isolation: this venv already holds the build requirements (no network needed)
    env = dict(os.environ, DIST_EXTRA_CONFIG="")
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(tree)],
        env=env)
    sdist = [p for p in out.iterdir() if p.name.endswith(".tar.gz")]
    wheel = [p for p in out.iterdir() if p.name.endswith(".whl")]
    assert len(sdist) == 1 and len(wheel) == 1, list(out.iterdir())
    return sdist[0], wheel[0]


def test_sdist_holds_every_source(dists):
    sdist, _ = dists
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    missing = sorted(sources() - names)
    assert not missing, f"not in {sdist.name}: {missing}"


def test_wheel_installs_and_runs_without_a_compiler(dists, tmp_path):
    _, wheel = dists
    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
    assert any(n.startswith("extrainterpreters/_xi.") and n.endswith(".so") for n in names)
    assert "extrainterpreters/py.typed" in names
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    py = str(venv / "bin" / "python")
    # pip from this venv installs into the fresh one; the run-time dependency comes from
    # this venv too (no network), and nothing may be compiled: no compiler on PATH.
    env = {"PATH": str(venv / "bin"), "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    import cloudpickle

    deps = tmp_path / "deps"
    shutil.copytree(os.path.dirname(cloudpickle.__file__), deps / "cloudpickle")
    run([sys.executable, "-m", "pip", "--python", py, "install", "-q", "--no-index",
         "--no-deps", "--no-compile", str(wheel)], env=env)
    assert shutil.which("gcc", path=env["PATH"]) is None
    code = ("import extrainterpreters as xi\n"
            "with xi.Interpreter() as i:\n"
            "    print(i.run(sum, [1, 2, 3]), xi.__file__)\n")
    proc = run([py, "-c", code], env=dict(env, PYTHONPATH=str(deps)), cwd=str(tmp_path))
    result, where = proc.stdout.split()
    assert result == "6"
    assert where.startswith(str(venv)), where
