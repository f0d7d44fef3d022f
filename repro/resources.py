"""Memory a run will hold, estimated before any work from its options and the model set's blob shapes, and
compared with what this machine has available: a run that cannot fit is refused in one line (exit 2) naming
the options and the estimate, instead of ending in a MemoryError after minutes of conversion and sampling.

What is counted grows with the options; what does not (the weights, the runtime's own memory) is left out, so
the estimate is a lower bound and a refused run could certainly not have fitted:

- the sampler's traces: log π, acceptance, HMC's energy error and divergence, per step and chain (18 bytes);
- the samples it keeps: float64 [steps // thin, chains, code];
- the chains' state and a step's scratch: STATE_COPIES float64 [chains, code];
- the images: float32 generator outputs and their uint8 display tiles, per chain;
- one value-and-grad call over every chain of a sampler call at once (all chains are one batch): every blob
  of the generator and the classifier once per chain, in float32 (the forward values the gradient reads). On
  the CPU ORT held 2.3× that per chain on the embedded set (batch 1000) and 1.1× on the random set (batch 32);
  with `--device cuda` that call is on the GPU and is not counted against the host's memory.

Available memory is /proc/meminfo's MemAvailable (else the free pages of os.sysconf), lowered to the room
left under a cgroup v2 memory limit where there is one.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from repro.convert.cache import load_caffe_net
from repro.errors import BadInput
from repro.modelsets import ModelSet

TRACE_BYTES = 8 + 1 + 8 + 1  # per step and chain: log π (float64), accepted (bool), energy error, divergent
STATE_COPIES = 6  # float64 [chains, code]: position, gradient, proposal and its gradient, noise, clip copy


@dataclass(frozen=True)
class NetSizes:
    """Per chain, in values: the code, one generator output, and every blob of generator and classifier."""

    code: int
    image: int
    activations: int


def net_sizes(ms: ModelSet) -> NetSizes:
    """From the prototxts alone (Caffe's shape rules; no weights are read, nothing is converted)."""
    return _net_sizes(ms.generator, ms.classifier)


def _net_sizes(generator, classifier) -> NetSizes:
    gen = load_caffe_net(generator, weights=False)
    cls = load_caffe_net(classifier, weights=False)

    def per_chain(shape) -> int:
        return math.prod(int(d) for d in shape[1:])

    return NetSizes(
        code=per_chain(gen.shapes[generator.blobs["input"]]),
        image=per_chain(gen.shapes[generator.blobs["output"]]),
        activations=sum(per_chain(s) for net in (gen, cls) for s in net.shapes.values()),
    )


def call_bytes(sizes: NetSizes, batch: int, device: str = "cpu", itemsize: int = 4) -> int:
    """Host memory of one value-and-grad call at `batch` chains (0 on a GPU: see the module docstring)."""
    return 0 if device != "cpu" else batch * (sizes.activations + 2 * sizes.code) * itemsize


def sampling_bytes(sizes: NetSizes, chains: int, steps: int, thin: int = 1) -> int:
    """The traces and samples of one sampler call, the chains' state, and their images."""
    return (
        steps * chains * TRACE_BYTES
        + (steps // thin) * chains * sizes.code * 8
        + STATE_COPIES * chains * sizes.code * 8
        + chains * sizes.image * (4 + 1)
    )


def available_bytes() -> int | None:
    """Memory this process can still take; None where the machine does not say."""
    found = _meminfo_available()
    if found is None:
        try:
            found = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            found = None
    room = _cgroup_room()
    if room is not None:
        found = room if found is None else min(found, room)
    return found


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_room() -> int | None:
    """memory.max − memory.current of this process's cgroup (v2), or None without a limit."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
        line = next(line for line in lines if line.startswith("0::"))
        group = Path("/sys/fs/cgroup") / line[3:].lstrip("/")
        limit = (group / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(0, int(limit) - int((group / "memory.current").read_text()))
    except (OSError, ValueError, StopIteration):
        return None


def size_text(n: float) -> str:
    """2.3 TB, 21 GB, 870 MB (decimal units, two significant figures)."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            value = n / scale
            return f"{value:.2g} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{n:.0f} bytes"


def refuse_unless_fits(needed: int, what: str, lower: str, breakdown: str = "") -> None:
    """BadInput when `needed` bytes exceed the available memory: '<what>: … would hold at least <needed>
    (<breakdown>), this machine has <available> available; lower <lower>'."""
    available = available_bytes()
    if available is None or needed <= available:
        return
    detail = f" ({breakdown})" if breakdown else ""
    raise BadInput(
        f"{what} would hold at least {size_text(needed)}{detail}, this machine has {size_text(available)} "
        f"available; lower {lower}"
    )
