"""Build of the C core.

Environment switches:
  XI_WERROR=1    treat compiler warnings as errors
  XI_SANITIZE=1  build with -fsanitize=address,undefined (run with libasan preloaded)
  XI_DEBUG=1     no optimisation, debug symbols, assertions on
"""
import glob
import os

from setuptools import Extension, setup

flags = ["-std=c11", "-Wall", "-Wextra", "-Wno-missing-field-initializers",
         "-Wno-cast-function-type", "-fvisibility=hidden"]
link = []
macros = []
if os.environ.get("XI_WERROR") == "1":
    flags.append("-Werror")
if os.environ.get("XI_SANITIZE") == "1":
    flags += ["-fsanitize=address,undefined", "-fno-omit-frame-pointer",
              "-fno-sanitize-recover=undefined", "-O1", "-g"]
    link += ["-fsanitize=address,undefined"]
elif os.environ.get("XI_DEBUG") == "1":
    flags += ["-O0", "-g"]
else:
    flags += ["-O2"]
if os.environ.get("XI_SANITIZE") == "1" or os.environ.get("XI_DEBUG") == "1":
    flags.append("-UNDEBUG")
else:
    macros.append(("NDEBUG", "1"))

setup(
    ext_modules=[
        Extension(
            "extrainterpreters._xi",
            sources=sorted(glob.glob("csrc/*.c")),
            depends=sorted(glob.glob("csrc/*.h")),
            include_dirs=["csrc"],
            define_macros=macros,
            extra_compile_args=flags,
            extra_link_args=link,
            libraries=["pthread"],
        )
    ],
)
