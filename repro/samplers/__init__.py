"""Gradient-based samplers over batched chains: MAP (DGN-AM), MALA and HMC, on any value-and-grad target.

A target is any object with `value_and_grad(z[C, D]) -> (logp[C], grad[C, D])`. Each method is a pair of
pure functions `init` / `step` over a plain state record (map.py, mala.py, hmc.py); run.py drives them.
"""

from repro.samplers.bounds import load_bounds
from repro.samplers.run import Result, sample

__all__ = ["Result", "load_bounds", "sample"]
