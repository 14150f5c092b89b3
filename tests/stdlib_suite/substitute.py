"""Puts extrainterpreters in the place of concurrent.interpreters and
concurrent.futures.interpreter, before the tests import them.

install() does it in the current interpreter (through sys.modules), and makes every
interpreter that extrainterpreters starts from then on run install() too, so that test
code run there meets the library as well. Interpreters made by the standard library's
own `_interpreters` module do not get it: there the test code meets the standard
library."""
import importlib.util
import os
import sys
import sysconfig

HERE = os.path.dirname(os.path.abspath(__file__))


def _real_crossinterp():
    # constants only (UNBOUND...); loaded from the standard library's own file
    name = "concurrent.interpreters._crossinterp"
    if name in sys.modules:
        return sys.modules[name]
    path = os.path.join(sysconfig.get_path("stdlib"), "concurrent", "interpreters",
                        "_crossinterp.py")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def install(subinterpreters=True):
    """subinterpreters=False: in this interpreter only; the interpreters that
    extrainterpreters starts keep the standard library's modules."""
    import concurrent
    import concurrent.interpreters  # noqa: F401 (the real one, while it is still in place)

    import extrainterpreters as xi

    xi.ExecutionFailed  # made on first use from the real module: before it is replaced

    crossinterp = _real_crossinterp()
    # the tests import the private submodule concurrent.interpreters._queues
    from extrainterpreters import _queues as queues

    queues.ItemInterpreterDestroyed = crossinterp.ItemInterpreterDestroyed
    queues.__name__ = "concurrent.interpreters._queues"

    sys.modules["concurrent.interpreters"] = xi
    sys.modules["concurrent.interpreters._queues"] = queues
    xi._queues = queues
    xi._crossinterp = crossinterp
    concurrent.interpreters = xi

    import concurrent.futures

    from extrainterpreters import executor, interpreter

    if subinterpreters and not getattr(interpreter.Interpreter.start, "_substitutes", False):
        start = interpreter.Interpreter.start

        def start_substituted(self):
            start(self)
            # leaves nothing in the interpreter's __main__
            self.run_string(f"import sys as _sys\n_sys.path.insert(0, {HERE!r})\n"
                            f"import substitute as _substitute\n_substitute.install()\n"
                            f"_sys.path.remove({HERE!r})\ndel _sys, _substitute")
            return self

        start_substituted._substitutes = True
        interpreter.Interpreter.start = start_substituted

    sys.modules["concurrent.futures.interpreter"] = executor
    concurrent.futures.interpreter = executor
    concurrent.futures.InterpreterPoolExecutor = executor.InterpreterPoolExecutor
