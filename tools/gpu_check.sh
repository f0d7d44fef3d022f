#!/usr/bin/env bash
# The GPU checks, in one prepared run: forward and gradient parity of both backends on the device
# (`repro parity --device`), and `repro bench --device` at batch 1, 8 and 64, written as one JSON file with
# what the machine is. Without a GPU it runs the same checks on the CPU and says so in the file.
#
#   tools/gpu_check.sh [OUT.json]        (default gpu_check.json)
#   MODELS=random BATCHES=1,8,64 DEVICE=cuda|cpu tools/gpu_check.sh OUT.json
#
# Exit status: 0 when every check ran and passed, else the first failing command's.
set -uo pipefail
out=${1:-gpu_check.json}
models=${MODELS:-random}
batches=${BATCHES:-1,8,64}
device=${DEVICE:-$(python -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")')}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

status=0
echo "gpu_check: parity on $device ($models)" >&2
repro parity --models "$models" --device "$device" --json >"$work/parity.json" 2>"$work/parity.err" || status=$?
echo "gpu_check: bench on $device at batch $batches ($models)" >&2
repro bench --models "$models" --device "$device" --batch "$batches" --json >"$work/bench.json" \
  2>"$work/bench.err" || { rc=$?; [ "$status" -eq 0 ] && status=$rc; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >"$work/gpu.txt" 2>/dev/null || true

python - "$work" "$out" "$device" "$status" <<'PY'
import json, os, sys, tempfile
from pathlib import Path

import onnxruntime, torch

work, out, device, status = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])


def part(name):
    text = (work / f"{name}.json").read_text()
    try:
        return json.loads(text)
    except ValueError:
        return {"error": (work / f"{name}.err").read_text().strip().splitlines()[-1:] or ["no output"]}


record = {
    "device": device,
    "gpu": (work / "gpu.txt").read_text().strip() or None,
    "torch": torch.__version__,
    "torch_cuda": torch.cuda.is_available(),
    "onnxruntime": onnxruntime.__version__,
    "ort_providers": onnxruntime.get_available_providers(),
    "exit_status": status,
    "parity": part("parity"),
    "bench": part("bench"),
}
fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent if str(out.parent) else ".")
with os.fdopen(fd, "w") as f:
    json.dump(record, f, indent=2)
os.chmod(tmp, 0o644)
os.replace(tmp, out)
print(f"gpu_check: wrote {out} (exit status {status})", file=sys.stderr)
PY
exit "$status"
