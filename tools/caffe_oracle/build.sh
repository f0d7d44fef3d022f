#!/usr/bin/env bash
# Build real Caffe (CPU only, with pycaffe) into a folder outside the repository, to serve as the oracle
# for conversion and gradient checks.
#
# Usage: tools/caffe_oracle/build.sh INSTALL_DIR [PYTHON]
#
# The source is the PyPI sdist brocolli-caffe==9.0.2, an SSD-era fork of BVLC Caffe ~1.0 whose forward and
# backward passes are BVLC's. Its setup.py wants conda and Python <= 3.9, so this script drives CMake itself.
# Every step leaves a stamp file in INSTALL_DIR/.stamps; rerunning skips finished steps.
set -euo pipefail

if [[ $# -lt 1 ]]; then
    echo "usage: $0 INSTALL_DIR [PYTHON]" >&2
    exit 2
fi
DIR="$(mkdir -p "$1" && cd "$1" && pwd)"
PY="${2:-$(cd "$(dirname "$0")/../.." && pwd)/.venv/bin/python}"
JOBS="${JOBS:-2}"
VERSION=9.0.2
SRC="$DIR/src"
BUILD="$DIR/build"
STAMPS="$DIR/.stamps"
mkdir -p "$STAMPS"
START=$SECONDS

done_step() { [[ -f "$STAMPS/$1" ]]; }
mark() { touch "$STAMPS/$1"; echo "[caffe-oracle] step $1 done ($((SECONDS - START)) s)" >&2; }

APT_PACKAGES=(cmake make g++ patch protobuf-compiler libprotobuf-dev libgoogle-glog-dev libgflags-dev
    libhdf5-dev libopenblas-dev libboost-system-dev libboost-thread-dev libboost-filesystem-dev
    libboost-regex-dev libboost-python-dev)

# 1. System packages (only the missing ones; needs root).
if ! done_step apt; then
    missing=()
    for p in "${APT_PACKAGES[@]}"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    if [[ ${#missing[@]} -gt 0 ]]; then
        echo "[caffe-oracle] installing: ${missing[*]}" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
    mark apt
fi

# 2. The sdist, unpacked.
if ! done_step source; then
    rm -rf "$SRC" "$DIR/sdist"
    "$PY" -m pip download --no-deps --no-binary :all: -d "$DIR/sdist" "brocolli-caffe==$VERSION"
    mkdir -p "$DIR/unpack"
    tar -xzf "$DIR"/sdist/brocolli*caffe-"$VERSION".tar.gz -C "$DIR/unpack"
    top="$(find "$DIR/unpack" -mindepth 1 -maxdepth 1 -type d | head -n 1)"
    # The Caffe tree is the folder holding CMakeLists.txt next to src/caffe.
    tree="$(dirname "$(find "$top" -path '*/src/caffe/net.cpp' | head -n 1)")"
    tree="$(cd "$tree/../.." && pwd)"
    mv "$tree" "$SRC"
    rm -rf "$DIR/unpack"
    mark source
fi

# 3. Patches for a modern toolchain (Python 3.11, boost_python311, protobuf 3.21, numpy 2).
if ! done_step patch; then
    cd "$SRC"
    # Stale generated protobuf code would shadow the one CMake regenerates with the installed protoc.
    rm -f include/caffe/proto/caffe.pb.h src/caffe/proto/caffe.pb.cc
    pyver="$("$PY" -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')"
    sed -i "s/-lboost_python\b[0-9]*/-lboost_python${pyver} -lgflags/" python/CMakeLists.txt
    grep -q "lboost_python${pyver}" python/CMakeLists.txt || {
        echo "[caffe-oracle] could not patch python/CMakeLists.txt" >&2
        exit 1
    }
    sed -i '/#include "caffe\/test\/test_caffe_main.hpp"/d' src/caffe/net.cpp
    sed -i 's/SetTotalBytesLimit(536870912[^)]*)/SetTotalBytesLimit(INT_MAX)/' src/caffe/util/io.cpp
    grep -q '#include <climits>' src/caffe/util/io.cpp || sed -i '1i #include <climits>' src/caffe/util/io.cpp
    # pycaffe's io module imports skimage and scipy at import time; the oracle needs neither.
    "$PY" - python/caffe/io.py <<'EOF'
import re, sys
path = sys.argv[1]
text = open(path).read()
def optional(m):
    stmt = m.group(0)
    return "try:\n    " + stmt + "\nexcept ImportError:\n    pass"
text = re.sub(r"^(import skimage[^\n]*|from skimage[^\n]*|from scipy[^\n]*|import scipy[^\n]*)$",
              optional, text, flags=re.M)
open(path, "w").write(text)
EOF
    # `six` is not installed on a Python 3-only stack; pycaffe uses it only to iterate dicts.
    sed -i -e '/^import six$/d' -e 's/six\.iteritems(\([^)]*\))/\1.items()/g' \
        -e 's/six\.next(six\.itervalues(\([^)]*\)))/next(iter(\1.values()))/g' \
        python/caffe/pycaffe.py python/caffe/net_spec.py
    if grep -q 'six\.' python/caffe/pycaffe.py python/caffe/net_spec.py; then
        echo "[caffe-oracle] could not remove six from pycaffe" >&2
        exit 1
    fi
    mark patch
fi

# 4. Configure.
if ! done_step configure; then
    npinc="$("$PY" -c 'import numpy; print(numpy.get_include())')"
    pyprefix="$("$PY" -c 'import sys; print(sys.base_prefix)')"
    pyname="$("$PY" -c 'import sys; print(f"python{sys.version_info[0]}.{sys.version_info[1]}")')"
    rm -rf "$BUILD"
    mkdir -p "$BUILD"
    cd "$BUILD"
    cmake "$SRC" -DCMAKE_BUILD_TYPE=Release -DCPU_ONLY=ON -DUSE_CUDNN=OFF -DUSE_NCCL=OFF -DUSE_OPENCV=OFF \
        -DUSE_LMDB=OFF -DUSE_LEVELDB=OFF -DBUILD_python=ON -DBUILD_python_layer=OFF -DBUILD_docs=OFF \
        -DBLAS=Open -DANACONDA_HOME="$pyprefix" -DPYTHON_VERSION="$pyname" \
        -DPYTHON_EXECUTABLE="$PY" \
        -DPYTHON_INCLUDE_DIR="$pyprefix/include/$pyname" \
        -DPYTHON_LIBRARY="$pyprefix/lib/lib$pyname.so" \
        -DNUMPY_INCLUDE_DIR="$npinc" \
        -DCMAKE_CXX_FLAGS="-I$npinc -I/usr/include/hdf5/serial" \
        -DCMAKE_SHARED_LINKER_FLAGS="-L/usr/lib/x86_64-linux-gnu/hdf5/serial" \
        -DCMAKE_EXE_LINKER_FLAGS="-L/usr/lib/x86_64-linux-gnu/hdf5/serial"
    mark configure
fi

# 5. Build the library and pycaffe (the tools and tests are not needed).
if ! done_step build; then
    cd "$BUILD"
    make -j"$JOBS" pycaffe
    mark build
fi

# 6. Smoke test: import pycaffe from the source tree's python folder (where the build puts _caffe.so).
if ! done_step smoke; then
    PYTHONPATH="$SRC/python" GLOG_minloglevel=2 "$PY" -c \
        'import caffe; caffe.set_mode_cpu(); print("pycaffe", caffe.__file__)'
    mark smoke
fi

echo "[caffe-oracle] ready in $((SECONDS - START)) s. Use it with:" >&2
echo "  PYTHONPATH=$SRC/python $PY -c 'import caffe'" >&2
echo "  or pass --caffe $DIR to tools/caffe_oracle/*.py" >&2
