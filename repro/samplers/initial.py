"""Start codes for the chains of a job or a report cell.

z0 ~ N(0, I) is drawn from a per-chain stream, so chain i starts from the same code whatever the chain count,
and every method of a report starts chain j of a class from the same code: rows are then compared by paired
differences over shared starts.

Under a fitted prior (the `-prior` rows, `--prior fitted`) the same noise is mapped through the prior
(`prior.draw`), so a chain starts at a draw of the distribution it samples from the prior side, as it does
under N(0, I): started at N(0, I) codes, those chains spent their steps travelling to codes 9 times as long
(‖z‖²/D of 4.7 against 42) and did not reach the posterior.
"""

from __future__ import annotations

import numpy as np


def initial_codes(seed: int, chains: int, code_size: int, prior: object = None) -> np.ndarray:
    """[chains, code_size] float32; `prior`: None for N(0, I) noise, or a fitted prior (anything with
    `draw(noise)`, repro.posterior.GaussianPrior) to map the noise through."""
    seqs = np.random.SeedSequence([seed, 0x5EED]).spawn(chains)
    noise = np.stack([np.random.default_rng(s).standard_normal(code_size) for s in seqs])
    return (noise if prior is None else prior.draw(noise)).astype(np.float32)
