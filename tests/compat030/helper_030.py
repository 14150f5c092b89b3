"""Functions and a class that the 0.3.0 tests run in other interpreters (0.3.0's
tests/helper_01.py had the same): importable by name from this folder."""
import time

time_res = 0.02


def to_run_remotely():
    time.sleep(time_res * 2)
    return 42


def big_return_payload():
    # more than 0.3.0's buffer held for a result
    return b"\x00" * 2_000_001


class RemoteClass:
    @classmethod
    def to_run_remotely_2(cls):
        return 42

    def __call__(self):
        return 23
