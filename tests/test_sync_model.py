"""The primitives against threading's: hypothesis draws sequences of operations that
never block, runs each sequence on an extrainterpreters primitive and on the threading
one, and compares every result and every exception class, step by step. Operations on
the shared primitive run here or in a subinterpreter (or another thread, for RLock)."""
import functools
import queue
import threading

import pytest
from hypothesis import given, strategies as st

import extrainterpreters as xi
import remote_funcs as rf


def apply(obj, name, args=(), kwargs=None):
    """('ok', value) or (exception class name,) of obj.name(*args, **kwargs) here."""
    try:
        attr = getattr(obj, name)
        value = attr(*args, **(kwargs or {})) if callable(attr) else attr
    except Exception as e:
        return (type(e).__name__,)
    return ("ok", value)


def apply_in(interp, obj, name, args=(), kwargs=None):
    out = interp.run(rf.sync_op, obj, name, *args, **(kwargs or {}))
    return out if out[0] == "ok" else (out[0],)


class Worker:
    """One long-lived thread of this interpreter that runs what it is given."""

    def __init__(self):
        self.jobs = queue.Queue()
        self.thread = threading.Thread(target=self._main, daemon=True)
        self.thread.start()

    def _main(self):
        while True:
            job = self.jobs.get()
            if job is None:
                return
            func, reply = job
            reply.put(func())

    def run(self, func):
        reply = queue.Queue()
        self.jobs.put((func, reply))
        return reply.get(timeout=30)

    def stop(self):
        self.jobs.put(None)
        self.thread.join(10)


@pytest.fixture(scope="module")
def worker():
    w = Worker()
    yield w
    w.stop()


def op(name, *args, **kwargs):
    return (name, args, kwargs)


def check_sequence(model, shared, steps, runners):
    """Runs each (where, (name, args, kwargs)) on both; asserts equal outcomes."""
    for i, (where, (name, args, kwargs)) in enumerate(steps):
        expected = apply(model, name, args, kwargs) if where != "other" else \
            runners["model-other"](lambda: apply(model, name, args, kwargs))
        got = runners[where](shared, name, args, kwargs)
        assert got == expected, (
            f"step {i}: {where} {name}{args}{kwargs}: threading gave {expected}, "
            f"extrainterpreters gave {got}\nsteps: {steps[:i + 1]}")


def make_runners(shared_interp, worker=None):
    runners = {
        "main": apply,
        "sub": functools.partial(apply_in, shared_interp),
    }
    if worker is not None:
        runners["other"] = lambda obj, name, args, kwargs: worker.run(
            lambda: apply(obj, name, args, kwargs))
        runners["model-other"] = worker.run
    return runners


WHERE = st.sampled_from(["main", "sub"])

# --- Lock -----------------------------------------------------------------------------

LOCK_OPS = st.sampled_from([
    op("acquire", False),
    op("acquire", blocking=False),
    op("acquire", timeout=0),
    op("acquire", True, 0),
    op("acquire", False, 1),       # ValueError
    op("acquire", timeout=-2),     # ValueError
    op("release"),                 # RuntimeError when unlocked
    op("locked"),
])


@given(steps=st.lists(st.tuples(WHERE, LOCK_OPS), max_size=30))
def test_lock_matches_threading(shared_interp, steps):
    lock = xi.Lock()
    model = threading.Lock()
    check_sequence(model, lock, steps, make_runners(shared_interp))
    assert lock.locked() == model.locked()


# --- RLock ----------------------------------------------------------------------------

RLOCK_OPS = st.sampled_from([
    op("acquire", False),
    op("acquire", timeout=0),
    op("acquire", False, 1),       # ValueError
    op("acquire", timeout=-2),     # ValueError
    op("release"),                 # RuntimeError unless owned
    op("_is_owned"),
])


@given(steps=st.lists(st.tuples(st.sampled_from(["main", "main", "other"]), RLOCK_OPS),
                      max_size=30))
def test_rlock_matches_threading(shared_interp, worker, steps):
    r = xi.RLock()
    model = threading.RLock()
    runners = make_runners(shared_interp, worker)
    check_sequence(model, r, steps, runners)
    # the same number of levels is held, by the same thread
    for where in ("main", "other"):
        released = []
        for obj in (model, r):
            n = 0
            while n < 100:
                out = (apply(obj, "release") if where == "main"
                       else worker.run(lambda o=obj: apply(o, "release")))
                if out[0] != "ok":
                    assert out == ("RuntimeError",)
                    break
                n += 1
            released.append(n)
        assert released[0] == released[1], where


# --- Semaphore and BoundedSemaphore ---------------------------------------------------

SEM_OPS = st.one_of(
    st.sampled_from([
        op("acquire", False),
        op("acquire", timeout=0),
        op("acquire", timeout=-1),
        op("acquire", blocking=False, timeout=1),  # ValueError
        op("release"),
    ]),
    st.integers(-2, 3).map(lambda n: op("release", n)),
)


@pytest.mark.parametrize("bounded", [False, True], ids=["Semaphore", "BoundedSemaphore"])
@given(value=st.integers(0, 3), steps=st.lists(st.tuples(WHERE, SEM_OPS), max_size=30))
def test_semaphore_matches_threading(shared_interp, bounded, value, steps):
    if bounded:
        sem, model = xi.BoundedSemaphore(value), threading.BoundedSemaphore(value)
    else:
        sem, model = xi.Semaphore(value), threading.Semaphore(value)
    check_sequence(model, sem, steps, make_runners(shared_interp))
    left = [0, 0]
    for k, obj in enumerate((model, sem)):
        while obj.acquire(False):
            left[k] += 1
            assert left[k] < 1000
    assert left[0] == left[1]


# --- Event ----------------------------------------------------------------------------

EVENT_OPS = st.sampled_from([
    op("set"), op("clear"), op("is_set"), op("wait", 0), op("wait", -1),
    op("wait", timeout=0.0),
])


@given(steps=st.lists(st.tuples(WHERE, EVENT_OPS), max_size=30))
def test_event_matches_threading(shared_interp, steps):
    ev, model = xi.Event(), threading.Event()
    check_sequence(model, ev, steps, make_runners(shared_interp))
    assert ev.is_set() == model.is_set()


# --- Barrier --------------------------------------------------------------------------

BARRIER_OPS = st.sampled_from([
    op("parties"), op("n_waiting"), op("broken"), op("abort"), op("reset"),
    op("wait", 0), op("wait", -1), op("wait", timeout=0.0),
])


@given(parties=st.integers(1, 3), steps=st.lists(st.tuples(WHERE, BARRIER_OPS), max_size=25))
def test_barrier_matches_threading(shared_interp, parties, steps):
    calls = []
    q = xi.Queue()
    model = threading.Barrier(parties, action=lambda: calls.append(1))
    bar = xi.Barrier(parties, action=functools.partial(rf.put_current_interp_id, q))
    check_sequence(model, bar, steps, make_runners(shared_interp))
    assert (bar.broken, bar.n_waiting) == (model.broken, model.n_waiting)
    assert q.qsize() == len(calls)  # the action ran as often


# --- Condition ------------------------------------------------------------------------

COND_OPS = st.one_of(
    st.sampled_from([
        op("acquire", False), op("acquire", timeout=0), op("release"),
        op("notify"), op("notify_all"), op("wait", 0.001), op("wait", timeout=0.001),
        op("acquire", False, 1),   # ValueError
    ]),
    st.integers(0, 3).map(lambda n: op("notify", n)),
)


@pytest.mark.parametrize("lock", ["RLock", "Lock"])
@given(steps=st.lists(COND_OPS, max_size=25))
def test_condition_matches_threading(lock, steps):
    if lock == "Lock":
        cond, model = xi.Condition(xi.Lock()), threading.Condition(threading.Lock())
    else:
        cond, model = xi.Condition(), threading.Condition()
    check_sequence(model, cond, [("main", s) for s in steps], {"main": apply})
    while True:  # the same number of levels is held
        a, b = apply(model, "release"), apply(cond, "release")
        assert a == b
        if a[0] != "ok":
            break
