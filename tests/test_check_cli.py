"""``python -m extrainterpreters check``: which modules load in an own-GIL interpreter,
and why the others do not. The extension modules are built here, one per kind."""
import json
import subprocess
import sys
import sysconfig
import textwrap

import pytest

from conftest import _env

# A module definition per kind; {name} is the module name.
EXTENSIONS = {
    # legacy initialization: refused by every isolated interpreter
    "xi_single": """
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "{name}", NULL, -1, NULL};
PyMODINIT_FUNC PyInit_{name}(void) { return PyModule_Create(&def); }
""",
    # multi-phase, but no Py_mod_multiple_interpreters slot: shared GIL only
    "xi_multi_noslot": """
static int exec_mod(PyObject *m) { (void)m; return 0; }
static PyModuleDef_Slot slots[] = {{Py_mod_exec, exec_mod}, {0, NULL}};
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "{name}", NULL, 0, NULL, slots};
PyMODINIT_FUNC PyInit_{name}(void) { return PyModuleDef_Init(&def); }
""",
    # multi-phase, per-interpreter GIL supported: loads
    "xi_multi_ok": """
static int exec_mod(PyObject *m) { (void)m; return 0; }
static PyModuleDef_Slot slots[] = {
    {Py_mod_exec, exec_mod},
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
    {0, NULL}};
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "{name}", NULL, 0, NULL, slots};
PyMODINIT_FUNC PyInit_{name}(void) { return PyModuleDef_Init(&def); }
""",
}


@pytest.fixture(scope="module")
def modules_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("checkmods")
    include = sysconfig.get_paths()["include"]
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    for name, body in EXTENSIONS.items():
        src = d / f"{name}.c"
        src.write_text("#include <Python.h>\n" + body.replace("{name}", name))
        subprocess.run(["cc", "-shared", "-fPIC", "-I", include, "-o", str(d / f"{name}{suffix}"),
                        str(src)], check=True)
    (d / "xi_raises.py").write_text("raise RuntimeError('broken at import')\n")
    (d / "xi_pure.py").write_text("VALUE = 1\n")
    # a package that wraps an extension's refusal in a message of its own
    (d / "xi_wrapper").mkdir()
    (d / "xi_wrapper" / "__init__.py").write_text(textwrap.dedent("""
        try:
            import xi_single
        except ImportError as exc:
            raise ImportError("this is likely a bad install; original error: " + str(exc))
    """))
    return d


def check(modules_dir, *argv):
    env = _env()
    env["PYTHONPATH"] = f"{modules_dir}:{env.get('PYTHONPATH', '')}"
    return subprocess.run([sys.executable, "-m", "extrainterpreters", "check", *argv],
                          capture_output=True, text=True, env=env, timeout=120)


def test_json_report_gives_each_reason(modules_dir):
    proc = check(modules_dir, "--json", "xi_pure", "xi_multi_ok", "xi_single",
                 "xi_multi_noslot", "xi_raises", "xi_wrapper", "json")
    assert proc.returncode == 1, proc.stderr
    report = {r["module"]: r for r in json.loads(proc.stdout)}
    assert [r["module"] for r in json.loads(proc.stdout)] == [
        "xi_pure", "xi_multi_ok", "xi_single", "xi_multi_noslot", "xi_raises", "xi_wrapper",
        "json"]
    for name in ("xi_pure", "xi_multi_ok", "json"):
        assert report[name]["loads"] is True and report[name]["reason"] is None
    assert report["xi_single"]["reason"] == "single-phase init"
    assert report["xi_single"]["extension"] == "xi_single"
    assert report["xi_multi_noslot"]["reason"] == "no per-interpreter GIL support"
    assert "no Py_mod_multiple_interpreters slot" in report["xi_multi_noslot"]["detail"]
    assert report["xi_raises"]["reason"] == "error"
    assert report["xi_raises"]["error"] == "RuntimeError"
    assert "broken at import" in report["xi_raises"]["detail"]
    # the extension behind a package's own message is found and named
    assert report["xi_wrapper"]["reason"] == "single-phase init"
    assert report["xi_wrapper"]["extension"] == "xi_single"


def test_text_report_and_exit_status(modules_dir):
    ok = check(modules_dir, "xi_pure", "json")
    assert ok.returncode == 0, ok.stderr
    assert "2 of 2 modules load" in ok.stdout
    bad = check(modules_dir, "xi_single")
    assert bad.returncode == 1
    assert "xi_single  does not load: single-phase init" in bad.stdout
    assert "single-phase initialization" in bad.stdout


def test_no_arguments_checks_installed_modules(modules_dir):
    proc = check(modules_dir, "--json")
    names = {r["module"] for r in json.loads(proc.stdout)}
    # PYTHONPATH and site-packages are checked, the standard library is not
    assert {"xi_pure", "xi_single", "cloudpickle", "pytest"} <= names
    assert "json" not in names and "extrainterpreters" not in names
    assert proc.returncode == 1  # xi_single does not load


def test_extension_kind_reads_the_definition(modules_dir):
    code = textwrap.dedent("""
        import json, sys
        from extrainterpreters import _xi
        import xi_single, xi_multi_noslot, xi_multi_ok, xi_pure
        print(json.dumps([_xi._extension_kind(m) for m in
                          (xi_single, xi_multi_noslot, xi_multi_ok, xi_pure, _xi)]))
    """)
    env = _env()
    env["PYTHONPATH"] = f"{modules_dir}:{env.get('PYTHONPATH', '')}"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    kinds = json.loads(proc.stdout)
    assert kinds[0] == ["single-phase", None, None]
    assert kinds[1] == ["multi-phase", None, None]
    assert kinds[2][:2] == ["multi-phase", 2]
    assert kinds[3] == [None, None, None]
    assert kinds[4][:2] == ["multi-phase", 2]
    if sys.version_info >= (3, 13):
        assert kinds[4][2] == 1  # Py_MOD_GIL_NOT_USED


def test_usage_errors():
    proc = subprocess.run([sys.executable, "-m", "extrainterpreters", "frobnicate"],
                          capture_output=True, text=True, env=_env(), timeout=60)
    assert proc.returncode == 2 and "unknown command" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "extrainterpreters"],
                          capture_output=True, text=True, env=_env(), timeout=60)
    assert proc.returncode == 2 and "usage" in proc.stdout
    with pytest.raises(TypeError):
        from extrainterpreters import _xi
        _xi._extension_kind("not a module")
