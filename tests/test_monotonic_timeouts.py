"""Timeouts are measured on the monotonic clock: a wall clock that jumps (set back by
an administrator or by NTP) neither stretches nor cuts a wait. The waits run in a
process where a preloaded library sets the wall clock back an hour at every reading."""
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import TESTS_DIR, _env

SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include <sys/time.h>
#include <time.h>

static long long back; /* seconds the wall clock has been set back so far */

static int (*real_clock_gettime)(clockid_t, struct timespec *);

int clock_gettime(clockid_t clock, struct timespec *ts)
{
    if (real_clock_gettime == NULL) {
        real_clock_gettime = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    }
    int rc = real_clock_gettime(clock, ts);
    if (rc == 0 && (clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE)) {
        back += 3600;
        ts->tv_sec -= back;
    }
    return rc;
}

int gettimeofday(struct timeval *tv, void *tz)
{
    struct timespec ts;
    (void)tz;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) {
        return -1;
    }
    tv->tv_sec = ts.tv_sec;
    tv->tv_usec = ts.tv_nsec / 1000;
    return 0;
}

time_t time(time_t *out)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (out != NULL) {
        *out = ts.tv_sec;
    }
    return ts.tv_sec;
}
"""

WAITS = """
import sys, threading, time
sys.path.insert(0, sys.argv[1])
import extrainterpreters as xi
import remote_funcs as rf

a = time.time(); b = time.time()
print("WALL_GOES_BACK", b < a - 1000)

def timed(name, fn, *args):
    t0 = time.monotonic()
    try:
        r = fn(*args)
    except Exception as e:
        r = type(e).__name__
    print(name, r, round(time.monotonic() - t0, 2), flush=True)

q = xi.Queue(1)
timed("GET", q.get, True, 0.3)
q.put(1)
timed("PUT", q.put, 2, True, 0.3)
q.get()
lock = xi.Lock()
lock.acquire()
timed("LOCK", lock.acquire, True, 0.3)
timed("EVENT", xi.Event().wait, 0.3)
with xi.Interpreter() as it:
    # the same waits made in an interpreter
    timed("REMOTE_GET", it.run, rf.queue_get, q, 0.3)
    timed("REMOTE_LOCK", it.run, rf.sync_acquire, lock, True, 0.3)
"""


@pytest.fixture(scope="module")
def shim(tmp_path_factory):
    d = tmp_path_factory.mktemp("wallclock")
    (d / "shim.c").write_text(SHIM)
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(d / "shim.so"), str(d / "shim.c"),
                    "-ldl"], check=True)
    return str(d / "shim.so")


def test_waits_ignore_a_wall_clock_set_back(shim):
    env = _env()
    # after the sanitizers' runtimes, when they are preloaded
    env["LD_PRELOAD"] = " ".join(p for p in (env.get("LD_PRELOAD", ""), shim) if p)
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(WAITS), TESTS_DIR],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    assert lines.pop("WALL_GOES_BACK") == "True"  # the shim works
    expected = {"GET": "QueueEmpty", "PUT": "QueueFull", "LOCK": "False", "EVENT": "False",
                "REMOTE_GET": "QueueEmpty", "REMOTE_LOCK": "False"}
    for name, outcome in expected.items():
        got, seconds = lines[name].split()
        assert got == outcome, (name, proc.stdout)
        # neither cut short nor stretched (generous: the machine may be slow)
        assert 0.25 <= float(seconds) < 20, (name, proc.stdout)
