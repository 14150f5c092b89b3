"""Functions of a script's ``__main__`` found by name in another interpreter.

A function of the script that cannot cross by value (a global it uses cannot be
pickled) crosses as (script, qualified name): the receiving interpreter imports the
script as the module ``__mp_main__``, under its ``if __name__ == "__main__":`` guard,
as multiprocessing's and the standard pools' workers do, and takes the function from
it. The standard library only: it loads in every interpreter that receives one.
"""
import sys
import threading

_MODULE = "__mp_main__"
# one import of the script at a time in this interpreter
_lock = threading.Lock()


def function(source, qualname):
    """The function `qualname` of the script `source`: ("path", file) for a script run
    as a file, ("module", name) for one run with ``python -m name``."""
    obj = _load(source)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _load(source):
    module = sys.modules.get(_MODULE)
    if module is not None and getattr(module, "__xi_script__", None) == source:
        return module
    with _lock:
        module = sys.modules.get(_MODULE)
        if module is not None and getattr(module, "__xi_script__", None) == source:
            return module
        import importlib.util

        kind, name = source
        if kind == "module":
            found = importlib.util.find_spec(name)
            if found is None or not found.origin:
                raise ImportError(f"cannot find the module {name!r} of the script", name=name)
            path, package = found.origin, name.rpartition(".")[0]
        else:
            path, package = name, ""
        spec = importlib.util.spec_from_file_location(_MODULE, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import the script {path!r}", path=path)
        module = importlib.util.module_from_spec(spec)
        module.__package__ = package
        module.__xi_script__ = source
        sys.modules[_MODULE] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            if sys.modules.get(_MODULE) is module:
                del sys.modules[_MODULE]
            raise
        return module
