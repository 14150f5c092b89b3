"""Large str arguments and results cross with one copy, made by the receiver.

An exact str whose storage takes XI_OOB_MIN (16 KiB) or more, at the top level of a
value or inside its tuples, lists and dict values down to three levels, travels out of
band: the sender neither encodes nor copies it, the receiver copies its storage once
into a new str of the same storage (ASCII, latin-1, UCS-2 or UCS-4)."""
import pickle

import pytest
from hypothesis import given, settings, strategies as st

import buffer_funcs as bf
import str_funcs as sf
import extrainterpreters as xi
from extrainterpreters import _xi
from extrainterpreters.executor import InterpreterPoolExecutor

KiB = 1 << 10
MiB = 1 << 20
OOB_MIN = 16 * KiB
KINDS = list(sf.CHARS)


def segments(value):
    """(out-of-band segments, bytes held in place) of the value's encoding."""
    size, pieces, segs, held = _xi._encode(value)
    return segs, held


def check_str(got, want):
    assert type(got) is str
    assert got == want
    assert sf.storage_of(got) == sf.storage_of(want)


@pytest.mark.parametrize("kind", KINDS)
def test_storage_is_what_the_kind_says(kind):
    s = sf.make(kind, OOB_MIN)
    assert len(s) * sf.storage_of(s)[1] == OOB_MIN


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("storage", [OOB_MIN - 4, OOB_MIN, 3 * MiB + 4])
def test_str_of_every_storage_crosses(interp, kind, storage):
    s = sf.make(kind, storage)
    segs, held = segments(s)
    if storage >= OOB_MIN:
        assert (segs, held) == (1, len(s) * sf.storage_of(s)[1])
    else:
        assert segs == 0
    assert interp.call(sf.length, s) == len(s)
    assert interp.call(sf.length, s=s) == len(s)
    check_str(interp.call(sf.identity, s), s)
    check_str(interp.call(sf.made, kind, storage), s)
    assert s == sf.make(kind, storage)  # the sender's str is as it was


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", ["tuple", "list", "dict"])
@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5])
def test_nested_str_crosses(interp, kind, shape, depth):
    s = sf.make(kind, 64 * KiB)
    value = sf.nest(s, shape, depth)
    segs, held = segments(value)
    # tuples are looked into, three levels deep; a list or dict is not (a copy of it
    # would arrive as another object than the original, which something else may hold):
    # the str is then pickled in the stream
    assert segs == (1 if shape == "tuple" and depth <= 3 else 0)
    back = interp.call(sf.identity, value)
    assert back == value
    assert sf.describe(back) == sf.describe(value)
    assert interp.call(sf.describe, value) == sf.describe(value)
    made = interp.call(sf.made, kind, 64 * KiB, shape, depth)
    assert made == value and sf.describe(made) == sf.describe(value)


def test_kwargs_values_cross(interp):
    a, b = sf.make("ucs2", 40 * KiB), sf.make("latin1", 40 * KiB)
    got = interp.call(sf.describe, {"x": [a]}, )
    assert got == sf.describe({"x": [a]})
    assert interp.call(dict, x=a, y=(b,), z=[{"w": a}]) == {"x": a, "y": (b,), "z": [{"w": a}]}


@pytest.mark.parametrize("kind", KINDS)
def test_queue_items(interp, kind):
    s = sf.make(kind, 256 * KiB)
    q = xi.Queue()
    for item in (s, [s], (1, {"k": s})):
        q.put(item)
        assert interp.call(sf.describe, q.get()) == sf.describe(item)
        interp.call(q.put, item)
        got = q.get()
        assert got == item and sf.describe(got) == sf.describe(item)


def test_executor_map_items_and_results():
    strs = [sf.make(kind, 48 * KiB + 4 * i) for i, kind in enumerate(KINDS * 2)]
    with InterpreterPoolExecutor(max_workers=2) as pool:
        assert list(pool.map(sf.length, strs)) == [len(s) for s in strs]
        back = list(pool.map(sf.identity, strs))
        assert back == strs and all(type(b) is str for b in back)
        made = list(pool.map(sf.made, KINDS, [48 * KiB] * len(KINDS)))
        assert made == [sf.make(k, 48 * KiB) for k in KINDS]


def test_subclass_pickles_as_itself(interp):
    s = sf.MyStr(sf.make("ucs2", 64 * KiB))
    assert segments(s)[0] == 0
    assert segments([s])[0] == 0
    ok, tag, plain = interp.call(sf.subclass_back, s)
    assert ok and tag == "mine" and plain == str(s)
    back = interp.call(sf.identity, [s])
    assert type(back[0]) is sf.MyStr and back[0] == s


def test_the_same_list_twice_is_one_object(interp):
    a = [sf.make("ucs4", 64 * KiB)]
    assert interp.call(sf.aliasing, a, a) == (True, True)
    back = interp.call(sf.identity, (a, a))
    assert back[0] is back[1] and back[0] == a
    d = {"k": sf.make("ascii", 64 * KiB)}
    back = interp.call(sf.identity, [d, (d,), {"x": d}])
    assert back[0] is back[1][0] is back[2]["x"]


def test_a_list_held_elsewhere_in_the_value_stays_one_object(interp):
    # the list is held at the top and by an object (or deeper than three levels): the
    # receiver gets one list, as pickle gives
    lst = [sf.make("ascii", 64 * KiB)]
    for value in ((lst, bf.Holder(lst)), ([[lst]], lst), (((((lst,),),),), lst)):
        back = interp.call(sf.identity, value)
        first = back[0]
        while not (isinstance(first, list) and first and isinstance(first[0], str)):
            first = first[0]
        second = back[1].data if isinstance(back[1], bf.Holder) else back[1]
        assert first is second


def test_a_cycle_through_lists_and_tuples_crosses_intact(interp):
    a, big = [], bytes(64 * KiB)
    d = (big, a)
    c = [d]
    b = (c,)
    a.append(b)
    back = interp.call(sf.identity, a)
    assert back[0][0][0][1] is back and back[0][0][0][0] == big


def test_the_same_str_twice(interp):
    s = sf.make("latin1", 64 * KiB)
    assert segments((s, s))[0] == 2
    back = interp.call(sf.identity, (s, [s]))
    assert back == (s, [s])


def test_the_same_bytearray_twice_stays_one_object(interp):
    ba = bytearray(64 * KiB)
    back = interp.call(sf.identity, [ba, (ba,)])
    assert back[0] is back[1][0]
    assert interp.call(sf.same, ba, ba)


@pytest.mark.parametrize("depth", [0, 1, 2, 3])
def test_self_containing_list_crosses_intact(interp, depth):
    lst = [sf.make("ucs2", 64 * KiB)]
    lst.append(lst)
    value = sf.nest(lst, "tuple", depth)
    back = interp.call(sf.identity, value)
    inner = back
    for _ in range(depth):
        inner = inner[0]
    assert inner[1] is inner and inner[0] == lst[0]
    is_self, first = interp.call(sf.self_contained, lst)
    assert is_self and first == lst[0]


def test_containers_changed_during_substitution(interp):
    s = sf.make("ucs2", 64 * KiB)
    for outer in ([{sf.Key(): s}, s, [s]], [s, {sf.Key(): s}, s, [s]], (s, {sf.Key(): s}, [s])):
        sf.TARGETS[:] = [o for o in outer if type(o) is list] + ([outer] if type(outer) is list else [])
        try:
            back = interp.call(sf.identity, outer)
        finally:
            sf.TARGETS.clear()
        assert type(back) is type(outer)
    inner = {sf.Key(): s}
    kwargs = {"a": inner, "b": [s]}
    sf.TARGETS[:] = [kwargs["b"], inner]
    try:
        back = interp.call(dict, **kwargs)
    finally:
        sf.TARGETS.clear()
    assert set(back) == {"a", "b"}


def test_export_never_reaches_python_code(interp):
    assert not hasattr(_xi, "_StrExport")
    s = sf.make("ucs2", 64 * KiB)
    copy = "".join([s])
    # code run while the value is pickled finds no export and no PickleBuffer over it
    found = interp.call(sf.identity, (s, [s], sf.Spy()))[2]
    assert found == []
    assert s == copy
    back = interp.call(sf.identity, s)
    assert type(back) is str and not isinstance(back, (bytes, memoryview))
    with pytest.raises(TypeError):
        memoryview(back)


def test_inside_a_subinterpreter(interp):
    out = interp.call(sf.inside_checks)
    assert [k for k, _, _ in out] == KINDS
    for kind, segs, held in out:
        assert segs == 1 and held == 64 * KiB


def test_pickle_of_the_same_values_agrees():
    # what crosses is what pickle would rebuild
    s = sf.make("ucs4", 64 * KiB)
    value = (s, [s, {"k": (s,)}])
    assert pickle.loads(pickle.dumps(value, 5)) == value


texts = st.text(alphabet=st.characters(blacklist_categories=()), min_size=1, max_size=8)


@st.composite
def big_strs(draw):
    """A str of 16 KiB of storage or about it: a short random text repeated."""
    t = draw(texts)
    width = sf.storage_of(t)[1]
    n = draw(st.sampled_from([OOB_MIN // width - 1, OOB_MIN // width, 3 * OOB_MIN // width]))
    return (t * (n // len(t) + 1))[:n]


values = st.recursive(
    st.one_of(big_strs(), texts, st.integers(), st.none()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=2), inner, max_size=3),
    ),
    max_leaves=6,
)


@settings(max_examples=60, deadline=None)
@given(values)
def test_hypothesis_values_cross(shared_interp, value):
    back = shared_interp.call(sf.identity, value)
    assert back == value
    assert sf.describe(back) == sf.describe(value)
    assert shared_interp.call(sf.describe, value) == sf.describe(value)
