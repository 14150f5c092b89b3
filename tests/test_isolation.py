"""Each interpreter has its own __main__, modules, sys.modules and builtins."""
import importlib.util
import sys

import pytest

import extrainterpreters as xi
import remote_funcs as rf

# stdlib modules that this test run is unlikely to have imported anywhere
CANDIDATES = ["colorsys", "wave", "graphlib", "netrc", "tabnanny", "sched",
              "plistlib", "fractions", "statistics", "shlex"]


@pytest.fixture
def two():
    a = xi.Interpreter().start()
    b = xi.Interpreter().start()
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def unimported_module(*interps):
    for name in CANDIDATES:
        if name in sys.modules or importlib.util.find_spec(name) is None:
            continue
        if any(it.run(rf.is_imported, name) for it in interps):
            continue
        return name
    pytest.fail("no unimported stdlib module left to try")


def test_own_main_namespace(two):
    import __main__
    a, b = two
    a.exec("only_in_a = 'a'")
    b.exec("only_in_b = 'b'")
    assert a.run(rf.get_main_attr, "only_in_a") == "a"
    assert a.run(rf.get_main_attr, "only_in_b") == rf.MISSING
    assert b.run(rf.get_main_attr, "only_in_a") == rf.MISSING
    assert b.run(rf.get_main_attr, "only_in_b") == "b"
    assert not hasattr(__main__, "only_in_a") and not hasattr(__main__, "only_in_b")


def test_same_name_different_values(two):
    a, b = two
    a.prepare_main(shared_name=1)
    b.prepare_main(shared_name=2)
    a.exec("shared_name += 10")
    assert a.run(rf.get_main_attr, "shared_name") == 11
    assert b.run(rf.get_main_attr, "shared_name") == 2


def test_main_namespace_is_fresh_in_new_interpreter():
    with xi.Interpreter() as a:
        a.exec("left_behind = 1")
    with xi.Interpreter() as b:
        assert b.run(rf.get_main_attr, "left_behind") == rf.MISSING


def test_module_imported_in_one_is_not_in_another(two):
    a, b = two
    name = unimported_module(a, b)
    a.exec(f"import {name}")
    assert a.run(rf.is_imported, name) is True
    assert b.run(rf.is_imported, name) is False
    assert name not in sys.modules


def test_module_imported_in_main_is_not_in_subinterpreter(interp):
    name = unimported_module(interp)
    try:
        __import__(name)
        assert interp.run(rf.is_imported, name) is False
    finally:
        sys.modules.pop(name, None)


def test_module_objects_are_separate(two):
    a, b = two
    a.run(rf.set_module_attr, "json", "XI_MARK", "set in a")
    assert a.run(rf.get_module_attr, "json", "XI_MARK") == "set in a"
    assert b.run(rf.get_module_attr, "json", "XI_MARK") == rf.MISSING
    import json
    assert not hasattr(json, "XI_MARK")


def test_module_globals_are_separate(two):
    a, b = two
    assert a.run(rf.bump_counter) == 1
    assert a.run(rf.bump_counter) == 2
    assert b.run(rf.get_counter) == 0
    assert rf.COUNTER == 0


def test_sys_modules_separate(two):
    a, b = two
    a.exec("import sys; sys.modules['xi_fake_module'] = sys")
    assert a.run(rf.is_imported, "xi_fake_module") is True
    assert b.run(rf.is_imported, "xi_fake_module") is False
    assert "xi_fake_module" not in sys.modules


def test_sys_path_changes_stay_inside(two):
    a, b = two
    a.exec("import sys; sys.path.append('/xi/nowhere')")
    assert "/xi/nowhere" in a.run(rf.sys_path)
    assert "/xi/nowhere" not in b.run(rf.sys_path)
    assert "/xi/nowhere" not in sys.path


def test_builtins_separate(two):
    a, b = two
    a.exec("import builtins; builtins.xi_builtin_mark = 1")
    assert a.run(rf.get_module_attr, "builtins", "xi_builtin_mark") == 1
    assert b.run(rf.get_module_attr, "builtins", "xi_builtin_mark") == rf.MISSING
    import builtins
    assert not hasattr(builtins, "xi_builtin_mark")


def test_current_id_per_interpreter(two):
    a, b = two
    assert a.run(rf.current_id) == a.id
    assert b.run(rf.current_id) == b.id
    assert a.id != b.id != xi.get_current().id
