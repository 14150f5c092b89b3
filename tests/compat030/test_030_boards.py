"""0.3.0's tests/test_boards.py: its memory boards, struct locks and RemoteArray, all
internals (each listed in expected_failures.txt): here each test goes as far as the
first internal it needs."""
import pickle

import pytest

import extrainterpreters as ei


def _internal(name):
    import importlib

    return importlib.import_module(f"extrainterpreters.{name}")


def test_lockableboard_single_item_back_and_forth(lowlevel):
    board = _internal("memoryboard").LockableBoard()
    index, _ = board.new_item(obj := {"a": 1})
    index, new_obj = pickle.loads(pickle.dumps(board)).fetch_item()
    assert new_obj == obj and new_obj is not obj


def test_lockableboard_to_other_interpreter(lowlevel):
    board = _internal("memoryboard").LockableBoard()
    with ei.Interpreter() as interp:
        board.new_item((1, 2))
        interp.run_string(f"board = pickle.loads({pickle.dumps(board)})\n"
                          f"assert board.fetch_item()[1] == (1, 2)\nboard.new_item((3, 4))")
        assert board.fetch_item()[1] == (3, 4)


@pytest.fixture
def lockable():
    utils = _internal("utils")

    class LockableStruct(utils.StructBase):
        lock = utils.Field(1)
        value = utils.Field(8)

    return LockableStruct(lock=0, value=0)


def test_structlock_works(lockable):
    lock = _internal("memoryboard")._CrossInterpreterStructLock(lockable)
    with lock:
        assert lockable.lock == 1
    assert lockable.lock == 0


def test_structlock_reentrant(lockable):
    lock = _internal("memoryboard")._CrossInterpreterStructLock(lockable)
    with lock, lock:
        assert lockable.lock == 1
    assert lockable.lock == 0


def test_structlock_locks(lockable):
    memoryboard = _internal("memoryboard")
    lock = memoryboard._CrossInterpreterStructLock(lockable)
    lock2 = memoryboard._CrossInterpreterStructLock(lockable, timeout=None)
    with lock:
        with pytest.raises(RuntimeError):
            with lock2:
                pass


@pytest.mark.parametrize("set_timeout", [None, 0.0001])
def test_structlock_timeout_is_restored_on_acquire_fail(lockable, set_timeout):
    memoryboard = _internal("memoryboard")
    lock = memoryboard._CrossInterpreterStructLock(lockable, timeout=1)
    lock2 = memoryboard._CrossInterpreterStructLock(lockable, timeout=0.002)
    with lock:
        with pytest.raises((ei.ResourceBusyError, TimeoutError)):
            with lock2.timeout(set_timeout):
                pass
    assert lock2._timeout == lock2._original_timeout


def test_remotearray_base():
    remote_array = _internal("remote_array")
    buffer = remote_array.RemoteArray(size=2048, ttl=0.05)
    assert buffer.header.state == remote_array.RemoteState.building


def test_remotearray_not_deleted_before_ttl_expires():
    remote_array = _internal("remote_array")
    buffer = remote_array.RemoteArray(size=2048, ttl=0.1)
    assert buffer.header.state == remote_array.RemoteState.building


def test_memoryboard_fetch_from_gone_interpreter_doesnot_crash(lowlevel):
    board = _internal("memoryboard").LockableBoard()
    with ei.Interpreter() as interp:
        interp.run_string(f"board = pickle.loads({pickle.dumps(board)})\n"
                          f"board.new_item((1, 2))")
        assert board.fetch_item()[1] == (1, 2)
    assert board.fetch_item() is None
