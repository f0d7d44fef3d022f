"""Start codes for the chains of a job or a report cell.

z0 ~ N(0, I) is drawn from a per-chain stream, so chain i starts from the same code whatever the chain count,
and every method of a report starts chain j of a class from the same code: rows are then compared by paired
differences over shared starts.
"""

from __future__ import annotations

import numpy as np


def initial_codes(seed: int, chains: int, code_size: int) -> np.ndarray:
    seqs = np.random.SeedSequence([seed, 0x5EED]).spawn(chains)
    return np.stack([np.random.default_rng(s).standard_normal(code_size) for s in seqs]).astype(np.float32)
