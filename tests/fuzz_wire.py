"""The fuzz driver of test_fuzz.py (run as a script, in a process with capped memory):
feeds the wire decoder and the handle rebuild arbitrary bytes and mutations of real
streams and handle pickles for SECONDS seconds, and prints how many inputs it fed.
Any outcome but a crash is fine: a value, or an Exception.

    python fuzz_wire.py SECONDS SEED [MEMORY_CAP]

MEMORY_CAP (bytes, 0: none) limits the address space, so that a stream asking for many
GiB gets MemoryError.
"""
import marshal
import pickle
import random
import resource
import sys
import time

import extrainterpreters as xi
import remote_funcs as rf
from extrainterpreters import _xi


def decode(data, marshalled=False, exception=False, fdata=None, fname=False):
    try:
        if fdata is None:
            return _xi._decode_wire(data, marshalled, exception)
        return _xi._decode_wire(data, marshalled, exception, fdata, fname)
    except Exception as e:
        return e


def corpus():
    """Real streams of every form the encoder makes, and pickles of live handles."""
    values = [None, True, 7, 2**100, 1.5, "text", "é" * 40, b"b" * 10, (1, "a", [2.5]),
              {"k": [None, (1, 2)]}, [1] * 40]
    objects = [rf.Point(1, 2), {1, 2, 3}, frozenset({"a"}), bytearray(b"xyz"),
               ValueError("boom"), rf.CustomErrorWithFields(3, "t"), range(5),
               complex(1, 2), [rf.Point(0, 0)] * 3]
    out = [("marshal", marshal.dumps(v)) for v in values]
    out += [("pickle", pickle.dumps(v, 5)) for v in values + objects]
    desc = _xi._describe_exception(rf.CustomErrorWithFields(1, "x"))
    out.append(("exception", pickle.dumps(desc, 5)))
    out.append(("fname", marshal.dumps(("remote_funcs", "Point.origin"))))
    out.append(("fpickle", pickle.dumps(rf.add, 5)))
    handles = [xi.Queue(), xi.SharedBuffer(16), xi.Lock(), xi.RLock(), xi.Semaphore(2),
               xi.BoundedSemaphore(1), xi.Event(), xi.Condition(), xi.Barrier(2)]
    out += [("handle", pickle.dumps(h, p)) for h in handles for p in (2, 5)]
    return out, handles


def mutate(rng, data):
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(4)
        if op == 0 and b:
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif op == 1:
            at = rng.randrange(len(b) + 1)
            b[at:at] = rng.randbytes(rng.randint(1, 8))
        elif op == 2 and b:
            at = rng.randrange(len(b))
            del b[at:at + rng.randint(1, 8)]
        elif b:
            b[rng.randrange(len(b))] = rng.choice([0, 0x7F, 0x80, 0xFF])
    return bytes(b)


CALL_PAYLOAD = marshal.dumps(((1,), None))


def feed(form, data):
    if form == "marshal":
        decode(data, marshalled=True)
        decode(data, marshalled=True, fdata=marshal.dumps(("builtins", "len")), fname=True)
    elif form == "pickle":
        decode(data)
    elif form == "exception":
        assert isinstance(decode(data, exception=True), BaseException)
    elif form == "fname":
        decode(CALL_PAYLOAD, marshalled=True, fdata=data, fname=True)
    elif form == "fpickle":
        decode(CALL_PAYLOAD, marshalled=True, fdata=data, fname=False)
    else:  # a handle pickle: the same object, another live one, or an exception
        try:
            pickle.loads(data)
        except Exception:
            pass


def main(seconds, seed):
    rng = random.Random(seed)
    seeds, keep = corpus()
    forms = sorted({f for f, _ in seeds})
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        if rng.random() < 0.2:  # arbitrary bytes, in any form
            feed(rng.choice(forms), rng.randbytes(rng.randint(0, 64)))
        else:
            form, data = rng.choice(seeds)
            feed(form, mutate(rng, data))
        n += 1
    print("FED", n)


if __name__ == "__main__":
    cap = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    if cap:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    main(float(sys.argv[1]), int(sys.argv[2]))
