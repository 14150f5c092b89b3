"""interrupt() never raises inside the import system (CPython's Python code that holds
the interpreter's import locks across bytecodes), nor inside a module's top-level code
while it is imported: the call's own imports go on, the interrupts are raised once
they have returned, and a later import in the interpreter does not hang on a lock left
taken. One may be raised as an import begins, at the first instruction of importlib's
entry function, before it did anything (interrupt_funcs, above GUARDED); those are
counted apart. Run in a subprocess, so that a hang fails the test only."""
import os
import time

import pytest

from conftest import assert_clean_exit
from helpers import parse

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))

SCRIPT = """
import os, sys, threading, time
sys.path.insert(0, sys.argv[1])
import extrainterpreters as xi
import interrupt_funcs as inf

tmp, N = sys.argv[2], int(sys.argv[3])
interp = xi.Interpreter().start()
started = os.path.join(tmp, "started")
inf.write_modules(tmp, "guarded_mod_", N)
func, args = inf.import_through_interrupts, (tmp, "guarded_mod_", N, started)
result, escaped = [], [0]

def driver():
    while not result:
        try:
            result.append(interp.run(func, *args))
        except KeyboardInterrupt:
            escaped[0] += 1  # it landed outside the step: call again

t = threading.Thread(target=driver, daemon=True)
t.start()
while not os.path.exists(started):
    time.sleep(0.001)
sent, late = 0, time.monotonic() + 60
while t.is_alive() and time.monotonic() < late:
    interp.interrupt()
    sent += 1
    time.sleep(0.0005 + 0.001 * (sent % 3))
t.join(1)
print("SENT", sent, flush=True)
print("DONE", not t.is_alive(), flush=True)
if t.is_alive():
    os._exit(3)
inside, entry, outside = result[0]
print("INSIDE", inside, flush=True)
if inside:
    print("WHERE", interp.run(eval, "__import__('interrupt_funcs').WHERE"), flush=True)
print("ENTRY", entry, flush=True)
print("OUTSIDE", outside + escaped[0], flush=True)

# from another thread (the owner thread runs the main thread's calls): a lock left
# taken would make it wait for ever
later = []
def check():
    later.append(interp.run(inf.import_fresh_module))
c = threading.Thread(target=check, daemon=True)
c.start()
c.join(20)
print("LATER", later[0] if later else "hung", flush=True)
if not later:
    os._exit(4)
interp.close()
print("END", flush=True)
"""


@pytest.mark.parametrize("round_", range(2))
def test_interrupts_wait_until_the_calls_imports_return(run_py, tmp_path, round_):
    proc = run_py(SCRIPT, timeout=120, args=[TESTS_DIR, str(tmp_path), "600"])
    out = proc.stdout + proc.stderr[-6000:]
    assert_clean_exit(proc)
    res = parse(proc.stdout)
    assert res["DONE"] == "True", out
    assert res["INSIDE"] == "0", out
    assert res["LATER"] == "True", out
    # the interrupts were raised, once the imports had returned
    assert int(res["OUTSIDE"]) > 10, out
    assert "END" in res, out


SLOW_MODULE = """
open({path!r}, "w").close()
import time
time.sleep(0.5)
"""


def test_the_monitoring_tool_is_given_back_once_no_interrupt_is_held(interp, tmp_path):
    # an interrupt held while a call imports claims a sys.monitoring tool id (4, or 3)
    # in the interpreter; once it was raised, the id is free again for the
    # interpreter's own code
    import threading

    started = str(tmp_path / "importing")
    (tmp_path / "slow_to_import_xi.py").write_text(SLOW_MODULE.format(path=started))
    interp.exec(f"import sys; sys.path.insert(0, {str(tmp_path)!r})")
    outcome = []

    def importer():
        try:
            interp.exec("import slow_to_import_xi")
            outcome.append("imported")
        except BaseException as e:  # ExecutionFailed: KeyboardInterrupt
            outcome.append("KeyboardInterrupt" if "KeyboardInterrupt" in str(e) else e)

    t = threading.Thread(target=importer)
    t.start()
    deadline = time.monotonic() + 20
    while not os.path.exists(started):
        assert time.monotonic() < deadline, "the import did not start"
        time.sleep(0.01)
    interp.interrupt()
    t.join()
    assert outcome == ["KeyboardInterrupt"], outcome
    assert interp.run(tools_in_use) == [None, None]
    interp.exec("import sys; sys.monitoring.use_tool_id(4, 'mine'); "
                "sys.monitoring.free_tool_id(4)")


def tools_in_use():
    import sys
    return [sys.monitoring.get_tool(3), sys.monitoring.get_tool(4)]
