"""Leaks: RSS per iteration, in a fresh process per resource, after a warm-up, over many
iterations of one resource's life (calls, queue items, shared objects, interpreters).
Bounds are generous (allocator noise, caches filling): a leak of a packet, a thread
state or an object per iteration exceeds them by far."""
import os
import subprocess
import sys

from conftest import assert_clean_exit

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))

HEAD = """
import gc, os, sys, threading
import extrainterpreters as xi
import remote_funcs as rf

PAGE = os.sysconf("SC_PAGE_SIZE")

def rss():
    gc.collect()
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE

def per_iteration(step, n, warmup):
    for i in range(warmup):
        step(i)
    before = rss()
    for i in range(n):
        step(i)
    return (rss() - before) / n
"""


def measure(body, timeout=300):
    env = os.environ.copy()
    env.pop("PYTHONSTARTUP", None)
    if "libasan" in env.get("LD_PRELOAD", ""):
        # ASan keeps freed blocks in a quarantine, which grows RSS: measure without it
        env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") +
                               ":quarantine_size_mb=0:thread_local_quarantine_size_kb=0")
    proc = subprocess.run([sys.executable, "-c", HEAD + body], capture_output=True,
                          text=True, timeout=timeout, cwd=TESTS_DIR, env=env)
    assert_clean_exit(proc)
    print(proc.stdout)  # the figures (pytest -s shows them)
    values = {}
    for line in proc.stdout.splitlines():
        name, _, value = line.partition(" ")
        values[name] = float(value)
    return values, proc.stdout


def test_calls():
    """1e5 calls from the main thread (through the owner thread) and 1e5 from another
    thread (direct), each with an argument and a result."""
    got, out = measure("""
it = xi.Interpreter().start()
print("main", per_iteration(lambda i: it.run(rf.identity, (i, "x")), 100_000, 10_000))
box = {}
t = threading.Thread(target=lambda: box.update(
    v=per_iteration(lambda i: it.run(rf.identity, (i, "x")), 100_000, 10_000)))
t.start(); t.join()
print("thread", box["v"])
it.close()
""")
    assert got["main"] < 32 and got["thread"] < 32, out  # bytes per call (3.2 MB in all)


def test_queue_items():
    """1e4 small items and 1e4 lent 64 KiB items through a Queue, across interpreters."""
    got, out = measure("""
q = xi.Queue()
it = xi.Interpreter().start()
print("small", per_iteration(lambda i: (q.put((i, "item")), it.run(rf.queue_get, q)), 10_000, 1_000))
item = b"x" * (64 << 10)
print("lent", per_iteration(lambda i: (q.put(item), it.run(rf.queue_get, q)), 10_000, 1_000))
print("back", per_iteration(lambda i: (it.run(rf.queue_put, q, item), q.get()), 10_000, 1_000))
it.close()
""")
    assert got["small"] < 64 and got["lent"] < 64 and got["back"] < 64, out  # bytes per item


def test_shared_objects():
    """1e4 of each kind of shared object created, used once and dropped."""
    got, out = measure("""
kinds = [lambda: xi.Queue(), lambda: xi.SharedBuffer(64), lambda: xi.Lock(),
         lambda: xi.RLock(), lambda: xi.Semaphore(1), lambda: xi.Event(),
         lambda: xi.Condition(), lambda: xi.Barrier(1)]
base = xi._xi._live_objects()
def step(i):
    objs = [k() for k in kinds]
    q = objs[0]
    q.put(objs)  # every kind in flight once
    q.get_nowait()
print("objects", per_iteration(step, 10_000, 1_000))
print("alive", xi._xi._live_objects() - base)
""")
    assert got["alive"] == 0, out
    assert got["objects"] < 256, out  # bytes per 8 objects


# Body prefix: CPython's own module for interpreters, and raw_step(code), a step that
# creates an interpreter, runs code there (with this sys.path) and destroys it.
RAW = """
try:
    import _interpreters as raw
    new = raw.create
    run = raw.exec
except ImportError:
    import _xxsubinterpreters as raw
    new = lambda: raw.create(isolated=True)
    run = raw.run_string
def raw_step(code):
    source = "import sys; sys.path[:] = %r\\n%s" % (sys.path, code)
    def step(i):
        x = new()
        run(x, source)
        raw.destroy(x)
    return step
"""


def test_interpreter_create_close_against_cpython():
    """Interpreters created and closed, against CPython's own create/destroy in the same
    process. CPython itself keeps about 1.5-1.8 MiB per interpreter (3.12, 3.13), and more
    for every module the interpreter imported, so a bare interpreter of ours is measured
    against a raw one that loaded this library's C core (as ours does when it starts),
    and one that ran a call (importing this package and the test functions) against a
    raw one that imported the same modules. (CPython 3.15 keeps nothing for a bare
    interpreter, but still keeps memory for the modules one imported.)"""
    got, out = measure(RAW + """
raw_core = raw_step("import extrainterpreters._xi")
raw_imports = raw_step("import extrainterpreters, remote_funcs")
def ours_bare(i):
    xi.Interpreter().start().close()
def ours(i):
    it = xi.Interpreter().start()
    it.run(rf.identity, i)
    it.close()
for name, step in [("raw_core", raw_core), ("ours_bare", ours_bare),
                   ("raw_imports", raw_imports), ("ours", ours)]:
    print(name, per_iteration(step, 30, 5))
""", timeout=600)
    mib = 1 << 20
    assert got["ours_bare"] < got["raw_core"] + 1 * mib, out
    assert got["ours"] < got["raw_imports"] + 1 * mib, out


def test_the_module_is_freed_with_its_interpreter():
    """An interpreter that imported the package (made by CPython's own module, so that
    only the import differs) keeps no more than one that imported other modules: the
    package's module state, and what it refers to, go with the interpreter."""
    got, out = measure(RAW + """
print("others", per_iteration(raw_step("import pickle, io, queue, json, types"), 30, 5))
print("package", per_iteration(raw_step("import extrainterpreters"), 30, 5))
""", timeout=600)
    assert got["package"] < got["others"] + 1 * (1 << 20), out
