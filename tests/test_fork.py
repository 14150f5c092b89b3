"""Processes beside interpreters.

os.fork() (and multiprocessing's fork context: a Pool, a ProcessPoolExecutor, a
Manager) works once the library was used: after interpreters were closed, beside an
idle InterpreterPoolExecutor (the interpreters of its idle workers end before the fork
and start again with their next task) and after the joblib backend ran (its pool stays).
The parent goes on, and so does the child, which makes interpreters and pools of its own.

CPython's own code in a fork() child crashes deleting the subinterpreters that the child
inherits (every version, with the standard library's interpreters too). So an
interpreter that is still open at the fork (one the program holds, or one running a
call) makes the parent warn (RuntimeWarning) and the child exit at once with status 70,
saying why; the parent and its interpreters go on.

multiprocessing's spawn and forkserver contexts start a fresh interpreter in the child:
they work beside live interpreters, also while calls run.

Each fork runs in a subprocess, killed if it hangs: a child that crashes or hangs must
not take pytest with it."""
import multiprocessing
import os
import subprocess
import sys
import textwrap

import pytest

import extrainterpreters as xi
import interrupt_funcs as inf
import remote_funcs as rf
from helpers import call_in_thread

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))

# a hang is the failure looked for, not speed
BOUND = 120

PRELUDE = """
import os, sys, time, warnings
warnings.simplefilter("ignore", DeprecationWarning)  # "multi-threaded, use of fork()"
import extrainterpreters as xi
import remote_funcs as rf

def child_makes_its_own():
    # the child's own interpreter and pool
    before = xi.list_all()
    with xi.Interpreter() as it:
        assert it.run(rf.add, 1, 2) == 3
    with xi.InterpreterPoolExecutor(2) as pool:
        assert list(pool.map(rf.square, range(5))) == [0, 1, 4, 9, 16]
    assert xi.list_all() == before

def child_work(a, b):
    # in a process of a fork pool: an interpreter of its own
    with xi.Interpreter() as it:
        return it.run(rf.add, a, b)

def started_file():
    import tempfile
    fd, path = tempfile.mkstemp()
    os.close(fd)
    os.unlink(path)
    return path

def wait_for(path):
    deadline = time.monotonic() + 60
    while not os.path.exists(path):
        assert time.monotonic() < deadline, "the call did not start"
        time.sleep(0.01)
    os.unlink(path)

def fork(check=child_makes_its_own):
    # os.fork(): the child runs check() and exits normally (its atexit hooks run);
    # prints the child's exit status and the warnings the fork raised
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        pid = os.fork()
    if pid == 0:
        code = 1
        try:
            check()
            code = 0
        except BaseException:
            import traceback
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.exit(code)
    for w in caught:
        if issubclass(w.category, RuntimeWarning):
            print("WARNING", w.message, flush=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            print("CHILD", os.waitstatus_to_exitcode(status), flush=True)
            return
        time.sleep(0.02)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    print("CHILD hung", flush=True)

def fork_pools():
    # each fork-context process pool of the standard library, and a Manager
    import concurrent.futures as cf, multiprocessing as mp
    ctx = mp.get_context("fork")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # nothing to warn about
        with cf.ProcessPoolExecutor(2, mp_context=ctx) as pe:
            assert list(pe.map(child_work, [1, 3], [2, 4], timeout=60)) == [3, 7]
        with ctx.Pool(2) as pool:
            assert pool.starmap_async(child_work, [(1, 2), (3, 4)]).get(60) == [3, 7]
        with ctx.Manager() as manager:
            d = manager.dict()
            d["k"] = 1
            assert dict(d) == {"k": 1}
    print("POOLS ok", flush=True)
"""


def run(body, timeout=BOUND):
    """Runs PRELUDE + body in a new interpreter process; returns (returncode, stdout
    lines, stderr)."""
    script = PRELUDE + textwrap.dedent(body)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [TESTS_DIR] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=TESTS_DIR)
    return proc.returncode, proc.stdout.splitlines(), proc.stderr


def check(body):
    rc, out, err = run(body)
    assert rc == 0, (out, err)
    assert "DONE" in out, (out, err)
    return out, err


def test_fork_after_interpreters_closed():
    out, err = check("""
        for _ in range(3):
            with xi.Interpreter() as it:
                it.run(rf.add, 1, 2)
        fork()
        fork_pools()
        print("DONE")
    """)
    assert out[:2] == ["CHILD 0", "POOLS ok"], (out, err)


@pytest.mark.parametrize("initializer", [False, True])
def test_fork_beside_an_idle_pool(initializer):
    out, err = check(f"""
        init = dict(initializer=rf.bump_counter) if {initializer} else {{}}
        pool = xi.InterpreterPoolExecutor(2, **init)
        assert list(pool.map(rf.square, range(20))) == [i * i for i in range(20)]
        ids = xi.list_all()

        def child():
            # the parent's interpreters are not here; its pool object starts workers
            # of its own
            for it in ids:
                if it.id != xi.get_main().id:
                    try:
                        it.run(rf.add, 1, 2)
                    except xi.InterpreterNotFoundError:
                        pass
                    else:
                        raise AssertionError("a parent's interpreter ran a call")
            assert pool.submit(rf.add, 2, 3).result(timeout=60) == 5
            pool.shutdown()
            child_makes_its_own()

        fork(child)
        # the parent's pool goes on (new interpreters, the initializer run again)
        assert list(pool.map(rf.square, range(20))) == [i * i for i in range(20)]
        if {initializer}:
            assert {{pool.submit(rf.get_counter).result() for _ in range(10)}} == {{1}}
        fork_pools()
        assert pool.submit(rf.add, 1, 2).result() == 3
        pool.shutdown()
        print("DONE")
    """)
    assert out[:2] == ["CHILD 0", "POOLS ok"], (out, err)
    assert "WARNING" not in err + "".join(out)


def test_fork_after_the_joblib_backend():
    pytest.importorskip("joblib")
    out, err = check("""
        import extrainterpreters.joblib
        from joblib import Parallel, delayed, parallel_config

        def batch():
            with parallel_config("interpreters", n_jobs=2):
                return Parallel()(delayed(rf.square)(i) for i in range(30))

        assert batch() == [i * i for i in range(30)]
        def child():
            assert batch() == [i * i for i in range(30)]  # the child's own pool
            child_makes_its_own()

        fork(child)
        fork_pools()
        assert batch() == [i * i for i in range(30)]  # the kept pool, in the parent
        print("DONE")
    """)
    assert out[:2] == ["CHILD 0", "POOLS ok"], (out, err)


def test_fork_beside_an_open_interpreter():
    # the interpreter cannot be removed from the child: the child exits, saying so;
    # the interpreter goes on in the parent
    out, err = check("""
        it = xi.Interpreter().start()
        it.prepare_main(kept=41)
        fork()
        assert it.run(rf.add, 1, 1) == 2
        it.exec("kept += 1")
        assert it.run(rf.get_main_attr, "kept") == 42
        it.close()
        fork()
        print("DONE")
    """)
    assert out[0].startswith("WARNING fork() while extrainterpreters interpreters are open:"), out
    assert "status 70" in out[0]
    assert out[1:3] == ["CHILD 70", "CHILD 0"], (out, err)
    assert "the child exits with status 70" in err


def test_fork_while_a_call_runs():
    # a call runs in another thread: the parent warns, the child exits (status 70),
    # the call goes on in the parent
    out, err = check("""
        import threading
        import interrupt_funcs as inf
        it = xi.Interpreter().start()
        path = started_file()
        caught = []
        t = threading.Thread(
            target=lambda: caught.append(it.run(inf.count_interrupts, 1, 60, path)))
        t.start()
        wait_for(path)
        fork()
        it.interrupt()
        t.join(60)
        assert caught == [1]
        assert it.run(rf.add, 2, 2) == 4
        it.close()
        print("DONE")
    """)
    assert out[0].startswith("WARNING fork() while extrainterpreters interpreters run code:"), out
    assert "running a call" in out[0]
    assert out[1] == "CHILD 70", (out, err)


def test_fork_while_a_pool_task_runs():
    out, err = check("""
        import interrupt_funcs as inf
        pool = xi.InterpreterPoolExecutor(2)
        assert pool.submit(rf.add, 1, 1).result() == 2
        path = started_file()
        running = pool.submit(inf.count_interrupts, 1, 60, path)
        wait_for(path)
        fork()
        for it in xi.list_all()[1:]:
            it.interrupt()
        assert running.result(timeout=60) == 1
        assert list(pool.map(rf.square, range(10))) == [i * i for i in range(10)]
        pool.shutdown()
        print("DONE")
    """)
    assert out[0].startswith("WARNING fork() while extrainterpreters interpreters run code:"), out
    assert out[1] == "CHILD 70", (out, err)


def child_work(a, b):
    """Runs in the child process: an interpreter of its own, a call there."""
    import extrainterpreters as xi
    import remote_funcs as rf

    with xi.Interpreter() as it:
        return it.run(rf.add, a, b)


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_multiprocessing_beside_live_interpreters(method, interps):
    ctx = multiprocessing.get_context(method)
    idle, busy = interps(2)
    # a call runs in one interpreter the whole time
    running = call_in_thread(busy, inf.count_interrupts, 1, 60)
    try:
        with ctx.Pool(2) as pool:
            assert pool.starmap(child_work, [(1, 2), (3, 4)]) == [3, 7]
            assert pool.apply(rf.add, (5, 6)) == 11
        q = ctx.Queue()
        p = ctx.Process(target=rf.put_in_mp_queue, args=(q, "from child"))
        p.start()
        assert q.get(timeout=60) == "from child"
        p.join(60)
        assert p.exitcode == 0
        # the parent's interpreters are untouched
        assert idle.run(rf.add, 1, 1) == 2
        assert busy.is_running()
    finally:
        busy.interrupt()
    assert running() == 1
