"""Functions that the interrupt tests run in interpreters (importable there, since
conftest puts tests/ on sys.path). Busy loops keep their try/except (and a `with`) in a
caller frame: on CPython 3.13.0 and 3.14 the exception table of a function does not cover
the backward jump of some loops (3.13.0: `for` and `while` with a condition; 3.14: `for`
and `while True`), so an asynchronous exception landing there skips the function's own
handlers, `with` exits included (see also remote_funcs.busy)."""
import os
import time

import remote_funcs as rf


def spin_until(deadline):
    n = 0
    while True:
        n += 1
        if n % 4096 == 0 and time.monotonic() > deadline:
            return n


def touch(path):
    if path is not None:
        open(path, "w").close()


def mark(path, n):
    """Writes ``n`` to ``path`` (replacing it at once): ready for interrupt n + 1."""
    if path is not None:
        with open(path + ".tmp", "w") as f:
            f.write(str(n))
        os.replace(path + ".tmp", path)


def count_interrupts(want, limit, started=None):
    """Spins, catching KeyboardInterrupt and going on, until it has caught ``want`` of
    them or ``limit`` seconds have passed; returns how many it caught. ``started`` (a
    path) is written inside the ``try``, once an interrupt can be caught there (one that
    came earlier would be raised where no ``except`` of this function catches it), and
    again each time around, holding how many were caught so far (see mark)."""
    seen = 0
    end = time.monotonic() + limit
    while seen < want and time.monotonic() < end:
        try:
            mark(started, seen)
            spin_until(end)
        except KeyboardInterrupt:
            seen += 1
    return seen


def count_interrupts_in_waits(q, want, limit, started=None):
    """Like count_interrupts, but blocked in ``q.get()`` (nothing is ever put)."""
    seen = 0
    end = time.monotonic() + limit
    while seen < want and time.monotonic() < end:
        try:
            mark(started, seen)
            q.get(timeout=max(0.0, end - time.monotonic()))
        except KeyboardInterrupt:
            seen += 1
        except Exception:
            pass
    return seen


def count_after_touching(path, want, limit):
    """count_interrupts, creating ``path`` once it is ready; writes the count to
    path + ".count"."""
    seen = count_interrupts(want, limit, path)
    with open(path + ".count", "w") as f:
        f.write(str(seen))
    return seen


def call_count_in(interp_id, path, limit):
    """Runs in the main interpreter (or another one): count_after_touching(path, 1,
    limit) in interp_id."""
    import extrainterpreters as xi

    (interp,) = [i for i in xi.list_all() if i.id == interp_id]
    return interp.run(count_after_touching, path, 1, limit)


def gil_held_then_nested_into_itself(path, n, limit):
    """Runs in X: creates ``path``, holds X's GIL in a builtin's C loop, then (running
    no code of its own in between) calls into X itself, where count_interrupts(1, limit)
    runs. Returns ([the nested call's count], whether the outer call got a
    KeyboardInterrupt); the count is missing when the nested call's interrupt came at
    its first bytecode, before its ``try``, and went out to the outer call."""
    import functools
    import operator

    import extrainterpreters as xi

    # the C core's handle: its call() is C, so no bytecode of the outer call runs
    # between the C loop and the nested call (Interpreter.run is Python)
    here = xi.get_current()._open()
    touch(path)
    values = []
    try:
        # list.extend is C too: the values are stored before the outer call's own
        # interrupt is raised
        values.extend(map(operator.call, [functools.partial(sum, range(n)),
                                          functools.partial(here.call, count_interrupts,
                                                            1, limit)]))
    except KeyboardInterrupt:
        return values[1:], True
    return values[1:], False


def nested_through(interp_id, via_id, path, limit):
    """Runs in X: calls interpreter ``via_id`` (None: the main one), which calls back
    into X, where count_after_touching(path, 1, limit) waits for one interrupt; then
    spins 1.5 s more. Returns the KeyboardInterrupts seen, in order: "first" for the
    nested call's, "second" for each that this outer call caught."""
    import extrainterpreters as xi

    seen = []
    if via_id is None:
        via = xi.get_main()
    else:
        (via,) = [i for i in xi.list_all() if i.id == via_id]
    try:
        via.run(call_count_in, interp_id, path, limit)
    except KeyboardInterrupt:
        seen.append("second")
    end = time.monotonic() + 1.5
    while time.monotonic() < end:
        try:
            spin_until(end)
        except KeyboardInterrupt:
            seen.append("second")
    with open(path + ".count") as f:
        if f.read() == "1":
            seen.insert(0, "first")
    return seen


def nested_through_main(interp_id, path, limit):
    """Runs in X: calls the main interpreter, which calls back into X and waits there
    for one interrupt. Returns whether this outer call got KeyboardInterrupt too (at
    the latest 10 s after the inner one returned)."""
    import extrainterpreters as xi

    try:
        xi.get_main().run(call_count_in, interp_id, path, limit)
        spin_until(time.monotonic() + 10)
    except KeyboardInterrupt:
        return True
    return False


class EncodedSlowly:
    """A result that takes 1 s to encode, after saying so (the call is masked
    meanwhile: an interrupt waits as pending)."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        touch(self.path)
        time.sleep(1.0)
        return (str, ("encoded",))


def call_encoded_slowly_in(interp_id, path):
    """Runs in the main interpreter: calls interp_id, whose result takes 1 s to
    encode."""
    import extrainterpreters as xi

    (interp,) = [i for i in xi.list_all() if i.id == interp_id]
    return interp.run(EncodedSlowly, path)

def nested_encoded_slowly(interp_id, path, limit):
    """Runs in X: calls the main interpreter, which calls back into X, whose result
    X encodes slowly; then spins for `limit` s. Returns whether this call got
    KeyboardInterrupt."""
    import extrainterpreters as xi

    try:
        xi.get_main().run(call_encoded_slowly_in, interp_id, path)
        spin_until(time.monotonic() + limit)
    except KeyboardInterrupt:
        return True
    return False


def _refuse_to_rebuild():
    raise ValueError("this item is not rebuilt")


class Unbuildable:
    """A Queue item whose rebuild raises ValueError wherever it is got."""

    def __reduce__(self):
        return (_refuse_to_rebuild, ())


def get_unbuildable_interrupted(q, path, limit):
    """Gets an Unbuildable item from q, the library's handling of the failed rebuild
    (_errors.learn_from_failed_rebuild) made to take 1 s after touching path. Returns
    "interrupted" when the call got KeyboardInterrupt (an interrupt() sent meanwhile),
    "lost" when it did not within `limit` s."""
    import extrainterpreters._errors as errors

    learn = errors.learn_from_failed_rebuild

    def slow_learn(exc):
        touch(path)
        spin_until(time.monotonic() + 1.0)
        learn(exc)

    errors.learn_from_failed_rebuild = slow_learn
    try:
        try:
            q.get(timeout=limit)
        except ValueError:
            errors.learn_from_failed_rebuild = learn
            spin_until(time.monotonic() + limit)
            return "lost"
    except KeyboardInterrupt:
        return "interrupted"
    finally:
        errors.learn_from_failed_rebuild = learn
    return "got"


# --- the stress scenario: workers that keep going through interrupts -----------------
#
# An asynchronous KeyboardInterrupt can land on any bytecode of a worker, also right
# after q.get() returned and before the item was recorded. So each step is recorded
# in this module's globals (one copy per interpreter, which survives an interrupt that
# ends a call) before and after it: a get that started and was not recorded as done
# may have taken an item that is now lost in a frame; a put that started and was not
# recorded as done may or may not have put its item.

LEDGER = {}


def ledger(wid):
    return LEDGER.setdefault(wid, {
        "put_tried": [], "put_ok": [], "got": [], "gets_started": [0], "gets_done": [0],
        "errors": [], "rounds": [0], "calls": [0], "caught": [0],
    })


def _pause():
    for _ in range(20):
        pass


def _step(q, lock, cond, buf, wid, seq, led):
    item = wid * 10_000_000 + seq
    led["put_tried"].append(item)
    try:
        q.put(item, timeout=0.2)
        led["put_ok"].append(item)
    except Exception:  # QueueFull
        pass
    led["gets_started"][0] += 1
    try:
        led["got"].append(q.get(timeout=0.2))
        led["gets_done"][0] += 1
    except Exception:  # QueueEmpty
        led["gets_done"][0] += 1
    # the Lock: mutual exclusion over a stretch of the SharedBuffer
    mark = bytes([wid % 251 + 1]) * 64
    with lock:
        view = memoryview(buf)
        view[:64] = mark
        _pause()  # (a loop of its own frame: see the module's docstring)
        if bytes(view[:64]) != mark:
            led["errors"].append("the Lock let two holders in")
        view.release()
    # the Condition: notify and short waits
    with cond:
        if seq % 2:
            cond.notify_all()
        else:
            cond.wait(0.005)
    # an import of the worker's own (importlib takes the interpreter's import locks)
    if seq % 8 == 0:
        _reimport("colorsys")
    led["rounds"][0] += 1


def _reimport(name):
    import sys

    sys.modules.pop(name, None)
    try:
        __import__(name)
    except KeyError:
        pass  # another worker of the interpreter popped it while this one loaded it


def _hammer_loop(q, lock, cond, buf, wid, end, led):
    seq = len(led["put_tried"])
    while time.monotonic() < end:
        try:
            _step(q, lock, cond, buf, wid, seq, led)
        except KeyboardInterrupt:
            led["caught"][0] += 1
        seq = len(led["put_tried"])


def hammer(q, lock, cond, buf, wid, end_in):
    """Runs steps for ``end_in`` seconds, through interrupts; an interrupt that lands
    outside a step ends the call, and the caller calls again."""
    led = ledger(wid)
    led["calls"][0] += 1
    _hammer_loop(q, lock, cond, buf, wid, time.monotonic() + end_in, led)
    return "done"


def take_ledger(wid):
    return LEDGER.pop(wid, None)


def import_fresh_module():
    """Imports a module not imported yet: no import lock was left taken."""
    import importlib
    import sys

    for name in ("colorsys", "graphlib", "sched", "fractions"):
        if name not in sys.modules:
            break
    importlib.import_module(name)
    return name in sys.modules


def spin_marking_interrupt(marker, limit):
    """Creates marker + ".started", then spins for ``limit`` seconds; creates
    ``marker`` if a KeyboardInterrupt ends it."""
    try:
        # (inside the try: an interrupt may come as soon as the file exists)
        open(marker + ".started", "w").close()
        return spin_until(time.monotonic() + limit)
    except KeyboardInterrupt:
        open(marker, "w").close()
        raise


def big_result_after_interrupt(started, size):
    """Touches ``started``, spins until interrupted (at most 30 s), then returns
    ``size`` bytes (a result large enough to stay borrowed until read)."""
    try:
        open(started, "w").close()
        spin_until(time.monotonic() + 30)
    except KeyboardInterrupt:
        pass
    return b"x" * size


def dump_frames():
    """The innermost frames of every thread of this interpreter (for a stuck test)."""
    import sys
    import traceback

    return "\n".join("".join(traceback.format_stack(f)[-5:])
                     for f in sys._current_frames().values())


def with_lock_until(lock, end, started=None):
    """``with lock:`` over and over until the monotonic time ``end``."""
    touch(started)
    while time.monotonic() < end:
        with lock:
            pass


def loop_time(n=500_000):
    """Seconds a tight loop of n turns takes (each turn checks the eval breaker)."""
    t = time.perf_counter()
    for _ in range(n):
        pass
    return time.perf_counter() - t


# --- interrupts and the import system's locks -----------------------------------------
#
# An interrupt is never raised inside importlib (it holds locks across bytecodes), nor
# inside a module's top-level code while it is imported: it waits until the import
# has returned. It may be raised as an import begins, at the first instruction of
# importlib's entry function (before it did anything): an interrupt armed while the
# thread waited for the GIL is raised at the thread's next eval-breaker check, which
# CPython 3.13+ makes at the next function entry or backward jump, possibly the
# importlib function its next bytecode calls. That is the import statement raising
# KeyboardInterrupt before it imports anything.

GUARDED = ("_frozen_importlib", "_frozen_importlib_external", "importlib._bootstrap",
           "importlib._bootstrap_external", "zipimport")
SEEN = {"inside": 0, "entry": 0, "outside": 0}
WHERE = []  # the guarded frames of each interrupt that landed inside


def _first_instruction(code):
    import dis

    return next(i.offset for i in dis.get_instructions(code) if i.opname == "RESUME")


def _where_landed(exc, prefix):
    """"inside" (importlib or a module's top-level code while imported), "entry" (the
    first instruction of an importlib function called by the task's own code, the only
    guarded frame), or "outside"."""
    tb, guarded = exc.__traceback__, []
    while tb is not None:
        name = tb.tb_frame.f_globals.get("__name__", "")
        if name in GUARDED or (prefix and name.startswith(prefix)):
            guarded.append(tb)
        last, tb = tb, tb.tb_next
    if not guarded:
        return "outside"
    if (len(guarded) == 1 and guarded[0] is last and last.tb_frame.f_globals["__name__"]
            in GUARDED and last.tb_lasti <= _first_instruction(last.tb_frame.f_code)):
        return "entry"
    WHERE.append([(t.tb_frame.f_code.co_qualname, t.tb_lineno, t.tb_lasti) for t in guarded])
    return "inside"


def write_modules(directory, prefix, n):
    """Writes modules prefix0..prefix<n-1>: each imports a module of its own, then
    spins 0.2 ms, at its top level."""
    import os

    for i in range(n):
        with open(os.path.join(directory, f"{prefix}{i}.py"), "w") as f:
            f.write(f"import {prefix}{i}_dep\n"
                    "import time\n"
                    "_end = time.perf_counter() + 0.0002\n"
                    "while time.perf_counter() < _end:\n"
                    "    pass\n")
        with open(os.path.join(directory, f"{prefix}{i}_dep.py"), "w") as f:
            f.write("X = 1\n")


def _import_one(name, prefix):
    try:
        __import__(name)
    except KeyboardInterrupt as e:
        SEEN[_where_landed(e, prefix)] += 1


def import_through_interrupts(directory, prefix, n, started):
    """Imports prefix0..prefix<n-1> (those not imported yet: a call that an interrupt
    ended is made again), catching the interrupts. Returns (landed inside an import
    or importlib, landed at an importlib function's first instruction, landed
    outside)."""
    import sys

    if directory not in sys.path:
        sys.path.insert(0, directory)
    touch(started)
    for i in range(n):
        if f"{prefix}{i}" not in sys.modules:
            _import_one(f"{prefix}{i}", prefix)
    return SEEN["inside"], SEEN["entry"], SEEN["outside"]

