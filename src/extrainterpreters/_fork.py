"""os.fork() beside interpreters (docs/reliability.md, "Fork").

CPython's own code in a fork() child deletes the subinterpreters that the child
inherited, and crashes doing so (3.12 to 3.15). So before a fork the interpreters
of idle pool workers end (the workers start new ones for their next task), the fork
waits for interpreters being created or ended, and interpreters made meanwhile wait for
the fork. An interpreter still open then (one that runs code, or one that the program
holds) stays open in the parent, a RuntimeWarning says so, and the child exits at once
with status 70 (the C core, before CPython would crash it). In a child, pools start
workers of their own.
"""
import os
import warnings

from . import _xi

__all__ = ["add"]

# (before, after_in_parent, after_in_child): the hooks of other modules; before()
# returns what the two others are given.
_hooks = []
# what each before() returned, for the fork under way
_state = []

EXIT_STATUS = 70


def add(before, after_in_parent, after_in_child):
    _hooks.append((before, after_in_parent, after_in_child))


def _before():
    _state.clear()
    for before, _, _ in _hooks:
        _state.append(before())
    busy, idle = _xi._fork_prepare()
    if busy or idle:
        if busy:
            what = (f"fork() while extrainterpreters interpreters run code: "
                    f"interpreter(s) {', '.join(map(str, busy + idle))} still open, "
                    f"{', '.join(map(str, busy))} running a call")
        else:
            what = (f"fork() while extrainterpreters interpreters are open: "
                    f"interpreter(s) {', '.join(map(str, idle))}")
        warnings.warn(
            f"{what}. CPython cannot remove them from the child, which exits at once "
            f"with status {EXIT_STATUS}; they go on in the parent. Close them before "
            f"forking, or use multiprocessing's forkserver or spawn context.",
            RuntimeWarning, stacklevel=2)


def _after_in_parent():
    _xi._fork_done()
    state = list(_state)
    _state.clear()
    for (_, after, _), value in zip(_hooks, state):
        after(value)


def _after_in_child():
    state = list(_state)
    _state.clear()
    for (_, _, after), value in zip(_hooks, state):
        after(value)


if _xi.current_id() == _xi.main_id():
    os.register_at_fork(before=_before, after_in_parent=_after_in_parent,
                        after_in_child=_after_in_child)
