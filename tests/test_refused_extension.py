"""An extension module that refuses subinterpreters (single-phase init, as many are) is
reported as such wherever it stops a call: imported by the code, imported under a
package's own message (as numpy does), or needed to unpickle an argument, a Queue item
or a result. The exception keeps its type; its message says that the module does not
support subinterpreters and what to do."""
import importlib
import subprocess
import sys
import sysconfig
import textwrap

import pytest

import extrainterpreters as xi
import remote_funcs as rf

EXPECTED = ("module 'xi_refusing' does not support subinterpreters (a limit of that module, "
            "not of extrainterpreters): run code that needs it in the main interpreter; "
            "see docs/compatibility.md")

# legacy (single-phase) initialization: refused by every isolated interpreter
SOURCE = """
#include <Python.h>
static PyObject *rebuild(PyObject *self, PyObject *arg) { (void)self; return Py_NewRef(arg); }
static PyMethodDef methods[] = {{"rebuild", rebuild, METH_O, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "xi_refusing", NULL, -1, methods};
PyMODINIT_FUNC PyInit_xi_refusing(void) { return PyModule_Create(&def); }
"""

# an object that needs the module to be unpickled, as a numpy array does
THING = """
class Thing:
    def __init__(self, value):
        self.value = value

    def __reduce__(self):
        import xi_refusing
        return (xi_refusing.rebuild, (self.value,))


def make(value):
    return Thing(value)
"""

# a package that wraps the refusal in a message of its own (numpy's "bad install" text)
WRAPPER = """
try:
    import xi_refusing
except ImportError:
    raise ImportError("this is likely a bad install: reinstall xi_refusing_wrapper")
"""


@pytest.fixture(scope="module")
def modules_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("refusing")
    include = sysconfig.get_paths()["include"]
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    (d / "xi_refusing.c").write_text(SOURCE)
    subprocess.run(["cc", "-shared", "-fPIC", "-I", include, "-o",
                    str(d / f"xi_refusing{suffix}"), str(d / "xi_refusing.c")], check=True)
    (d / "xi_refusing_thing.py").write_text(textwrap.dedent(THING))
    (d / "xi_refusing_wrapper").mkdir()
    (d / "xi_refusing_wrapper" / "__init__.py").write_text(textwrap.dedent(WRAPPER))
    sys.path.insert(0, str(d))
    try:
        yield d
    finally:
        sys.path.remove(str(d))


@pytest.fixture
def refusing(modules_dir):
    """An interpreter whose sys.path finds the modules."""
    it = xi.Interpreter().start()
    try:
        yield it
    finally:
        it.close()


@pytest.fixture
def thing(modules_dir):
    return importlib.import_module("xi_refusing_thing").Thing(7)


def assert_reported(failed):
    assert str(failed.excinfo.msg) == EXPECTED
    assert EXPECTED in str(failed)
    # the remote traceback still shows what CPython said
    assert "does not support loading in subinterpreters" in failed.excinfo.errdisplay


@pytest.mark.parametrize("module", ["xi_refusing", "xi_refusing_wrapper"])
def test_import_run_keeps_import_error(refusing, module):
    with pytest.raises(ImportError) as ei:
        refusing.run(importlib.import_module, module)
    assert type(ei.value) is ImportError
    assert str(ei.value) == EXPECTED
    assert_reported(ei.value.__cause__)


@pytest.mark.parametrize("module", ["xi_refusing", "xi_refusing_wrapper"])
def test_import_call_raises_execution_failed(refusing, module):
    with pytest.raises(xi.ExecutionFailed) as ei:
        refusing.call(importlib.import_module, module)
    assert ei.value.excinfo.type.__name__ == "ImportError"
    assert_reported(ei.value)


def test_exec_source(refusing, modules_dir):
    with pytest.raises(xi.ExecutionFailed) as ei:
        refusing.exec("import xi_refusing_wrapper")
    assert_reported(ei.value)
    with pytest.raises(ImportError) as ei:
        refusing.run_string("import xi_refusing")
    assert str(ei.value) == EXPECTED


@pytest.mark.parametrize("name", ["run", "call"])
def test_argument_that_needs_the_module(refusing, thing, name):
    # as the standard library: NotShareableError("args not shareable") from
    # NotShareableError("object could not be unpickled"), each naming the refusal
    with pytest.raises(xi.NotShareableError) as ei:
        getattr(refusing, name)(rf.identity, thing)
    assert str(ei.value) == f"args not shareable: {EXPECTED}"
    inner = ei.value.__cause__
    assert isinstance(inner, xi.NotShareableError)
    assert str(inner) == f"object could not be unpickled: {EXPECTED}"
    # the remote traceback shows the ImportError and what CPython said
    assert "ImportError" in inner.__cause__.excinfo.errdisplay
    assert "does not support loading in subinterpreters" in inner.__cause__.excinfo.errdisplay
    assert refusing.call(rf.add, 1, 2) == 3  # still usable


def test_queue_item_that_needs_the_module(refusing, thing):
    q = xi.Queue()
    q.put(thing)
    with pytest.raises(ImportError) as ei:
        refusing.run(rf.queue_get, q, 5)
    assert str(ei.value) == EXPECTED


def test_prepare_main_value_that_needs_the_module(refusing, thing):
    with pytest.raises(ImportError) as ei:
        refusing.prepare_main(thing=thing)
    assert str(ei.value) == EXPECTED


def test_result_that_needs_the_module(refusing, modules_dir):
    # made in the interpreter (the class is pure Python); sending it back needs the module
    module = importlib.import_module("xi_refusing_thing")
    with pytest.raises(xi.NotShareableError) as ei:
        refusing.run(module.make, 1)
    assert str(ei.value) == ("xi_refusing_thing.Thing object cannot be shared with another "
                             f"interpreter: {EXPECTED}")
    with pytest.raises(xi.ExecutionFailed) as ei:
        refusing.call(module.make, 1)
    assert EXPECTED in str(ei.value.excinfo.msg)


def test_other_import_errors_keep_their_message(refusing):
    with pytest.raises(ImportError) as ei:
        refusing.run(importlib.import_module, "xi_refusing_no_such_module")
    assert "does not support subinterpreters" not in str(ei.value)
    assert "xi_refusing_no_such_module" in str(ei.value)


def test_another_error_raised_while_handling_a_refusal_keeps_its_message(refusing):
    # a handler that raises its own error (from None, or as a different type) is not
    # reported as the refusal
    src = ("def f(module):\n"
           "    try:\n"
           "        __import__(module)\n"
           "    except ImportError:\n"
           "        raise ValueError('config key x missing') from None\n")
    refusing.exec(src)
    with pytest.raises(xi.ExecutionFailed) as ei:
        refusing.call(eval, "f('xi_refusing')")
    assert ei.value.excinfo.msg == "config key x missing"
    refusing.exec(src.replace(" from None", ""))
    with pytest.raises(ValueError, match="^config key x missing$"):
        refusing.run(eval, "f('xi_refusing')")
