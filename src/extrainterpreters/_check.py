"""``python -m extrainterpreters check``: which modules load in an own-GIL subinterpreter.

Each module is imported in a fresh isolated interpreter (the configuration this
library's interpreters use), in a process of its own: a module that breaks its process
is reported, not fatal. A module that does not load is reported with the reason:

- ``single-phase init``: an extension module initialized the legacy way, which CPython
  refuses in an isolated interpreter;
- ``no per-interpreter GIL support``: a multi-phase extension module that does not
  declare ``Py_MOD_PER_INTERPRETER_GIL_SUPPORTED``;
- ``error``: the import raised something else (the exception is shown);
- ``crash``: the process ended abnormally while the module was imported or its
  interpreter closed.
"""
import argparse
import json
import os
import sys
import sysconfig
from concurrent.futures import ThreadPoolExecutor

from ._errors import refused_extension

_MULTI = {0: "Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED",
          1: "Py_MOD_MULTIPLE_INTERPRETERS_SUPPORTED",
          2: "Py_MOD_PER_INTERPRETER_GIL_SUPPORTED"}


def _try_import(name):
    """Runs in the fresh interpreter: imports ``name``; never raises."""
    import importlib
    import traceback

    try:
        importlib.import_module(name)
    except BaseException as exc:  # noqa: BLE001 - everything is reported
        return {
            "error": f"{type(exc).__module__}.{type(exc).__qualname__}".removeprefix("builtins."),
            "message": str(exc).strip(),
            "refused": refused_extension(exc),
            "traceback": "".join(traceback.format_exception(exc)),
        }
    return None


def _extension_name(name, package):
    """The importable name of the extension module CPython called ``name`` (the name in
    its definition, which may lack its package) found in ``package``'s folder."""
    import importlib.machinery
    import importlib.util

    try:
        if importlib.util.find_spec(name) is not None:
            return name
    except (ImportError, ValueError):
        pass
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return name
    roots = list(spec.submodule_search_locations or []) if spec else []
    short = name.rpartition(".")[2]
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    for root in roots:
        for folder, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if d.isidentifier()]
            for f in files:
                if f.endswith(suffixes) and f.partition(".")[0] == short:
                    rel = os.path.relpath(os.path.join(folder, f.partition(".")[0]), root)
                    return ".".join([package, *rel.split(os.sep)])
    return name


def _classify(name, package):
    """Runs in a fresh process: imports the extension module ``name`` (refused when
    ``package`` was imported) in the main interpreter and prints what its definition
    declares, as JSON."""
    import importlib

    from . import _xi

    name = _extension_name(name, package)
    try:
        module = importlib.import_module(name)
    except BaseException as exc:  # noqa: BLE001
        print(json.dumps({"name": name, "error": f"{type(exc).__name__}: {exc}"}))
        return
    init, multi, gil = _xi._extension_kind(module)
    if init is None and _is_extension(module):
        # a single-phase module loaded again is rebuilt from a copy of its first
        # instance's dict, without its definition; a multi-phase one always keeps it
        init = "single-phase"
    print(json.dumps({"name": name, "init": init, "multi": multi, "gil": gil}))


def _run_here(func, *args):
    """Runs ``func(*args)`` of this module in a new Python process with this sys.path;
    (the JSON it printed, or None, and the process)."""
    import subprocess

    code = f"from extrainterpreters._check import {func}; {func}(*{args!r})"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=600)
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1]), proc
    except (ValueError, IndexError):
        return None, proc


def _crash(proc):
    status = (f"killed by signal {-proc.returncode}" if proc.returncode < 0
              else f"exit status {proc.returncode}")
    last = proc.stderr.strip().splitlines()[-3:]
    return f"{status}: {' / '.join(line.strip() for line in last)}"[:500]


def describe_extension(name, package):
    """Why the extension module ``name`` refuses own-GIL interpreters, read from its
    definition in a new process: (its full name, a short reason, a detail)."""
    info, proc = _run_here("_classify", name, package)
    if info is None:
        return name, *_describe(name, None, proc)
    return info["name"], *_describe(info["name"], info, proc)


def _describe(name, info, proc):
    if info is None:
        return "error", f"{name} refused subinterpreters; importing it in a new process: {_crash(proc)}"
    if "error" in info:
        return "error", f"{name} does not import in the main interpreter either: {info['error']}"
    init, multi = info["init"], info["multi"]
    if init == "single-phase":
        return "single-phase init", (
            f"{name} is an extension module with single-phase initialization, "
            "which CPython loads only in the main interpreter and in legacy "
            "(shared-GIL) subinterpreters")
    if init == "multi-phase":
        declared = "no Py_mod_multiple_interpreters slot (the default: shared GIL only)" \
            if multi is None else f"Py_mod_multiple_interpreters = {_MULTI.get(multi, multi)}"
        return "no per-interpreter GIL support", (
            f"{name} is a multi-phase extension module that declares {declared}")
    return "error", f"{name} refused subinterpreters"


def _is_extension(module):
    import importlib.machinery

    spec = getattr(module, "__spec__", None)
    return isinstance(getattr(spec, "loader", None), importlib.machinery.ExtensionFileLoader)


def _import_in_interpreter(name):
    """Runs in the process of its own: imports ``name`` in a fresh interpreter, closes
    it, and prints the outcome (null when it loaded) as JSON."""
    from .interpreter import Interpreter

    with Interpreter() as interp:
        failure = interp.run(_try_import, name)
    print(json.dumps(failure))


def check_module(name):
    """One module, checked in a fresh isolated interpreter: a dict for the report."""
    result = {"module": name, "loads": False, "reason": None, "detail": None,
              "extension": None, "error": None, "message": None}
    failure, proc = _run_here("_import_in_interpreter", name)
    if proc.returncode != 0 or (failure is None and proc.stdout.strip() != "null"):
        result.update(reason="crash", detail=_crash(proc))
        return result
    if failure is None:
        result["loads"] = True
        return result
    refused = failure["refused"]
    if refused is not None:
        refused, reason, detail = describe_extension(refused, name.partition(".")[0])
    else:
        reason = "error"
        detail = f"{failure['error']}: {failure['message']}"
    result.update(reason=reason, detail=detail, extension=refused, error=failure["error"],
                  message=failure["message"])
    return result


def installed_modules():
    """Top-level modules installed outside the standard library (site-packages, the
    user site, PYTHONPATH), without private (``_``) names."""
    import pkgutil

    stdlib = {os.path.realpath(sysconfig.get_paths()[k]) for k in ("stdlib", "platstdlib")}
    here = os.path.realpath(os.getcwd())  # the folder python -m runs in is not "installed"
    paths = [p for p in sys.path
             if p and os.path.isdir(p) and os.path.realpath(p) not in stdlib | {here}
             and not os.path.realpath(p).startswith(tuple(s + os.sep + "lib-dynload" for s in stdlib))]
    names = {m.name for m in pkgutil.iter_modules(paths) if not m.name.startswith("_")}
    names.discard("extrainterpreters")
    return sorted(names)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m extrainterpreters check",
        description="Import each module in a fresh isolated (own-GIL) interpreter and "
                    "report which load, and why the others do not.")
    parser.add_argument("modules", nargs="*", metavar="MODULE",
                        help="modules to check (default: every installed top-level module "
                             "outside the standard library)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1,
                        help="modules checked at once (default: the number of CPUs)")
    args = parser.parse_args(argv)
    names = args.modules or installed_modules()
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        results = list(pool.map(check_module, names))
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        print()
    else:
        width = max((len(r["module"]) for r in results), default=0)
        for r in results:
            status = "loads" if r["loads"] else f"does not load: {r['reason']}"
            print(f"{r['module']:<{width}}  {status}")
            if not r["loads"]:
                print(f"{'':<{width}}    {r['detail']}")
        refused = sum(not r["loads"] for r in results)
        print(f"\n{len(results) - refused} of {len(results)} modules load in a subinterpreter.")
    return 0 if all(r["loads"] for r in results) else 1
