"""sitecustomize.py of the sanitizer venv (.venv-asan-3.X) made by `make test-asan`.

With ASan and UBSan together, GCC's UBSan runtime ignores log_path in
UBSAN_OPTIONS and writes its reports to stderr only, where pytest's output
capture can hide a child process's report. When XI_UBSAN_LOG and XI_UBSAN_LIB
are set, this sends UBSan's reports to XI_UBSAN_LOG.<pid> files instead, which
`make test-asan` checks after the run, like ASan's own log files.
"""
import ctypes
import os

_path = os.environ.get("XI_UBSAN_LOG")
_lib = os.environ.get("XI_UBSAN_LIB")
if _path and _lib:
    ctypes.CDLL(_lib).__sanitizer_set_report_path(_path.encode())
del _path, _lib
