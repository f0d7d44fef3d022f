"""Gradient-based samplers over batched chains: MAP (DGN-AM), MALA and HMC, and the authors' released MALA
and HMC, on any value-and-grad target.

A target is any object with `value_and_grad(z[C, D]) -> (logp[C], grad[C, D])` (the released samplers also
read `logits(z)`). Each kernel module (map.py, mala.py, hmc.py, mala_released.py, hmc_released.py) has the
same shape: `init(target, z0)`, and `build(bounds, **options)` returning one
`step(state, target, step_size, draws, t)` over plain state records; MALA and HMC end in the shared
Metropolis–Hastings test (accept.py); kernel.py lists the names a kernel module must hold, which `METHODS`
checks as it is built. methods.py is the one table of method names; run.py drives any of them.
"""

from repro.samplers.bounds import load_bounds
from repro.samplers.methods import METHODS, Method
from repro.samplers.run import Result, sample

__all__ = ["METHODS", "Method", "Result", "load_bounds", "sample"]
