"""0.3.0's tests/test_low_level.py: its C module _memoryboard, which gave the raw address
of an object's buffer and made memoryviews from raw addresses; an internal (each test
is listed in expected_failures.txt). SharedBuffer is this library's shared memory."""
import importlib


def _memoryboard():
    return importlib.import_module("extrainterpreters._memoryboard")


def test_get_address_works():
    address, size = _memoryboard().address_and_size(bytes(b"\xaa" * 1000))
    assert size == 1000


def test_remote_memory_works():
    mb = _memoryboard()
    obj = bytearray(b"\xaa" * 1000)
    board = mb.remote_memory(*mb.address_and_size(obj))
    board[0] = 42
    assert obj[0] == 42


def test_remote_memory_works_across_interpreters():
    mb = _memoryboard()
    obj = bytearray(b"\xaa" * 1000)
    assert mb.address_and_size(obj)
