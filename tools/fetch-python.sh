#!/usr/bin/env bash
# Unpacks Debian's build of CPython 3.X (3.13, 3.14 or 3.15) into a cache folder, with its C
# headers, venv and pip, without installing anything system-wide, and prints the path of
# the interpreter. A later call finds it there and only prints the path.
#
# Usage: tools/fetch-python.sh [--debug] [--testsuite] 3.X
#   --debug      Debian's debug build instead (python3.Xd: Py_DEBUG, reference count and
#                GIL checks; extensions for it are built against its own headers)
#   --testsuite  also CPython's own test suite (Lib/test: libpython3.X-testsuite),
#                added to the same folder if the interpreter is there already
# Cache: $XI_PYTHON_CACHE, else ${XDG_CACHE_HOME:-~/.cache}/extrainterpreters/python.
#
# How: a Debian-based machine whose release has no 3.X (Debian 12) can still run the
# packages of Debian's unstable suite, together with that suite's C library. apt
# downloads them from the archive this machine's apt already uses (no other network
# access), dpkg-deb unpacks them into the cache, and patchelf points the interpreter's
# ELF loader and library path at the unpacked libraries. Needs apt-get, dpkg-deb and
# patchelf (installed with apt-get when missing, which needs root).
set -euo pipefail

debug=0 testsuite=0 ver=
for arg in "$@"; do
    case $arg in
        --debug) debug=1 ;;
        --testsuite) testsuite=1 ;;
        3.1[3-9]) ver=$arg ;;
        *) echo "usage: $0 [--debug] [--testsuite] 3.13|3.14|3.15" >&2; exit 2 ;;
    esac
done
[[ -n $ver ]] || { echo "usage: $0 [--debug] [--testsuite] 3.13|3.14|3.15" >&2; exit 2; }

suffix=; ((debug)) && suffix=d
name=$ver$suffix
cache=${XI_PYTHON_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/extrainterpreters/python}
dir=$cache/$name
py=$dir/usr/bin/python$ver$suffix
have_tests() { [[ -d $dir/usr/lib/python$ver/test/test_interpreters ]]; }
if [[ -x $py && -f $dir/.complete ]] && { ((!testsuite)) || have_tests; }; then
    echo "$py"
    exit 0
fi

say() { echo "fetch-python: $*" >&2; }
command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null ||
    { say "needs apt-get and dpkg-deb (a Debian or Ubuntu machine); install Python $ver another way"; exit 1; }
if ! command -v patchelf >/dev/null; then
    say "installing patchelf"
    { apt-get update -qq && apt-get install -y -qq patchelf; } >&2 ||
        { say "cannot install patchelf (apt-get install patchelf needs root)"; exit 1; }
fi

# The archive this machine's apt uses (deb822 or one-line sources), without the security one.
archive=$(awk '/^URIs:/ && !/security/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
if [[ -z $archive ]]; then
    archive=$(awk '$1 == "deb" && !/security/ { for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) { print $i; exit } }' \
        /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | head -n 1 || true)
fi
[[ -n $archive ]] || { say "no Debian archive found in this machine's apt sources"; exit 1; }

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/lists/partial" "$tmp/archives/partial" "$tmp/debs"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $archive sid main" >"$tmp/sources.list"
apt=(apt-get -qq -o Dir::Etc::sourcelist="$tmp/sources.list" -o Dir::Etc::sourceparts=/nonexistent
     -o Dir::State::Lists="$tmp/lists" -o Dir::Cache="$tmp" -o Dir::Cache::archives="$tmp/archives"
     -o Debug::NoLocking=1 -o APT::Sandbox::User="$(id -un)")
say "downloading Debian's python$ver$suffix from $archive (unstable)"
"${apt[@]}" update >&2

packages=(python$ver python$ver-minimal python$ver-dev python$ver-venv
          libpython$ver libpython$ver-minimal libpython$ver-stdlib libpython$ver-dev
          libc6 libexpat1 zlib1g libffi8 libssl3t64 libzstd1 liblzma5 libbz2-1.0 libsqlite3-0
          libmpdec4 libgcc-s1 libncursesw6 libtinfo6 libreadline8t64 libuuid1 libgdbm6t64
          libdb5.3t64 python3-pip-whl python3-setuptools-whl)
((debug)) && packages+=(python$ver-dbg libpython$ver-dbg)
((testsuite)) && packages+=(libpython$ver-testsuite)
if [[ -x $py && -f $dir/.complete ]]; then
    packages=(libpython$ver-testsuite)   # only the test suite is missing
fi
# All at once; if one name is missing (they change between releases), one at a time.
if ! (cd "$tmp/debs" && "${apt[@]}" download "${packages[@]}" >/dev/null 2>&1); then
    for p in "${packages[@]}"; do
        (cd "$tmp/debs" && "${apt[@]}" download "$p" >/dev/null 2>&1) || say "no package $p in the archive"
    done
fi
if ((${#packages[@]} == 1)); then
    compgen -G "$tmp/debs/*.deb" >/dev/null || { say "Debian's archive has no libpython$ver-testsuite"; exit 1; }
    for deb in "$tmp"/debs/*.deb; do dpkg-deb -x "$deb" "$dir"; done
    have_tests || { say "libpython$ver-testsuite has no test.test_interpreters"; exit 1; }
    echo "$py"
    exit 0
fi
compgen -G "$tmp/debs/python$ver-minimal_*.deb" >/dev/null || { say "Debian's archive has no python$ver"; exit 1; }

rm -rf "$dir"; mkdir -p "$dir"
for deb in "$tmp"/debs/*.deb; do dpkg-deb -x "$deb" "$dir"; done

lib=$dir/usr/lib/x86_64-linux-gnu
[[ -e $lib/ld-linux-x86-64.so.2 ]] || lib=$dir/lib/x86_64-linux-gnu
[[ -e $lib/ld-linux-x86-64.so.2 ]] || { say "the unpacked C library has no ld-linux-x86-64.so.2"; exit 1; }
# The interpreter, and through its RPATH every library it loads, use the unpacked C library.
patchelf --set-interpreter "$lib/ld-linux-x86-64.so.2" --force-rpath --set-rpath "$lib" "$py"
while IFS= read -r so; do
    case ${so##*/} in ld-linux*|libc.so*|libm.so*|libpthread*|libdl*) continue ;; esac
    patchelf --force-rpath --set-rpath "$lib" "$so" 2>/dev/null || true
done < <(find "$dir/usr/lib/python$ver" "$lib" -name '*.so*' -type f)

# Debian's pyconfig.h includes a multiarch twin from the system include path: use the twin.
for inc in python$ver python$ver$suffix; do
    twin=$dir/usr/include/x86_64-linux-gnu/$inc/pyconfig.h
    [[ -f $twin && -d $dir/usr/include/$inc ]] && cp "$twin" "$dir/usr/include/$inc/pyconfig.h"
done
# ensurepip (so venv) looks for its wheels where Debian keeps them: point it into the cache.
for f in "$dir"/usr/lib/python$ver/_sysconfig*; do
    [[ -f $f ]] && sed -i "s|\(['\"]\)/usr/share/python-wheels/\1|\1$dir/usr/share/python-wheels/\1|g" "$f"
done

# Debian compiles the standard library when a package is installed, not in the package:
# without this, every new interpreter would compile its imports from source.
"$py" -m compileall -q -j 0 -x '/test/' "$dir/usr/lib/python$ver" >/dev/null 2>&1 || true
"$py" -c 'import ssl, sqlite3, ctypes, venv, ensurepip, sysconfig' >&2
"$py" -m venv --without-pip "$tmp/venv" >&2
"$py" -m ensurepip --help >/dev/null
touch "$dir/.complete"
echo "$py"
