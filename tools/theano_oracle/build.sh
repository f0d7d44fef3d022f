#!/usr/bin/env bash
# Build the Theano oracle for the DCGAN ImageNet discriminator (the paper's realism judge): a separate
# virtual environment, outside the repository, with Theano 1.0.5 and the old numpy/scipy it works with.
#
# Usage: tools/theano_oracle/build.sh INSTALL_DIR [PYTHON]
#
# CPU only. Idempotent: a stamp in INSTALL_DIR/.stamps marks each finished step; rerunning skips them and
# only re-checks that `import theano` works. Theano then runs with
#   THEANO_FLAGS=blas.ldflags=,floatX=float32,compiledir=INSTALL_DIR/compiledir
# (INSTALL_DIR/env.sh exports exactly that; oracle.py's caller sets it too).
set -euo pipefail

if [[ $# -lt 1 ]]; then
    echo "usage: $0 INSTALL_DIR [PYTHON]" >&2
    exit 2
fi
DIR="$(mkdir -p "$1" && cd "$1" && pwd)"
# numpy < 1.24 has wheels up to Python 3.11, so that is the default interpreter.
PY="${2:-$(command -v python3.11 || command -v python3)}"
STAMPS="$DIR/.stamps"
mkdir -p "$STAMPS" "$DIR/compiledir"
START=$SECONDS

THEANO_VERSION=1.0.5
REQUIREMENTS=("Theano==$THEANO_VERSION" "numpy<1.24" "scipy<1.12")

done_step() { [[ -f "$STAMPS/$1" ]]; }
mark() { touch "$STAMPS/$1"; echo "[theano-oracle] step $1 done ($((SECONDS - START)) s)" >&2; }

# 1. The virtual environment.
if ! done_step venv || [[ ! -x "$DIR/venv/bin/python" ]]; then
    rm -rf "$DIR/venv"
    "$PY" -m venv "$DIR/venv"
    "$DIR/venv/bin/python" -m pip install -q --upgrade pip
    mark venv
fi

# 2. Theano and its numpy/scipy, from the registry.
if ! done_step packages; then
    "$DIR/venv/bin/python" -m pip install -q "${REQUIREMENTS[@]}"
    mark packages
fi

# 3. The flags every run uses.
cat >"$DIR/env.sh" <<ENV
# source this file before running Theano from $DIR
export THEANO_FLAGS="blas.ldflags=,floatX=float32,compiledir=$DIR/compiledir"
ENV

# 4. A smoke test (always run: cheap, and it catches a broken compiledir or compiler).
# shellcheck disable=SC1091
source "$DIR/env.sh"
"$DIR/venv/bin/python" - <<'PYTHON'
import numpy as np
import theano
import theano.tensor as T

# A true convolution (flipped kernel) with a kernel that is 1 at its top-left corner shifts the image up
# and left: out[i, j] = x[i + 1, j + 1]; a correlation would shift it the other way.
x = T.tensor4()
w = T.tensor4()
f = theano.function([x, w], T.nnet.conv2d(x, w, border_mode=(1, 1), filter_flip=True))
image = np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)
kernel = np.zeros((1, 1, 3, 3), np.float32)
kernel[0, 0, 0, 0] = 1
out = f(image, kernel)
assert out.shape == (1, 1, 3, 3) and out[0, 0, 0, 0] == 4 and out[0, 0, 1, 1] == 8, out
print(f"[theano-oracle] Theano {theano.__version__}, numpy {np.__version__}: ok")
PYTHON
echo "[theano-oracle] ready: $DIR/venv/bin/python (source $DIR/env.sh first)" >&2
