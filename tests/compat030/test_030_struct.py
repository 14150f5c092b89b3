"""0.3.0's tests/test_struct.py: utils.StructBase, its structs over raw memory, an
internal (each test is listed in expected_failures.txt)."""


def _utils():
    import importlib

    return importlib.import_module("extrainterpreters.utils")


def _struct():
    utils = _utils()

    class Struct(utils.StructBase):
        data_offset = utils.Field(2)
        length = utils.Field(4)

    return Struct


def test_struct_size():
    assert _struct()._size == 6


def test_struct_works():
    s = _struct()._from_data(bytearray(6), 0)
    s.data_offset, s.length = 1000, 2_000_000
    assert (s.data_offset, s.length) == (1000, 2_000_000)


def test_struct_with_offset():
    s = _struct()._from_data(bytearray(16), 10)
    s.data_offset, s.length = 1000, 2_000_000
    assert (s.data_offset, s.length) == (1000, 2_000_000)


def test_struct_detach():
    s = _struct()._from_data(data := bytearray(16), 10)
    s._detach()
    assert data is not s._data and s._offset == 0


def test_struct_from_values():
    s = _struct()(data_offset=1000, length=2_000_000)
    assert (s.data_offset, s.length) == (1000, 2_000_000)


def test_struct_push_to():
    Struct = _struct()
    n = Struct(data_offset=1000, length=2_000_000)._push_to(bytearray(Struct._size), 0)
    assert (n.data_offset, n.length) == (1000, 2_000_000)


def test_struct_bytes():
    utils = _utils()

    class Struct(utils.StructBase):
        data_offset = utils.Field(2)

    assert Struct._from_data(bytearray(b"ZZ"))._bytes == b"ZZ"


def test_struct_doublefield():
    utils = _utils()

    class Struct(utils.StructBase):
        value = utils.DoubleField()

    assert Struct(value=1.25).value == 1.25
