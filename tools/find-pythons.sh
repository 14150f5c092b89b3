#!/usr/bin/env bash
# Prints the CPython interpreters (3.12 or newer) this project can be built and
# tested with: one path per line, one per minor version, newest minor first.
#
# For each minor version 3.X the first candidate that works wins, looked up in
# this order:
#   1. python3.X on PATH, only if running it works (a pyenv shim is on PATH
#      but fails outside a folder that selects its version);
#   2. $(pyenv root)/versions/3.X*/bin/python3.X, newest patch release first
#      (without the pyenv command: $PYENV_ROOT, else ~/.pyenv);
#   3. /usr/bin/python3.X;
#   4. the build tools/fetch-python.sh unpacked into its cache.
# A candidate must run, be CPython 3.X with the GIL (not a free-threaded build),
# and have its C headers (Python.h) and the venv module.
#
# Usage: tools/find-pythons.sh [-v] [--fetch 3.X[,3.Y...]] [--require 3.X[,3.Y...]]
#   -v         also tell on stderr why each rejected candidate was rejected;
#   --fetch    for each of these versions that nothing above provides, run
#              tools/fetch-python.sh (Debian's build) and use what it unpacks;
#   --require  exit status 1 unless each of these versions is found.
# Exit status 1, with the reasons on stderr, when none is found.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
verbose=0 fetch=() require=()
while (($#)); do
    case $1 in
        -v) verbose=1 ;;
        --fetch) IFS=', ' read -ra fetch <<<"${2?--fetch needs versions}"; shift ;;
        --require) IFS=', ' read -ra require <<<"${2?--require needs versions}"; shift ;;
        *) echo "usage: $0 [-v] [--fetch 3.X,...] [--require 3.X,...]" >&2; exit 2 ;;
    esac
    shift
done
cache=${XI_PYTHON_CACHE:-${XDG_CACHE_HOME:-${HOME:-}/.cache}/extrainterpreters/python}

minors=(19 18 17 16 15 14 13 12)
rejected=() missing=()

# Prints the interpreter's own path when it is usable as Python 3.$2, else
# prints the reason it is not and returns 1.
probe() {
    local out
    out=$("$1" - "3.$2" 2>&1 <<'EOF'
import os, sys, sysconfig
want = sys.argv[1]
have = "%d.%d" % sys.version_info[:2]
if sys.implementation.name != "cpython":
    sys.exit("not CPython (%s)" % sys.implementation.name)
if have != want:
    sys.exit("is Python %s, not %s" % (have, want))
if sysconfig.get_config_var("Py_GIL_DISABLED"):
    sys.exit("free-threaded build")
include = sysconfig.get_paths()["include"]
if not os.path.exists(os.path.join(include, "Python.h")):
    sys.exit("no C headers (%s/Python.h): install python%s-dev" % (include, want))
try:
    import venv, ensurepip  # noqa: F401
except ImportError:
    sys.exit("no venv/ensurepip module: install python%s-venv" % want)
exe = sys.executable
if os.path.basename(exe) != "python" + want:
    alt = os.path.join(os.path.dirname(exe), "python" + want)
    exe = alt if os.path.exists(alt) else exe
print(exe)
EOF
    )
    local rc=$?
    if ((rc != 0)); then
        # A failing command (e.g. a pyenv shim) may print many lines: keep one.
        printf '%s\n' "$(printf '%s\n' "$out" | grep -m 1 -v '^[[:space:]]*$')"
        return 1
    fi
    printf '%s\n' "$out" | tail -n 1
}

if command -v pyenv >/dev/null 2>&1; then
    pyenv_root=$(pyenv root 2>/dev/null) || pyenv_root=${PYENV_ROOT:-}
else
    home=${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}
    pyenv_root=${PYENV_ROOT:-${home:+$home/.pyenv}}
fi

found=0
for m in "${minors[@]}"; do
    candidates=()
    if on_path=$(command -v "python3.$m" 2>/dev/null); then
        candidates+=("$on_path")
    fi
    if [[ -n $pyenv_root && -d $pyenv_root/versions ]]; then
        while IFS= read -r dir; do
            [[ -x $dir/bin/python3.$m ]] && candidates+=("$dir/bin/python3.$m")
        done < <(compgen -G "$pyenv_root/versions/3.$m*" | sort -rV)
    fi
    [[ -x /usr/bin/python3.$m ]] && candidates+=("/usr/bin/python3.$m")
    [[ -x $cache/3.$m/usr/bin/python3.$m ]] && candidates+=("$cache/3.$m/usr/bin/python3.$m")

    ok=0
    for c in "${candidates[@]}"; do
        if exe=$(probe "$c" "$m"); then
            echo "$exe"
            ok=1
            break
        fi
        rejected+=("$c: ${exe:-does not run}")
        ((verbose)) && echo "find-pythons: skipped $c: ${exe:-does not run}" >&2
    done
    if ((!ok)) && [[ " ${fetch[*]} " == *" 3.$m "* ]]; then
        if c=$("$here/fetch-python.sh" "3.$m") && exe=$(probe "$c" "$m"); then
            echo "$exe"
            ok=1
        else
            rejected+=("Debian's 3.$m (tools/fetch-python.sh): ${exe:-could not be fetched}")
        fi
    fi
    if ((ok)); then
        found=$((found + 1))
    elif [[ " ${require[*]} " == *" 3.$m "* ]]; then
        missing+=("3.$m")
    fi
done

if ((${#missing[@]})); then
    echo "find-pythons: required but not found: ${missing[*]}" >&2
    printf '  rejected: %s\n' "${rejected[@]}" >&2
    exit 1
fi

if ((found == 0)); then
    {
        echo "find-pythons: no CPython >= 3.12 found; install one of 3.12 to 3.15"
        echo "  with its headers and venv module (Debian/Ubuntu: apt-get install"
        echo "  python3.13-dev python3.13-venv), or with pyenv (pyenv install 3.14),"
        echo "  or run tools/fetch-python.sh 3.14 on a Debian-based machine."
        if ((${#rejected[@]})); then
            echo "  Rejected:"
            printf '    %s\n' "${rejected[@]}"
        fi
        echo "  Searched: python3.1[2-9] on PATH, ${pyenv_root:-<no pyenv root>}/versions/3.1[2-9]*, /usr/bin, $cache."
    } >&2
    exit 1
fi
